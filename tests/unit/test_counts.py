"""Data points are counted when Braze accepts an object, not when a request is submitted.

Uses the scripted warehouse and Braze of tests/fakes.py (nothing leaves the process).
"""

from __future__ import annotations

import pytest

from dbt_braze.engine import ModelReport
from dbt_braze.errors import BrazeUnavailable

from fakes import RELATION, FakeBraze, FakeStore, key, make_engine, make_model, run, user_rows


def test_a_failed_request_counts_no_data_points() -> None:
    report = ModelReport("braze_users")
    engine = make_engine(FakeStore(upserts=user_rows(4)), FakeBraze(fail_on_request=1))
    with pytest.raises(BrazeUnavailable):
        engine.sync_model(make_model(), RELATION, report)
    assert report.data_points == 0 and report.attributes_sent == 0 and report.users_created == 0


def test_only_accepted_objects_count_data_points() -> None:
    # 2 requests of 2 users (3 attributes each); the second request fails
    report = ModelReport("braze_users")
    braze = FakeBraze(fail_on_request=2, reject={key(1): "bad email"})
    engine = make_engine(FakeStore(upserts=user_rows(4)), braze, batch_size=2)
    with pytest.raises(BrazeUnavailable):
        engine.sync_model(make_model(), RELATION, report)
    assert report.data_points == 3  # u0000 only: u0001 was rejected, u0002-3 never delivered


def test_dry_run_still_reports_the_estimate() -> None:
    report = run(FakeStore(upserts=user_rows(4)), None, dry_run=True)
    assert report.data_points == 12
