"""`python -m flowlang` runs the command line."""

from flowlang.cli import main

main()
