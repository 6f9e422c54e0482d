"""The embedded SQLite engine: one group-committing writer, readers, faults, migrations."""
