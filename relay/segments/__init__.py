"""Push-engagement segments: declarative definitions over one per-profile stats query."""
