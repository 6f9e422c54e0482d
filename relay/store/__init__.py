"""Storage: the engines (sqlite/, postgres/), the statements both run (sql/), the dialect seam.

Storage decides nothing: the rules live in relay/domain and run as jobs on an engine.
Nothing here imports the domain, the forwarder, the compat surfaces or the dashboard
(tests/test_layers.py).
"""
