"""``python -m audit``."""

from audit.cli import entry

entry()
