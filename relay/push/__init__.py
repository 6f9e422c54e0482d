"""Test pushes through APNs (aioapns) and FCM (firebase-admin), and token hygiene."""
