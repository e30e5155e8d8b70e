"""The compaction's trigger and, where logs are rewritten (Spark), its claim (dbt_braze/compaction.py)."""

from __future__ import annotations

from typing import Any

from dbt_braze.compaction import COMPACTION_CLAIM, compact
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

    def log_sizes(self, model_name: str) -> LogSizes:
        return self.sizes

    def compact_logs(self, model_name: str, logs: list[str]) -> None:
        self.compacted.append(logs)
        self.sizes = LogSizes(100, 100, 90, 100)

    def all_live_runs(self, lease_seconds: float) -> list[tuple[object, ...]]:
        return [("sync-1", "braze_users"), *self.others]

    def finish_compaction(self) -> bool:
        return False

    def record_run(self, run_id: str, model_name: str, status: str, **kwargs: Any) -> None:
        self.runs.append((run_id, model_name, status))

    def live_runs(self, model_name: str, lease_seconds: float) -> list[tuple[object, ...]]:
        claims = [r for r in self.runs if r[1] == model_name and r[2] == "running"]
        return [(run_id, None, None, "h") for run_id, _, _ in claims[:1]]


def test_a_rewrite_runs_only_when_no_other_sync_is_live() -> None:
    alone = FakeStore(rewrites=True, others=[])
    done = compact(alone, "braze_users", "sync-1", ratio=2, lease_seconds=600)
    assert done.logs == ["state"] and alone.compacted == [["state"]]
    assert done.after == LogSizes(100, 100, 90, 100)
    assert [status for _, model, status in alone.runs if model == COMPACTION_CLAIM] == ["running", "success"]

    beside = FakeStore(rewrites=True, others=[("sync-2", "braze_orders")])
    skipped = compact(beside, "braze_users", "sync-1", ratio=2, lease_seconds=600)
    assert skipped.logs == [] and beside.compacted == [] and "braze_orders" in (skipped.skipped or "")


def test_a_delete_needs_no_claim() -> None:
    store = FakeStore(rewrites=False, others=[("sync-2", "braze_orders")])
    assert compact(store, "braze_users", "sync-1", ratio=2, lease_seconds=600).logs == ["state"]
    assert store.runs == []
