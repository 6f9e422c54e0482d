"""``python -m relay_fakes``: the same as the ``relay-fakes`` command."""

from relay_fakes.cli import main

main()
