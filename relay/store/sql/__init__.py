"""The statements both engines run, one module per table group (SQL lives only in storage)."""
