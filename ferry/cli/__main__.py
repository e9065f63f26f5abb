"""`python -m ferry.cli`."""

from ferry.cli import main

main()
