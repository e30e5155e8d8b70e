"""The sync loop: pending rows → Braze objects → requests → acknowledged state.

For each model: read the pending changes in key order, one object per user,
send batches concurrently (a bounded window of requests in flight), settle
their answers in order, and checkpoint what Braze accepted (and what it
rejected, with its reason) into the warehouse every few thousand objects or
seconds. The state only ever advances for accepted objects, so a sync that
fails or is killed loses nothing: the next one finds the rest still pending,
and at most one checkpoint window plus the requests in flight are sent again.

Each user appears in exactly one object of one batch per sync (the pending
rows are grouped by key), so two requests in flight never touch one user.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from dbt_braze.config import ModelSync
from dbt_braze.errors import SyncError
from dbt_braze.payloads import (
    ATTRIBUTE,
    MAX_OBJECTS_PER_REQUEST,
    VALUE_HASH,
    LocalRejection,
    UserChange,
    batched,
    build_object,
    unset_object,
)
from dbt_braze.warehouse import RelationRef, Row

logger = logging.getLogger(__name__)

# braze-api-notes.md: /users/delete takes at most 50 ids per request.
MAX_DELETE_IDS = 50
SAMPLE_SIZE = 3
# ModelReport counts kept per run in braze_sync_runs (macros/state.sql)
RUN_COUNTS = (
    "users_created",
    "users_updated",
    "attributes_unset",
    "users_deleted",
    "rows_rejected",
    "requests",
    "data_points",
)
HEARTBEAT_SECONDS = 30.0


class WarehouseAccess(Protocol):
    """What the engine needs from the warehouse (dbt_braze.warehouse.Warehouse)."""

    def require_pending(self, model_name: str) -> None: ...
    def withheld(self, model_name: str) -> list[Row]: ...
    def stream(self, sql: str, batch_rows: int = ...) -> Iterator[list[Row]]: ...
    def read_upserts_sql(self, model_name: str) -> str: ...
    def read_removed_sql(self, model_name: str, *, mapped_only: bool) -> str: ...
    def read_full_refresh_sql(self, relation: RelationRef, id_column: str, mappings: Any) -> str: ...
    def checkpoint(self, model_name: str, run_id: str, acked: Any, rejected: Any) -> None: ...
    def background(self, name: str, work: Callable[[], None]) -> threading.Thread: ...


class BrazeAccess(Protocol):
    """What the engine needs from Braze (dbt_braze.braze.BrazeClient)."""

    def track_attributes(self, objects: list[dict[str, Any]]) -> Any: ...
    def delete_users(self, ids: list[str], id_field: Any) -> Any: ...


@dataclass(frozen=True)
class SyncOptions:
    dry_run: bool = False
    full_refresh: bool = False
    # A checkpoint writes acknowledgements to the warehouse; it bounds what a
    # crash can make us send again, and costs one INSERT (~1 s on some warehouses).
    checkpoint_objects: int = 5_000
    checkpoint_seconds: float = 10.0
    batch_size: int = MAX_OBJECTS_PER_REQUEST
    read_batch_rows: int = 10_000
    concurrency: int = 1
    max_rejection_rate: float = 1.0
    rejection_check_objects: int = 500
    run_id: str = "dry-run"


@dataclass
class ModelReport:
    model: str
    users_created: int = 0
    users_updated: int = 0
    attributes_updated: int = 0  # changed values on users Braze already had
    attributes_unset: int = 0
    users_unset: int = 0
    users_deleted: int = 0
    rows_rejected: int = 0
    rejection_samples: list[tuple[str, str]] = field(default_factory=list)
    requests: int = 0
    data_points: int = 0
    attributes_sent: int = 0
    model_rows: int = 0
    withheld_null_rows: int = 0
    withheld_duplicate_keys: int = 0
    withheld_duplicate_rows: int = 0
    duplicate_samples: list[str] = field(default_factory=list)
    removed_ignored: bool = False
    sample_payloads: list[dict[str, Any]] = field(default_factory=list)
    objects_settled: int = 0
    seconds: float = 0.0

    def reject(self, key: str, reason: str) -> None:
        self.rows_rejected += 1
        if len(self.rejection_samples) < 5:
            self.rejection_samples.append((key, reason))

    def counts(self) -> dict[str, int]:
        """The counts the run history keeps (columns of braze_sync_runs)."""
        return {name: getattr(self, name) for name in RUN_COUNTS}


def group_users(batches: Iterable[list[Row]]) -> Iterator[UserChange]:
    """Rows ordered by key → one UserChange per key (rows: key, attribute, text, type, hash, is_new)."""
    key: str | None = None
    changes: list[Row] = []
    is_new = False
    for batch in batches:
        for row in batch:
            row_key = row[0]
            if row_key != key:
                if changes:
                    yield UserChange(str(key), tuple(changes), is_new)
                    changes = []
                key, is_new = row_key, bool(row[5])
            changes.append(row)
    if changes:
        yield UserChange(str(key), tuple(changes), is_new)


class _CheckpointWriter:
    """Writes checkpoints on a thread and connection of their own, so that sending
    never waits on the warehouse (one INSERT takes ~1 s on some warehouses). One
    checkpoint is written while the next fills; the one after waits for it, so
    at most two windows are ever unrecorded (what a crash makes us send again)."""

    def __init__(self, warehouse: WarehouseAccess, model: str, run_id: str) -> None:
        self._warehouse, self._model, self._run_id = warehouse, model, run_id
        self._queue: queue.Queue[tuple[list[Any], list[Any]] | None] = queue.Queue()
        self._idle = threading.Semaphore(1)  # held while a checkpoint is being written
        self._error: BaseException | None = None
        self._thread = warehouse.background("dbt_braze_checkpoints", self._loop)

    def _loop(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                if self._error is None:
                    self._warehouse.checkpoint(self._model, self._run_id, *item)
            except BaseException as exc:  # raised in the sending thread
                self._error = exc
            finally:
                self._idle.release()

    def submit(self, acked: list[Any], rejected: list[Any]) -> None:
        self._idle.acquire()
        self._raise_if_failed()
        self._queue.put((acked, rejected))

    def close(self) -> None:
        """Wait until everything submitted is written; raise what went wrong."""
        self._queue.put(None)
        self._thread.join()
        self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            self._idle.release()
            raise error


class _Checkpoint:
    """Buffers acknowledgements and rejections; hands them to the writer by count or by time."""

    def __init__(
        self,
        writer: _CheckpointWriter | None,
        options: SyncOptions,
        clock: Callable[[], float],
        heartbeat: Callable[[], None],
    ) -> None:
        self._writer, self._options, self._clock = writer, options, clock
        self._heartbeat = heartbeat
        self._acked: list[tuple[str, str, str | None]] = []
        self._rejected: list[tuple[str, str, str | None, str]] = []
        self._objects = 0
        self._since = clock()

    def accepted(self, change: UserChange, *, removed: bool = False) -> None:
        self._objects += 1
        key = change.key
        self._acked.extend((key, c[ATTRIBUTE], None if removed else c[VALUE_HASH]) for c in change.changes)
        self._maybe_flush()

    def rejected(self, change: UserChange, reason: str) -> None:
        self._objects += 1
        key, reason = change.key, reason[:1000]
        self._rejected.extend((key, c[ATTRIBUTE], c[VALUE_HASH], reason) for c in change.changes)
        self._maybe_flush()

    def _maybe_flush(self) -> None:
        if (
            self._objects >= self._options.checkpoint_objects
            or self._clock() - self._since >= self._options.checkpoint_seconds
        ):
            self.flush()

    def flush(self) -> None:
        if self._writer is not None and (self._acked or self._rejected):
            self._writer.submit(self._acked, self._rejected)
            logger.debug("checkpoint of %d objects handed to the writer", self._objects)
        self._acked, self._rejected, self._objects, self._since = [], [], 0, self._clock()
        self._heartbeat()

    def close(self) -> None:
        self.flush()
        if self._writer is not None:
            self._writer.close()


@dataclass
class _InFlight:
    future: Future[Any]
    prepared: list[tuple[UserChange, dict[str, Any]]]
    unset: bool


class SyncEngine:
    def __init__(
        self,
        warehouse: WarehouseAccess,
        braze: BrazeAccess | None,
        options: SyncOptions,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_progress: Callable[[str, int], None] | None = None,
        heartbeat: Callable[[], None] | None = None,
    ) -> None:
        if braze is None and not options.dry_run:
            raise ValueError("a Braze client is required unless dry_run")
        self._warehouse, self._braze, self._options, self._clock = warehouse, braze, options, clock
        self._on_progress = on_progress or (lambda model, objects: None)
        self._heartbeat = heartbeat or (lambda: None)

    def sync_model(
        self, model: ModelSync, relation: RelationRef, report: ModelReport | None = None
    ) -> ModelReport:
        started = self._clock()
        report = report or ModelReport(model.model_name)
        self._rate_checked = False
        self._warehouse.require_pending(model.model_name)
        self.count_withheld(model, report)
        self._check_duplicate_share(model, report)
        writer = None
        if not self._options.dry_run:
            writer = _CheckpointWriter(self._warehouse, model.model_name, self._options.run_id)
        checkpoint = _Checkpoint(writer, self._options, self._clock, self._heartbeat)
        pool = ThreadPoolExecutor(max_workers=self._options.concurrency, thread_name_prefix="braze")
        in_flight: deque[_InFlight] = deque()
        try:
            if self._options.full_refresh:
                sql = self._warehouse.read_full_refresh_sql(relation, model.id_column, model.attributes)
            else:
                sql = self._warehouse.read_upserts_sql(model.model_name)
            self._send_upserts(model, sql, report, checkpoint, pool, in_flight)
            if not self._options.full_refresh:
                self._send_removals(model, report, checkpoint, pool, in_flight)
            while in_flight:
                self._settle(in_flight.popleft(), model, report, checkpoint)
        finally:
            # What Braze already accepted is kept even when the sync stops early.
            self._drain_after_failure(in_flight, model, report, checkpoint)
            pool.shutdown(wait=True, cancel_futures=True)
            checkpoint.close()
            report.seconds = self._clock() - started
        return report

    # -- sending -------------------------------------------------------------------
    def _submit(
        self,
        pool: ThreadPoolExecutor,
        in_flight: deque[_InFlight],
        prepared: list[tuple[UserChange, dict[str, Any]]],
        unset: bool,
        model: ModelSync,
        report: ModelReport,
        checkpoint: _Checkpoint,
    ) -> None:
        assert self._braze is not None
        objects = [obj for _, obj in prepared]
        in_flight.append(_InFlight(pool.submit(self._braze.track_attributes, objects), prepared, unset))
        # Settle in order once the window is full: twice the workers keeps them busy.
        while len(in_flight) >= 2 * self._options.concurrency:
            self._settle(in_flight.popleft(), model, report, checkpoint)

    def _settle(
        self, item: _InFlight, model: ModelSync, report: ModelReport, checkpoint: _Checkpoint
    ) -> None:
        result = item.future.result()
        report.requests += result.requests
        for index in result.accepted:
            change, obj = item.prepared[index]
            self._count_accepted(report, change, obj, unset=item.unset)
            checkpoint.accepted(change, removed=item.unset)
        for index, reason in sorted(result.rejected.items()):
            change, _ = item.prepared[index]
            report.reject(change.key, reason)
            checkpoint.rejected(change, reason)
        report.objects_settled += len(item.prepared)
        self._on_progress(model.model_name, len(item.prepared))
        self._check_rejection_rate(report)

    def _drain_after_failure(
        self, in_flight: deque[_InFlight], model: ModelSync, report: ModelReport, checkpoint: _Checkpoint
    ) -> None:
        while in_flight:
            item = in_flight.popleft()
            if item.future.cancel():
                continue
            try:
                self._settle(item, model, report, checkpoint)
            except Exception:  # the first failure is the one being raised
                logger.debug("request failed while stopping", exc_info=True)

    def _check_rejection_rate(self, report: ModelReport) -> None:
        """Judge the first objects once: when Braze refuses most of them, stop
        rather than burn data points on the rest."""
        if self._rate_checked or report.objects_settled < self._options.rejection_check_objects:
            return
        self._rate_checked = True
        rate = report.rows_rejected / report.objects_settled
        if rate > self._options.max_rejection_rate:
            top = report.rejection_samples[0][1] if report.rejection_samples else "unknown"
            raise SyncError(
                f"{report.model}: stopped early: {report.rows_rejected:,} of the first "
                f"{report.objects_settled:,} objects were rejected "
                f"({rate:.0%} > {self._options.max_rejection_rate:.0%}); first reason: {top}",
                hint="fix the model's values (see the braze_rejected table), or raise "
                "--max-rejection-rate if this is expected",
            )

    def _send_upserts(
        self,
        model: ModelSync,
        sql: str,
        report: ModelReport,
        checkpoint: _Checkpoint,
        pool: ThreadPoolExecutor,
        in_flight: deque[_InFlight],
    ) -> None:
        users = group_users(self._warehouse.stream(sql, self._options.read_batch_rows))
        for batch in batched(users, self._options.batch_size):
            prepared: list[tuple[UserChange, dict[str, Any]]] = []
            for change in batch:
                try:
                    prepared.append(
                        (change, build_object(model.id_field, change, update_only=model.update_only))
                    )
                except LocalRejection as exc:
                    report.reject(change.key, f"rejected before sending: {exc}")
                    if not self._options.dry_run:
                        checkpoint.rejected(change, f"rejected before sending: {exc}")
            if prepared:
                self._send(model, prepared, report, checkpoint, pool, in_flight, unset=False)

    def _send(
        self,
        model: ModelSync,
        prepared: list[tuple[UserChange, dict[str, Any]]],
        report: ModelReport,
        checkpoint: _Checkpoint,
        pool: ThreadPoolExecutor,
        in_flight: deque[_InFlight],
        *,
        unset: bool,
    ) -> None:
        objects = [obj for _, obj in prepared]
        report.data_points += sum(change.data_points for change, _ in prepared)
        if len(report.sample_payloads) < SAMPLE_SIZE:
            report.sample_payloads.extend(objects[: SAMPLE_SIZE - len(report.sample_payloads)])
        if self._options.dry_run:
            report.requests += 1
            for change, obj in prepared:
                self._count_accepted(report, change, obj, unset=unset)
            return
        self._submit(pool, in_flight, prepared, unset, model, report, checkpoint)

    @staticmethod
    def _count_accepted(report: ModelReport, change: UserChange, obj: dict[str, Any], *, unset: bool) -> None:
        report.attributes_sent += change.data_points
        if unset:
            report.users_unset += 1
            report.attributes_unset += change.data_points
        elif change.is_new:
            report.users_created += 1
        else:
            report.users_updated += 1
            report.attributes_updated += change.data_points

    # -- removed rows ----------------------------------------------------------------
    def _send_removals(
        self,
        model: ModelSync,
        report: ModelReport,
        checkpoint: _Checkpoint,
        pool: ThreadPoolExecutor,
        in_flight: deque[_InFlight],
    ) -> None:
        if model.on_removed == "ignore":
            report.removed_ignored = True
            return
        mapped_only = model.on_removed == "unset"
        sql = self._warehouse.read_removed_sql(model.model_name, mapped_only=mapped_only)
        users = group_users(self._warehouse.stream(sql, self._options.read_batch_rows))
        if model.on_removed == "unset":
            for batch in batched(users, self._options.batch_size):
                prepared = [
                    (c, unset_object(model.id_field, c.key, [a[ATTRIBUTE] for a in c.changes])) for c in batch
                ]
                self._send(model, prepared, report, checkpoint, pool, in_flight, unset=True)
            return
        # Deletions go after every upsert has settled, one request at a time:
        # they are irreversible and rare.
        while in_flight:
            self._settle(in_flight.popleft(), model, report, checkpoint)
        for batch in batched(users, MAX_DELETE_IDS):
            if self._options.dry_run:
                report.requests += 1
                report.users_deleted += len(batch)
                continue
            assert self._braze is not None
            result = self._braze.delete_users([c.key for c in batch], model.id_field)
            report.requests += result.requests
            deleted = set(result.deleted)
            for change in batch:
                if change.key in deleted:
                    report.users_deleted += 1
                    checkpoint.accepted(change, removed=True)
            self._on_progress(model.model_name, len(batch))

    @staticmethod
    def _check_duplicate_share(model: ModelSync, report: ModelReport) -> None:
        """A model whose identifiers are badly duplicated is probably broken (a bad
        join): pause it rather than send half of it."""
        if report.model_rows <= 0:
            return
        share = report.withheld_duplicate_rows / report.model_rows
        if share > model.max_duplicate_share:
            raise SyncError(
                f"{model.model_name}: not synced: {report.withheld_duplicate_rows:,} of "
                f"{report.model_rows:,} rows ({share:.1%}) share an identifier, above "
                f"max_duplicate_share {model.max_duplicate_share:.1%}; "
                f"e.g. {', '.join(report.duplicate_samples[:3])}",
                hint="fix the model so that each identifier appears once, or raise "
                "`max_duplicate_share` in its braze meta block",
            )

    def count_withheld(self, model: ModelSync, report: ModelReport) -> None:
        report.withheld_null_rows = report.withheld_duplicate_keys = report.withheld_duplicate_rows = 0
        report.duplicate_samples = []
        for kind, key, rows in self._warehouse.withheld(model.model_name):
            if kind == "model_rows":
                report.model_rows = int(rows)
            elif kind == "withheld_null":
                report.withheld_null_rows += int(rows)
            else:
                report.withheld_duplicate_keys += 1
                report.withheld_duplicate_rows += int(rows)
                if len(report.duplicate_samples) < 5:
                    report.duplicate_samples.append(f"{key} ({rows} rows)")
