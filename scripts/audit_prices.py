#!/usr/bin/env python3
"""Audit faregate's prices and recorded costs (same as `faregate audit`). Run `--help` for options."""

from faregate.audit.main import main

if __name__ == "__main__":
    raise SystemExit(main())
