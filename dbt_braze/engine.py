"""The sync loop: pending rows → Braze objects → requests → acknowledged state.

For each model: read the pending changes in key order, one object per user,
send them in batches, and checkpoint what Braze accepted (and what it
rejected, with its reason) into the warehouse every few thousand objects or
seconds. The state only ever advances for accepted objects, so a sync that
fails or is killed loses nothing: the next one finds the rest still pending.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from dbt_braze.config import ModelSync
from dbt_braze.payloads import (
    MAX_OBJECTS_PER_REQUEST,
    AttributeChange,
    LocalRejection,
    UserChange,
    batched,
    build_object,
    data_points,
    unset_object,
)
from dbt_braze.warehouse import RelationRef, Row

logger = logging.getLogger(__name__)

# braze-api-notes.md: /users/delete takes at most 50 ids per request.
MAX_DELETE_IDS = 50
SAMPLE_SIZE = 3


class WarehouseAccess(Protocol):
    """What the engine needs from the warehouse (dbt_braze.warehouse.Warehouse)."""

    def require_pending(self, model_name: str) -> None: ...
    def withheld(self, model_name: str) -> list[Row]: ...
    def stream(self, sql: str, batch_rows: int = ...) -> Iterator[list[Row]]: ...
    def read_upserts_sql(self, model_name: str) -> str: ...
    def read_removed_sql(self, model_name: str, *, mapped_only: bool) -> str: ...
    def read_full_refresh_sql(self, relation: RelationRef, id_column: str, mappings: Any) -> str: ...
    def acknowledge(self, model_name: str, rows: Any) -> None: ...
    def record_rejected(self, model_name: str, rows: Any) -> None: ...


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


@dataclass
class ModelReport:
    model: str
    users_created: int = 0
    users_updated: int = 0
    attributes_unset: int = 0
    users_unset: int = 0
    users_deleted: int = 0
    rows_rejected: int = 0
    rejection_samples: list[tuple[str, str]] = field(default_factory=list)
    requests: int = 0
    data_points: int = 0
    attributes_sent: int = 0
    withheld_null_rows: int = 0
    withheld_duplicate_keys: int = 0
    withheld_duplicate_rows: int = 0
    duplicate_samples: list[str] = field(default_factory=list)
    removed_ignored: bool = False
    sample_payloads: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def reject(self, key: str, reason: str) -> None:
        self.rows_rejected += 1
        if len(self.rejection_samples) < 5:
            self.rejection_samples.append((key, reason))


def group_users(batches: Iterable[list[Row]]) -> Iterator[UserChange]:
    """Rows ordered by key → one UserChange per key (rows: key, attribute, text, type, hash, is_new)."""
    key: str | None = None
    changes: list[AttributeChange] = []
    is_new = False
    for batch in batches:
        for row_key, attribute, text, value_type, value_hash, row_is_new in batch:
            if row_key != key and changes:
                yield UserChange(str(key), tuple(changes), is_new)
                changes = []
            key, is_new = row_key, bool(row_is_new)
            changes.append(AttributeChange(attribute, text, value_type, value_hash))
    if changes:
        yield UserChange(str(key), tuple(changes), is_new)


class _Checkpoint:
    """Buffers acknowledgements and rejections; flushes by count or by time."""

    def __init__(self, warehouse: WarehouseAccess, model: str, options: SyncOptions,
                 clock: Callable[[], float]) -> None:
        self._warehouse, self._model, self._options, self._clock = warehouse, model, options, clock
        self._acked: list[tuple[str, str, str | None]] = []
        self._rejected: list[tuple[str, str, str | None, str]] = []
        self._objects = 0
        self._since = clock()

    def accepted(self, change: UserChange, *, removed: bool = False) -> None:
        self._objects += 1
        for c in change.changes:
            self._acked.append((change.key, c.attribute, None if removed else c.value_hash))
        self._maybe_flush()

    def rejected(self, change: UserChange, reason: str) -> None:
        self._objects += 1
        for c in change.changes:
            self._rejected.append((change.key, c.attribute, c.value_hash, reason[:1000]))
        self._maybe_flush()

    def _maybe_flush(self) -> None:
        if (self._objects >= self._options.checkpoint_objects
                or self._clock() - self._since >= self._options.checkpoint_seconds):
            self.flush()

    def flush(self) -> None:
        if self._rejected:
            self._warehouse.record_rejected(self._model, self._rejected)
        if self._acked:
            self._warehouse.acknowledge(self._model, self._acked)
        logger.debug("%s: checkpoint of %d objects", self._model, self._objects)
        self._acked, self._rejected, self._objects, self._since = [], [], 0, self._clock()


class SyncEngine:
    def __init__(self, warehouse: WarehouseAccess, braze: BrazeAccess | None, options: SyncOptions,
                 *, clock: Callable[[], float] = time.monotonic,
                 on_progress: Callable[[str, int], None] | None = None) -> None:
        if braze is None and not options.dry_run:
            raise ValueError("a Braze client is required unless dry_run")
        self._warehouse, self._braze, self._options, self._clock = warehouse, braze, options, clock
        self._on_progress = on_progress or (lambda model, objects: None)

    def sync_model(self, model: ModelSync, relation: RelationRef) -> ModelReport:
        started = self._clock()
        report = ModelReport(model.model_name)
        self._warehouse.require_pending(model.model_name)
        self._count_withheld(model, report)
        checkpoint = _Checkpoint(self._warehouse, model.model_name, self._options, self._clock)
        try:
            if self._options.full_refresh:
                sql = self._warehouse.read_full_refresh_sql(relation, model.id_column, model.attributes)
            else:
                sql = self._warehouse.read_upserts_sql(model.model_name)
            self._send_upserts(model, sql, report, checkpoint)
            if not self._options.full_refresh:
                self._send_removals(model, report, checkpoint)
        finally:
            if not self._options.dry_run:
                checkpoint.flush()
            report.seconds = self._clock() - started
        return report

    # -- upserts -------------------------------------------------------------
    def _send_upserts(self, model: ModelSync, sql: str, report: ModelReport,
                      checkpoint: _Checkpoint) -> None:
        users = group_users(self._warehouse.stream(sql, self._options.read_batch_rows))
        for batch in batched(users, self._options.batch_size):
            prepared: list[tuple[UserChange, dict[str, Any]]] = []
            for change in batch:
                try:
                    prepared.append((change, build_object(model.id_field, change, update_only=model.update_only)))
                except LocalRejection as exc:
                    report.reject(change.key, f"rejected before sending: {exc}")
                    if not self._options.dry_run:
                        checkpoint.rejected(change, f"rejected before sending: {exc}")
            if prepared:
                self._track(model, prepared, report, checkpoint)

    def _track(self, model: ModelSync, prepared: list[tuple[UserChange, dict[str, Any]]],
               report: ModelReport, checkpoint: _Checkpoint, *, unset: bool = False) -> None:
        objects = [obj for _, obj in prepared]
        points = sum(data_points(obj) for obj in objects)
        if len(report.sample_payloads) < SAMPLE_SIZE:
            report.sample_payloads.extend(objects[: SAMPLE_SIZE - len(report.sample_payloads)])
        if self._options.dry_run:
            report.requests += 1
            report.data_points += points
            for change, obj in prepared:
                self._count_accepted(report, change, obj, unset=unset)
            return
        assert self._braze is not None
        result = self._braze.track_attributes(objects)
        report.requests += result.requests
        report.data_points += points
        for index in result.accepted:
            change, obj = prepared[index]
            self._count_accepted(report, change, obj, unset=unset)
            checkpoint.accepted(change, removed=unset)
        for index, reason in sorted(result.rejected.items()):
            change, _ = prepared[index]
            report.reject(change.key, reason)
            checkpoint.rejected(change, reason)
        self._on_progress(model.model_name, len(objects))

    @staticmethod
    def _count_accepted(report: ModelReport, change: UserChange, obj: dict[str, Any], *, unset: bool) -> None:
        report.attributes_sent += data_points(obj)
        if unset:
            report.users_unset += 1
            report.attributes_unset += data_points(obj)
        elif change.is_new:
            report.users_created += 1
        else:
            report.users_updated += 1

    # -- removed rows ----------------------------------------------------------
    def _send_removals(self, model: ModelSync, report: ModelReport, checkpoint: _Checkpoint) -> None:
        if model.on_removed == "ignore":
            report.removed_ignored = True
            return
        mapped_only = model.on_removed == "unset"
        sql = self._warehouse.read_removed_sql(model.model_name, mapped_only=mapped_only)
        users = group_users(self._warehouse.stream(sql, self._options.read_batch_rows))
        if model.on_removed == "unset":
            for batch in batched(users, self._options.batch_size):
                prepared = [(c, unset_object(model.id_field, c.key, [a.attribute for a in c.changes]))
                            for c in batch]
                self._track(model, prepared, report, checkpoint, unset=True)
            return
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

    def _count_withheld(self, model: ModelSync, report: ModelReport) -> None:
        for kind, key, rows in self._warehouse.withheld(model.model_name):
            if kind == "withheld_null":
                report.withheld_null_rows += int(rows)
            else:
                report.withheld_duplicate_keys += 1
                report.withheld_duplicate_rows += int(rows)
                if len(report.duplicate_samples) < 5:
                    report.duplicate_samples.append(f"{key} ({rows} rows)")
