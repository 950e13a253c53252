"""``python -m core``: the Throughline command line."""

from core.cli import main

raise SystemExit(main())
