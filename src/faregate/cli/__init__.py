"""The `faregate` command line: `main.py` parses arguments and dispatches, `common.py` finds the files and
the store every command shares, and one module per group of commands calls the layers and prints."""

from faregate.cli.main import main

__all__ = ["main"]
