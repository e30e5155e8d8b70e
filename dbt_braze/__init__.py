"""dbt-braze: dbt-native reverse ETL to Braze, sending only what changed."""

from __future__ import annotations

__version__ = "0.1.0"
