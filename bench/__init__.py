"""relay's benchmark suite: ``python -m bench ingest|forward|export|memory|scaling|all``.

Every benchmark runs relay as a real ``python -m relay serve`` process pinned to CPU 0 and
its load generator (or baseline client) in another process pinned to CPU 1, measures relay
and a baseline in the same run, and prints the figures, the ratio and whether each target
holds. ``--size quick`` (default) finishes in minutes, ``--size full`` runs the sizes of
the task, ``--smoke`` runs tiny sizes in seconds (tests/test_bench_smoke.py).
Results are written to docs/performance.md by hand; see the README.
"""
