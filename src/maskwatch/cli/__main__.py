"""``python -m maskwatch.cli``."""

from . import main

main()
