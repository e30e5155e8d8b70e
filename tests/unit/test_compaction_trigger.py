"""The compaction's trigger and, where logs are rewritten (Spark), its claim (dbt_braze/compaction.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dbt_braze.compaction import COMPACTION_CLAIM, HOOK_RUN, compact, prepare
from dbt_braze.errors import LockedError
from dbt_braze.rows import LogSizes


def test_a_log_is_due_above_the_ratio_only() -> None:
    assert LogSizes(200, 100, 100, 100).due(2.0) == []
    assert LogSizes(201, 100, 250, 100).due(2.0) == ["state", "fingerprints"]
    assert LogSizes(10**6, 1, 10**6, 1).due(0) == []  # 0: never


class FakeStore:
    def __init__(self, *, rewrites: bool, others: list[tuple[object, ...]]) -> None:
        self.compaction_rewrites = rewrites
        self.others = others
        self.compacted: list[list[str]] = []
        self.runs: list[tuple[str, str, str]] = []
        self.sizes = LogSizes(500, 100, 90, 100)
        self.leftover = False
        self.finished = 0
        self.held: list[str] = []  # run ids of other processes' live compaction claims

    def log_sizes(self, model_name: str) -> LogSizes:
        return self.sizes

    def compact_logs(
        self, model_name: str, logs: list[str], heartbeat: Callable[[], None] | None = None
    ) -> None:
        # a rewrite keeps its claim alive between its steps
        assert (heartbeat is not None) == self.compaction_rewrites
        self.compacted.append(logs)
        self.sizes = LogSizes(100, 100, 90, 100)

    def all_live_runs(self, lease_seconds: float) -> list[tuple[object, ...]]:
        return [("sync-1", "braze_users"), *self.others]

    def compaction_leftover(self) -> bool:
        return self.leftover

    def finish_compaction(self) -> bool:
        self.finished += 1
        found, self.leftover = self.leftover, False
        return found

    def record_run(self, run_id: str, model_name: str, status: str, **kwargs: Any) -> None:
        self.runs.append((run_id, model_name, status))

    def live_runs(self, model_name: str, lease_seconds: float) -> list[tuple[object, ...]]:
        ended = {run_id for run_id, _, status in self.runs if status != "running"}
        claims = [r[0] for r in self.runs if r[1] == model_name and r[2] == "running" and r[0] not in ended]
        held = self.held if model_name == COMPACTION_CLAIM else []
        return [(run_id, None, None, "h") for run_id in [*held, *claims]]


def test_a_rewrite_runs_only_when_no_other_sync_is_live() -> None:
    alone = FakeStore(rewrites=True, others=[])
    done = compact(alone, "braze_users", "sync-1", ratio=2, lease_seconds=600)
    assert done.logs == ["state"] and alone.compacted == [["state"]]
    assert done.after == LogSizes(100, 100, 90, 100)
    assert [status for _, model, status in alone.runs if model == COMPACTION_CLAIM] == ["running", "success"]

    beside = FakeStore(rewrites=True, others=[("sync-2", "braze_orders")])
    skipped = compact(beside, "braze_users", "sync-1", ratio=2, lease_seconds=600)
    assert skipped.logs == [] and beside.compacted == [] and "braze_orders" in (skipped.skipped or "")

    # a `dbt run` hook reading the logs keeps a rewrite away as a sync does
    hook = FakeStore(rewrites=True, others=[("invocation-1", HOOK_RUN)])
    assert compact(hook, "braze_users", "sync-1", ratio=2, lease_seconds=600).logs == []
    assert hook.compacted == []


def test_a_sync_claims_only_to_wait_or_to_finish_a_leftover() -> None:
    quiet = FakeStore(rewrites=True, others=[])
    prepare(quiet, lease_seconds=600)
    assert quiet.runs == [] and quiet.finished == 0  # nothing live, nothing left: no claim

    crashed = FakeStore(rewrites=True, others=[])
    crashed.leftover = True
    prepare(crashed, lease_seconds=600)
    assert crashed.finished == 1 and not crashed.leftover
    assert [status for _, _, status in crashed.runs] == ["running", "success"]


def test_a_sync_waits_for_a_compaction_then_goes_on_without_a_claim() -> None:
    store = FakeStore(rewrites=True, others=[])
    store.held = ["compaction-1"]
    waits: list[float] = []

    def sleep(seconds: float) -> None:  # the compaction ends during the first wait
        waits.append(seconds)
        store.held = []

    prepare(store, lease_seconds=600, sleep=sleep)
    assert len(waits) == 1 and store.finished == 0
    assert [status for _, _, status in store.runs] == ["running", "locked"]

    forever = FakeStore(rewrites=True, others=[])
    forever.held = ["compaction-1"]
    clock = iter(range(0, 10_000, 100))
    with pytest.raises(LockedError):
        prepare(forever, lease_seconds=600, clock=lambda: float(next(clock)), sleep=lambda _: None)
    assert forever.finished == 0


def test_a_delete_needs_no_claim() -> None:
    store = FakeStore(rewrites=False, others=[("sync-2", "braze_orders")])
    assert compact(store, "braze_users", "sync-1", ratio=2, lease_seconds=600).logs == ["state"]
    assert store.runs == []
