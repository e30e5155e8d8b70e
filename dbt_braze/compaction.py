"""Compaction of the append-only logs braze_state and braze_fingerprints.

Every acknowledgement appends rows, and every `dbt run` ranks a model's log
to find the latest row per key, so without compaction the hook's cost grows
with the history, not with the model. After a sync has written its last
checkpoint, still holding the model's lock, a model's log is compacted when
it holds more than `ratio` (2) rows per key: the superseded rows and the
keys whose state is gone are dropped (macros/compaction.sql says exactly
which). At 2 the log never costs more than twice a compacted one to rank,
and a compaction, whose cost is one pass over the log, runs at most once per
doubling: amortized, a constant per appended row.

Where a warehouse has DELETE (DuckDB, PostgreSQL, Databricks' Delta), each
log is compacted by one DELETE, both in one transaction. Spark's parquet
tables have neither: the whole log is rewritten through a copy
(macros/compaction.sql), which would lose rows another sync appended
meanwhile. So there a compaction runs under a claim of its own in
braze_sync_runs (the pseudo-model COMPACTION_CLAIM) and only when no other
sync (or `dbt run` hook, recorded as HOOK_RUN) is live, and a sync, after
taking its model's lock and before it reads or writes anything, waits for a
compaction in progress and finishes one a crash interrupted, under that claim
(`prepare`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from dbt_braze.errors import LockedError
from dbt_braze.rows import LogSizes
from dbt_braze.runlog import RunLog, RunStore

logger = logging.getLogger(__name__)

COMPACTION_CLAIM = "__braze_compaction__"  # its claims' model_name in braze_sync_runs
HOOK_RUN = "__braze_hook__"  # a `dbt run` hook reading the logs (macro braze_hook_begin)
WAIT_SECONDS = 2.0  # between two attempts at the claim (Spark)


@dataclass
class Compaction:
    """What a compaction did: the logs it compacted, their sizes as last counted."""

    counted: LogSizes | None = None  # the count the decision rests on: now, or a previous run's
    logs: list[str] = field(default_factory=list)
    after: LogSizes | None = None
    skipped: str | None = None  # why a due compaction did not run

    @property
    def latest_count(self) -> LogSizes | None:
        """The count the next sync's trigger starts from (kept in braze_sync_runs)."""
        return self.after or self.counted


class CompactionStore(RunStore, Protocol):
    """What compaction needs from the warehouse (dbt_braze.store.Store)."""

    @property
    def compaction_rewrites(self) -> bool: ...
    def log_sizes(self, model_name: str, *, exact: bool = True) -> LogSizes: ...
    def log_rows(self, model_name: str) -> tuple[int, int]: ...
    def counted_log_sizes(self, model_name: str, run_id: str) -> LogSizes | None: ...
    def compact_logs(
        self, model_name: str, logs: list[str], heartbeat: Callable[[], None] | None = None
    ) -> None: ...
    def all_live_runs(self, lease_seconds: float) -> list[tuple[object, ...]]: ...
    def compaction_leftover(self) -> bool: ...
    def finish_compaction(self) -> bool: ...


def compact(
    store: CompactionStore, model_name: str, run_id: str, *, ratio: float, lease_seconds: float
) -> Compaction:
    """Compact the model's logs that are due. `run_id`: the sync holding the model's lock.

    Counting the keys takes seconds at a million users, more than the rest of a sync
    of a few changes: the sync counts only the rows, and judges them against the count
    the model's previous run kept (LogSizes.due_now). It counts the keys only when the
    rows cannot tell, about once per doubling of a log, and when no count was kept (a
    previous run that failed or crashed keeps none: what it did to the logs is unknown)."""
    if ratio <= 0:
        return Compaction()
    rows = store.log_rows(model_name)
    counted = store.counted_log_sizes(model_name, run_id)
    logs = counted.due_now(*rows, ratio) if counted else None
    if counted is None or logs is None:
        # estimated where an exact count would not fit the sync's memory (10M users, DuckDB);
        # the ratio is a rule of thumb: a few percent off moves a compaction a few syncs
        counted = store.log_sizes(model_name, exact=False)
        logs = counted.due(ratio)
    result = Compaction(counted)
    if not logs:
        return result
    if store.compaction_rewrites:
        claim = RunLog(store, COMPACTION_CLAIM, lease_seconds=lease_seconds)
        try:
            claim.start()
        except LockedError:
            result.skipped = "another compaction is running"
            return result
        status = "interrupted"
        try:
            others = [
                str(model)
                for other, model in store.all_live_runs(lease_seconds)
                if other not in (run_id, claim.run_id)
            ]
            if others:
                # a sync writing now would lose its rows to the rewrite, a hook reading
                # now would read a log half overwritten: next time
                result.skipped = f"other syncs or dbt runs are running ({', '.join(sorted(set(others)))})"
                status = "skipped"
                return result
            # the claim outlives a rewrite longer than the lease (a sync waits that long)
            store.compact_logs(model_name, logs, claim.heartbeat)
            status = "success"
        finally:
            claim.finish(status, {}, result.skipped)
    else:
        store.compact_logs(model_name, logs)
    result.logs = logs
    result.after = store.log_sizes(model_name)
    logger.info(
        "%s: compacted %s: %s -> %s",
        model_name,
        " and ".join(logs),
        {"state_rows": rows[0], "fingerprint_rows": rows[1]},
        result.after.as_json(),
    )
    return result


def prepare(
    store: CompactionStore,
    *,
    lease_seconds: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Where logs are rewritten (Spark): wait for a compaction in progress to end, and
    finish a rewrite a crash interrupted under the compaction claim, before the sync reads
    or writes the logs. The caller holds its model's lock already, so a compaction whose
    claim is not live yet will see it live and stay away: with no live claim and no copy
    left behind there is nothing to wait for, and no claim is taken (most syncs)."""
    if not store.compaction_rewrites:
        return
    deadline = clock() + lease_seconds
    while store.live_runs(COMPACTION_CLAIM, lease_seconds) or store.compaction_leftover():
        # a claim whose process is gone (same machine) is taken over at once by start()
        claim = RunLog(store, COMPACTION_CLAIM, lease_seconds=lease_seconds)
        try:
            claim.start()
        except LockedError:
            if clock() >= deadline:
                raise
            sleep(WAIT_SECONDS)
            continue
        status = "interrupted"
        try:
            if store.finish_compaction():
                logger.info("finished a compaction a crash had interrupted")
            status = "success"
        finally:
            claim.finish(status, {})
        return
