"""`python -m faregate.cli`: the `faregate` command."""

from faregate.cli.main import main

raise SystemExit(main())
