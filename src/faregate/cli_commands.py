"""The `faregate` commands that need the server or the store (serve, keys, catalog, audit)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

Register = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


def register(command: Register) -> None:
    """Commands are added here as the layers they need exist."""
