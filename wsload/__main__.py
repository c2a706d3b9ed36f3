"""``python -m wsload`` is the same as the ``wsload`` console script."""

from wsload.cli import main

main()
