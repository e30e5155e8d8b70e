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
sync is live, and every sync takes that claim for a moment after its
model's lock, waiting for a compaction in progress and finishing one a crash
interrupted before it reads or writes anything (`prepare`).
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
WAIT_SECONDS = 2.0  # between two attempts at the claim (Spark)


@dataclass
class Compaction:
    """What a compaction did: the logs it compacted, the sizes before and after."""

    before: LogSizes
    logs: list[str] = field(default_factory=list)
    after: LogSizes | None = None
    skipped: str | None = None  # why a due compaction did not run


class CompactionStore(RunStore, Protocol):
    """What compaction needs from the warehouse (dbt_braze.store.Store)."""

    @property
    def compaction_rewrites(self) -> bool: ...
    def log_sizes(self, model_name: str) -> LogSizes: ...
    def compact_logs(self, model_name: str, logs: list[str]) -> None: ...
    def all_live_runs(self, lease_seconds: float) -> list[tuple[object, ...]]: ...
    def finish_compaction(self) -> bool: ...


def compact(
    store: CompactionStore, model_name: str, run_id: str, *, ratio: float, lease_seconds: float
) -> Compaction:
    """Compact the model's logs that are due. `run_id`: the sync holding the model's lock."""
    result = Compaction(store.log_sizes(model_name))
    logs = result.before.due(ratio)
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
                # a sync writing now would lose its rows to the rewrite: next time
                result.skipped = f"other syncs are running ({', '.join(sorted(set(others)))})"
                status = "skipped"
                return result
            store.compact_logs(model_name, logs)
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
        result.before.as_json(),
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
    """Where logs are rewritten (Spark): under the compaction claim, wait for a compaction
    in progress to end, and finish a rewrite a crash interrupted, before the sync reads or
    writes the logs. The caller holds its model's lock already, so a compaction starting
    after this sees it live and stays away until it is done."""
    if not store.compaction_rewrites:
        return
    deadline = clock() + lease_seconds
    while True:
        claim = RunLog(store, COMPACTION_CLAIM, lease_seconds=lease_seconds)
        try:
            claim.start()
            break
        except LockedError:
            if clock() >= deadline:
                raise
            sleep(WAIT_SECONDS)
    status = "interrupted"
    try:
        if store.finish_compaction():
            logger.info("finished a compaction a crash had interrupted")
        status = "success"
    finally:
        claim.finish(status, {})
