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


def test_the_rows_alone_tell_outside_the_bounds_of_the_keys() -> None:
    """Counted at 100 keys for 100 rows (a compacted log): 80 rows later the keys number
    100 to 180, so 180 rows is not due at 2; at 250 rows the keys number 100 to 250."""
    counted = LogSizes(100, 100, 100, 100)
    assert counted.due_now(180, 200, 2.0) == []  # at most 2 rows per key, whatever the keys now
    assert counted.due_now(201, 100, 2.0) is None  # 101 to 201 keys: 1 to 2 rows per key
    assert counted.due_now(100, 201, 2.0) is None
    assert counted.due_now(99, 150, 2.0) is None  # rows lost since: the count tells nothing
    assert counted.due_now(100, 99, 2.0) is None
    # counted at 100 keys for 250 rows (a compaction left undone): due with no new row, and
    # with 40 new rows (at most 140 keys now for 290 rows)
    undone = LogSizes(250, 100, 100, 100)
    assert undone.due_now(250, 100, 2.0) == ["state"]
    assert undone.due_now(290, 150, 2.0) == ["state"]
    assert undone.due_now(350, 150, 2.0) is None  # up to 200 keys: maybe not due any more
    assert LogSizes(250, 100, 250, 100).due_now(250, 250, 2.0) == ["state", "fingerprints"]
    assert counted.due_now(10**6, 10**6, 0) == []  # 0: never


class FakeStore:
    def __init__(self, *, rewrites: bool, others: list[tuple[object, ...]]) -> None:
        self.compaction_rewrites = rewrites
        self.others = others
        self.compacted: list[list[str]] = []
        self.runs: list[tuple[str, str, str]] = []
        self.sizes = LogSizes(500, 100, 90, 100)
        self.kept: LogSizes | None = None  # what the model's previous run kept of the sizes
        self.exact: list[bool] = []  # each count of the keys: its `exact`
        self.leftover = False
        self.finished = 0
        self.held: list[str] = []  # run ids of other processes' live compaction claims

    @property
    def counts(self) -> int:
        return len(self.exact)

    def log_sizes(self, model_name: str, *, exact: bool = True) -> LogSizes:
        self.exact.append(exact)
        return self.sizes

    def log_rows(self, model_name: str) -> tuple[int, int]:
        return self.sizes.state_rows, self.sizes.fingerprint_rows

    def counted_log_sizes(self, model_name: str, run_id: str) -> LogSizes | None:
        return self.kept

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


def test_the_keys_are_counted_only_when_the_rows_cannot_tell() -> None:
    def trigger(kept: LogSizes | None, now: LogSizes) -> tuple[list[str], int, LogSizes | None]:
        store = FakeStore(rewrites=False, others=[])
        store.kept, store.sizes = kept, now
        done = compact(store, "braze_users", "sync-1", ratio=2, lease_seconds=600)
        return done.logs, store.counts, done.latest_count

    # not due: 180 rows since a count of 100 keys for 100; the count is kept on
    assert trigger(LogSizes(100, 100, 90, 90), LogSizes(180, 100, 150, 90)) == (
        [],
        0,
        LogSizes(100, 100, 90, 90),
    )
    # due: 250 rows for at most 110 keys; compacted, and counted after (the next start)
    after = LogSizes(100, 100, 90, 100)
    assert trigger(LogSizes(240, 100, 90, 90), LogSizes(250, 100, 90, 100)) == (["state"], 1, after)
    # in between (101 to 201 keys for 201 rows): counted, not due, that count kept
    assert trigger(LogSizes(100, 100, 90, 90), LogSizes(201, 180, 90, 90)) == (
        [],
        1,
        LogSizes(201, 180, 90, 90),
    )
    # nothing kept (a first sync, or one after a failure): counted
    assert trigger(None, LogSizes(201, 180, 90, 90)) == ([], 1, LogSizes(201, 180, 90, 90))
    # fewer rows than counted (compacted meanwhile): counted, and then due
    assert trigger(LogSizes(900, 400, 90, 90), LogSizes(500, 100, 90, 90)) == (["state"], 2, after)
    # ratio 0: nothing read, nothing kept
    store = FakeStore(rewrites=False, others=[])
    done = compact(store, "braze_users", "sync-1", ratio=0, lease_seconds=600)
    assert (done.logs, store.counts, done.latest_count) == ([], 0, None)


def test_a_compaction_skipped_is_due_again_without_a_count() -> None:
    """Spark, beside another sync: the count that found the log due is kept, and the next
    sync finds it due from the rows alone."""
    store = FakeStore(rewrites=True, others=[("sync-2", "braze_orders")])
    skipped = compact(store, "braze_users", "sync-1", ratio=2, lease_seconds=600)
    assert skipped.skipped and skipped.latest_count == LogSizes(500, 100, 90, 100) and store.counts == 1
    store.kept, store.others = skipped.latest_count, []
    assert compact(store, "braze_users", "sync-1", ratio=2, lease_seconds=600).logs == ["state"]
    assert store.compacted == [["state"]] and store.counts == 2  # the second: after the compaction


def test_the_trigger_may_estimate_the_keys_and_the_result_is_counted() -> None:
    """The trigger's count may be an estimate (an exact one does not fit the sync's DuckDB
    memory cap at 10M users); what a compaction leaves is counted exactly (the compaction
    itself lifted the cap)."""
    store = FakeStore(rewrites=False, others=[])
    assert compact(store, "braze_users", "sync-1", ratio=2, lease_seconds=600).logs == ["state"]
    assert store.exact == [False, True]
