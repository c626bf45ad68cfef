"""The `sizeup` command."""

from sizeup.cli.main import main

__all__ = ["main"]
