"""Forwarding to Customer.io: what to send (ops), when (policy), how (client), the worker."""
