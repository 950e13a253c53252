"""``python -m core``: the Throughline command line."""

from core.cli.commands import main

raise SystemExit(main())
