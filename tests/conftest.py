"""Test ordering shared by the whole suite."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The Spark tests first: each starts a Spark session and runs for minutes, so one
    started near the end of the run would keep its worker busy long after the other
    worker ran out of tests (pytest-xdist hands tests out in collection order; with
    `--dist worksteal`, scripts/test, the other worker takes the rest meanwhile)."""
    items.sort(key=lambda item: item.get_closest_marker("spark") is None)
