"""`python -m dbt_braze.emulator`: see cli.py."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
