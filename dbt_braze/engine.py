"""The sync loop: pending rows → Braze objects → requests → acknowledged state.

For each model: stream the reads its kind names (dbt_braze/kinds/: for users,
one row per user holding its object as JSON rendered by the warehouse), let
the kind turn each row into what Braze is sent, send batches concurrently
(a bounded window of requests in flight), settle their answers in order,
and checkpoint what Braze accepted (and what it rejected, with its reason)
into the warehouse every few thousand objects or seconds. The state only
ever advances for accepted objects, so a sync that fails or is killed loses
nothing: the next one finds the rest still pending, and at most one checkpoint
window plus the requests in flight are sent again.

Events and purchases (kinds whose `at_most_once` is set) are never sent
again: each window of them is recorded in flight, in one write, before it is
sent; an answer that cannot be known makes its rows `unknown`, and so does a
crash for the rows it left in flight (recorded when the next sync starts).

Each user appears in exactly one object of one batch per sync (the read
groups the pending rows by key), so two requests in flight never touch one user.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

from dbt_braze import compaction
from dbt_braze.compaction import CompactionStore
from dbt_braze.config import ModelSync
from dbt_braze.errors import BrazeAuthError, LockedError, SyncError, WarehouseError
from dbt_braze.kinds import kind_of
from dbt_braze.kinds.base import UNSENT, Answer, BrazeAccess, Sendable, Stream
from dbt_braze.progress import Progress
from dbt_braze.rows import EventRecord, ObjectAcks, Read, RelationRef, Row, UserAck, UserRejection
from dbt_braze.runlog import RunLog, RunStore
from dbt_braze.settings import SyncMode, SyncSettings

logger = logging.getLogger(__name__)

# The mass-removal guard (contract, "Safety rules") never pauses a sync that removes
# this many users or fewer: small models and everyday churn go through, while an
# emptied model of any real size is caught.
REMOVAL_GUARD_FLOOR = 10
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
    "subscription_changes",
)
# users per read batch: a row holds a whole object (~1 KB in Python)
READ_BATCH_ROWS = 2_000
SEND = SyncMode()  # a plain sync: send what is pending


class WarehouseAccess(CompactionStore, RunStore, Protocol):
    """What the engine needs from the warehouse (dbt_braze.store.Store)."""

    def require_pending(self, model_name: str) -> None: ...
    def pending_is_stale(self, model_name: str) -> bool: ...
    def pending_built_at(self, model_name: str) -> Any: ...
    def pending_key_prefix(self, model: ModelSync) -> str: ...
    def rebuild_pending(self, model: ModelSync, relation: RelationRef) -> None: ...
    def withheld(self, model_name: str) -> list[Row]: ...
    def pending_users(self, model_name: str) -> dict[str, int]: ...
    def rows(self, read: Read, batch_rows: int) -> Iterator[list[Row]]: ...
    def checkpoint(
        self,
        model_name: str,
        run_id: str,
        acked: Any,
        rejected: Any,
        acked_objects: ObjectAcks | None,
        *,
        kind: str,
    ) -> None: ...
    def background(self, name: str, work: Callable[[], None]) -> threading.Thread: ...
    def record_events(
        self, model_name: str, run_id: str, records: list[EventRecord], *, kind: str
    ) -> None: ...
    def move_events(
        self, model_name: str, run_id: str, from_status: str, to_status: str, reason: str
    ) -> None: ...
    def event_counts(self, model_name: str) -> dict[str, int]: ...
    def event_statuses(self, model_name: str) -> dict[str, int]: ...


@dataclass
class ModelReport:
    model: str
    users_created: int = 0
    users_updated: int = 0
    attributes_updated: int = 0  # changed values on users Braze already had
    attributes_unset: int = 0
    users_unset: int = 0
    users_deleted: int = 0
    users_forgotten: int = 0  # recorded under another identifier: state forgotten, nothing sent
    rows_rejected: int = 0
    rejection_samples: list[tuple[str, str]] = field(default_factory=list)
    requests: int = 0
    data_points: int = 0
    attributes_sent: int = 0
    # subscription group states: never data points (contract, "Subscription states")
    subscription_changes: int = 0
    subscribes_withheld: int = 0  # not sent under `subscriptions: unsubscribe_only`
    model_rows: int = 0
    withheld_null_rows: int = 0
    withheld_duplicate_keys: int = 0
    withheld_duplicate_rows: int = 0
    duplicate_samples: list[str] = field(default_factory=list)
    removed_ignored: bool = False
    sample_payloads: list[dict[str, Any]] = field(default_factory=list)
    objects_settled: int = 0
    seconds: float = 0.0
    # kinds events and purchases
    events_sent: int = 0  # accepted by Braze in this run
    events_unknown: int = 0  # whose outcome became unknown in this run
    unknown_samples: list[tuple[str, str]] = field(default_factory=list)
    unknown_rows: int = 0  # ids whose outcome is unknown once the run ended
    changed_after_sending: int = 0  # rows changed after they were sent: never sent again
    compacted: list[str] = field(default_factory=list)  # the logs compacted after the sync
    # kind catalog (no data points): items by what Braze was asked to do with them
    items_created: int = 0  # POST
    items_updated: int = 0  # PATCH, of their changed fields
    items_deleted: int = 0
    items_replaced: int = 0  # PUT: --full-refresh
    items_existed: int = 0  # POST of an item Braze had already (made outside dbt-braze): sent as PUT

    def reject(self, key: str, reason: str) -> None:
        self.rows_rejected += 1
        if len(self.rejection_samples) < 5:
            self.rejection_samples.append((key, reason))

    def unknown(self, key: str, reason: str) -> None:
        self.events_unknown += 1
        if len(self.unknown_samples) < 5:
            self.unknown_samples.append((key, reason))

    def counts(self) -> dict[str, int]:
        """The counts the run history keeps (columns of braze_sync_runs). A catalog model's
        items are kept in the users_* columns (a model syncs one kind)."""
        counts = {name: getattr(self, name) for name in RUN_COUNTS}
        counts["users_created"] += self.items_created + self.items_existed
        counts["users_updated"] += self.items_updated + self.items_replaced
        counts["users_deleted"] += self.items_deleted
        return counts

    def count_accepted(self, item: Sendable) -> None:
        """Counted once Braze accepted the object (or, in a dry run, as the estimate): a
        failed request delivered nothing and costs nothing to report."""
        self.data_points += item.data_points
        self.attributes_sent += item.data_points
        self.subscription_changes += item.subscription_changes
        self.subscribes_withheld += item.subscribes_withheld
        if item.outcome == UNSENT:
            return
        if item.outcome.startswith("item_"):
            self._count_item(item)
        elif item.at_most_once:
            self.events_sent += 1
        elif item.outcome == "deleted":
            self.users_deleted += 1
        elif item.outcome == "forgotten":
            self.users_forgotten += 1
        elif item.outcome == "unset":
            self.users_unset += 1
            self.attributes_unset += item.data_points
        elif item.outcome == "created":
            self.users_created += 1
        else:
            self.users_updated += 1
            self.attributes_updated += item.data_points

    def _count_item(self, item: Sendable) -> None:
        """A catalog item (kinds/catalogs.py OUTCOMES); catalog writes are no data points."""
        name = {
            "item_created": "items_created",
            "item_updated": "items_updated",
            "item_deleted": "items_deleted",
            "item_replaced": "items_replaced",
            "item_existed": "items_existed",
        }[item.outcome]
        setattr(self, name, getattr(self, name) + 1)


class _CheckpointWriter:
    """Writes checkpoints on a thread and connection of their own, so that sending
    never waits on the warehouse (one INSERT takes ~1 s on some warehouses). One
    checkpoint is written while the next fills; the one after waits for it, so
    at most two windows are ever unrecorded (what a crash makes us send again)."""

    def __init__(self, warehouse: WarehouseAccess, model: str, run_id: str, kind: str) -> None:
        self._warehouse, self._model, self._run_id, self._kind = warehouse, model, run_id, kind
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._idle = threading.Semaphore(1)  # held while a checkpoint is being written
        self._error: BaseException | None = None
        self._thread = warehouse.background("dbt_braze_checkpoints", self._loop)

    def _loop(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                if self._error is None:
                    item()
            except BaseException as exc:  # raised in the sending thread
                self._error = exc
            finally:
                self._idle.release()

    def submit(self, acked: list[Any], rejected: list[Any], acked_objects: ObjectAcks | None) -> None:
        warehouse, model, run_id, kind = self._warehouse, self._model, self._run_id, self._kind
        self._submit(lambda: warehouse.checkpoint(model, run_id, acked, rejected, acked_objects, kind=kind))

    def submit_events(self, records: list[EventRecord]) -> None:
        warehouse, model, run_id, kind = self._warehouse, self._model, self._run_id, self._kind
        self._submit(lambda: warehouse.record_events(model, run_id, records, kind=kind))

    def wait(self) -> None:
        """Until everything submitted is written; raise what went wrong."""
        self._idle.acquire()
        self._idle.release()
        self._raise_if_failed()

    def _submit(self, work: Callable[[], None]) -> None:
        self._idle.acquire()
        self._raise_if_failed()
        self._queue.put(work)

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
        settings: SyncSettings,
        clock: Callable[[], float],
        heartbeat: Callable[[], None],
    ) -> None:
        self._writer, self._settings, self._clock = writer, settings, clock
        self._heartbeat = heartbeat
        # Users read from braze_objects__<model>: acknowledged by key (the warehouse takes
        # names and hashes from there, or from these entries if it was rebuilt since).
        # Others (removed users, --full-refresh): one entry per user, (key, attributes,
        # hashes), lists the warehouse unpacks.
        self._acked_objects: list[UserAck] = []
        self._stamp: str | None = None
        self._acked: list[UserAck] = []
        self._rejected: list[UserRejection] = []
        self._events: list[EventRecord] = []  # kinds events and purchases: braze_events_log
        self._objects = 0
        self._since = clock()

    def accepted(self, item: Sendable) -> None:
        self._objects += 1
        if item.at_most_once:
            self._events.append((item.key, item.ack[1], "delivered", None))
        elif item.stamp is None:
            self._acked.append(item.ack)
        else:
            if self._stamp is not None and item.stamp != self._stamp:
                self.flush()
            self._stamp = item.stamp
            self._acked_objects.append(item.ack)
        self._maybe_flush()

    def rejected(self, item: Sendable, reason: str) -> None:
        self._objects += 1
        if item.at_most_once:
            self._events.append((item.key, item.ack[1], "rejected", reason[:1000]))
        else:
            self._rejected.append((*item.ack, reason[:1000]))
        self._maybe_flush()

    def unknown(self, item: Sendable, reason: str) -> None:
        self._objects += 1
        self._events.append((item.key, item.ack[1], "unknown", reason[:1000]))
        self._maybe_flush()

    def in_flight(self, items: list[Sendable]) -> None:
        """Record, before they are sent, that these events may reach Braze: a crash after
        this leaves them `unknown`, never pending. Written with what settled before,
        and waited for."""
        self.flush()
        if self._writer is not None:
            self._writer.submit_events([(item.key, item.ack[1], "in_flight", None) for item in items])
            self._writer.wait()

    def _maybe_flush(self) -> None:
        if (
            self._objects >= self._settings.checkpoint_objects
            or self._clock() - self._since >= self._settings.checkpoint_seconds
        ):
            self.flush()

    def flush(self) -> None:
        if self._writer is not None and self._events:
            self._writer.submit_events(self._events)
        if self._writer is not None and (self._acked or self._rejected or self._acked_objects):
            by_key = (
                ObjectAcks(self._stamp, self._acked_objects) if self._stamp and self._acked_objects else None
            )
            self._writer.submit(self._acked, self._rejected, by_key)
            logger.debug("checkpoint of %d objects handed to the writer", self._objects)
        self._acked, self._rejected, self._objects, self._since = [], [], 0, self._clock()
        self._acked_objects, self._events = [], []
        self._heartbeat()

    def close(self) -> None:
        self.flush()
        if self._writer is not None:
            self._writer.close()


@dataclass
class _InFlight:
    future: Future[Any]
    prepared: list[Sendable]


class SyncEngine:
    def __init__(
        self,
        warehouse: WarehouseAccess,
        braze: BrazeAccess | None,
        settings: SyncSettings,
        mode: SyncMode = SEND,
        *,
        run_id: str = "dry-run",
        clock: Callable[[], float] = time.monotonic,
        on_progress: Callable[[str, int], None] | None = None,
        heartbeat: Callable[[], None] | None = None,
        read_batch_rows: int = READ_BATCH_ROWS,
    ) -> None:
        if braze is None and not mode.dry_run:
            raise ValueError("a Braze client is required unless dry_run")
        self._warehouse, self._braze, self._clock = warehouse, braze, clock
        self._settings, self._mode, self._run_id = settings, mode, run_id
        self._read_batch_rows = read_batch_rows
        self._on_progress = on_progress or (lambda model, objects: None)
        self._heartbeat = heartbeat or (lambda: None)

    def sync_model(
        self, model: ModelSync, relation: RelationRef, report: ModelReport | None = None
    ) -> ModelReport:
        started = self._clock()
        report = report or ModelReport(model.model_name)
        report.removed_ignored = model.on_removed == "ignore"
        self._rate_checked = False
        self._warehouse.require_pending(model.model_name)
        self._check_pending_identifier(model)
        self.count_withheld(model, report)
        self._check_duplicate_share(model, report)
        if not self._mode.full_refresh:  # a full refresh leaves removed rows alone
            self._check_removed_share(model, report)
        kind = kind_of(model)
        if kind.at_most_once:
            self._start_at_most_once(model, report)
        writer = None
        if not self._mode.dry_run:
            writer = _CheckpointWriter(self._warehouse, model.model_name, self._run_id, model.kind)
        checkpoint = _Checkpoint(writer, self._settings, self._clock, self._heartbeat)
        pool = ThreadPoolExecutor(max_workers=self._settings.concurrency, thread_name_prefix="braze")
        in_flight: deque[_InFlight] = deque()
        try:
            for stream in kind.streams(model, relation, self._mode):
                self._send_stream(stream, model, report, checkpoint, pool, in_flight)
            while in_flight:
                self._settle(in_flight.popleft(), model, report, checkpoint)
        finally:
            # What Braze already accepted is kept even when the sync stops early.
            self._drain_after_failure(in_flight, model, report, checkpoint)
            pool.shutdown(wait=True, cancel_futures=True)
            checkpoint.close()
            report.seconds = self._clock() - started
        if kind.at_most_once:
            statuses = self._warehouse.event_statuses(model.model_name)
            report.unknown_rows = statuses.get("unknown", 0) + statuses.get("in_flight", 0)
        return report

    def _start_at_most_once(self, model: ModelSync, report: ModelReport) -> None:
        """Events: under the model's lock, ids still in flight were left by a sync that
        stopped before their outcome was recorded: they are unknown, never pending.
        --forget-unknown then records the unknown ones as delivered."""
        report.changed_after_sending = self._warehouse.event_counts(model.model_name).get(
            "changed_after_sending", 0
        )
        if self._mode.dry_run:
            return
        name = model.model_name
        reason = "a sync stopped before Braze's answer was recorded"
        self._warehouse.move_events(name, self._run_id, "in_flight", "unknown", reason)
        if self._mode.forget_unknown:
            reason = "recorded as delivered by --forget-unknown"
            self._warehouse.move_events(name, self._run_id, "unknown", "delivered", reason)

    # -- sending -------------------------------------------------------------------
    def _send_stream(
        self,
        stream: Stream,
        model: ModelSync,
        report: ModelReport,
        checkpoint: _Checkpoint,
        pool: ThreadPoolExecutor,
        in_flight: deque[_InFlight],
    ) -> None:
        """Every row of one read, prepared by its kind, in batches to its endpoint."""
        delivery = stream.delivery
        if delivery.exclusive:
            # irreversible and rare: after every request before has settled, one at a time
            while in_flight:
                self._settle(in_flight.popleft(), model, report, checkpoint)
        prepared = (stream.prepare(row) for row in self._rows(stream.read))
        window: list[list[Sendable]] = []  # events: batches recorded in_flight together
        for batch in batched(prepared, delivery.batch_size(self._settings.batch_size)):
            sendable = []
            for item in batch:
                if item.refused is None and item.outcome != UNSENT:
                    sendable.append(item)
                elif item.refused is not None:
                    self._refuse(item, report, checkpoint)
                else:
                    # nothing of it goes to Braze (withheld subscribes): acknowledged as it is
                    report.count_accepted(item)
                    if not self._mode.dry_run:
                        checkpoint.accepted(item)
            if not sendable:
                continue
            if not delivery.exclusive and len(report.sample_payloads) < SAMPLE_SIZE:
                report.sample_payloads.extend(
                    json.loads(item.body) for item in sendable[: SAMPLE_SIZE - len(report.sample_payloads)]
                )
            if self._mode.dry_run:
                # forgetting a user's state (kinds/users.py, Forget) takes no request
                report.requests += any(item.outcome != "forgotten" for item in sendable)
                for item in sendable:
                    report.count_accepted(item)
                continue
            if sendable[0].at_most_once:
                window.append(sendable)
                if sum(map(len, window)) >= self._settings.checkpoint_objects:
                    self._send_window(window, stream, model, report, checkpoint, pool, in_flight)
                    window = []
                continue
            self._submit(sendable, stream, model, report, checkpoint, pool, in_flight)
        if window:
            self._send_window(window, stream, model, report, checkpoint, pool, in_flight)

    def _send_window(
        self,
        window: list[list[Sendable]],
        stream: Stream,
        model: ModelSync,
        report: ModelReport,
        checkpoint: _Checkpoint,
        pool: ThreadPoolExecutor,
        in_flight: deque[_InFlight],
    ) -> None:
        """Events: one write records a checkpoint's worth of them in flight, then they go."""
        checkpoint.in_flight([item for batch in window for item in batch])
        for batch in window:
            self._submit(batch, stream, model, report, checkpoint, pool, in_flight)

    def _submit(
        self,
        sendable: list[Sendable],
        stream: Stream,
        model: ModelSync,
        report: ModelReport,
        checkpoint: _Checkpoint,
        pool: ThreadPoolExecutor,
        in_flight: deque[_InFlight],
    ) -> None:
        braze = self._braze
        assert braze is not None
        delivery = stream.delivery
        in_flight.append(_InFlight(pool.submit(delivery.send, braze, sendable), sendable))
        # Settle in order once the window is full: twice the workers keeps them busy.
        limit = 1 if delivery.exclusive else 2 * self._settings.concurrency
        while len(in_flight) >= limit:
            self._settle(in_flight.popleft(), model, report, checkpoint)

    def _refuse(self, item: Sendable, report: ModelReport, checkpoint: _Checkpoint) -> None:
        reason = f"rejected before sending: {item.refused}"
        report.reject(item.key, reason)
        if not self._mode.dry_run:
            checkpoint.rejected(item, reason)

    def _settle(
        self, item: _InFlight, model: ModelSync, report: ModelReport, checkpoint: _Checkpoint
    ) -> None:
        answer: Answer = item.future.result()
        report.requests += answer.requests
        replaced = set(answer.replaced)
        for index in answer.accepted:
            sendable = item.prepared[index]
            if index in replaced:  # a catalog item that existed in Braze already: sent as PUT
                sendable = sendable._replace(outcome="item_existed")
            report.count_accepted(sendable)
            checkpoint.accepted(sendable)
        for index, reason in sorted(answer.rejected.items()):
            sendable = item.prepared[index]
            report.reject(sendable.key, reason)
            checkpoint.rejected(sendable, reason)
        for index, reason in sorted(answer.unknown.items()):
            sendable = item.prepared[index]
            report.unknown(sendable.key, reason)
            checkpoint.unknown(sendable, reason)
        report.objects_settled += len(item.prepared)
        self._on_progress(model.model_name, len(item.prepared))
        if answer.error is not None:  # raised once what the request settled is recorded
            raise answer.error
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
        if self._rate_checked or report.objects_settled < self._settings.rejection_check_objects:
            return
        self._rate_checked = True
        rate = report.rows_rejected / report.objects_settled
        if rate > self._settings.max_rejection_rate:
            top = report.rejection_samples[0][1] if report.rejection_samples else "unknown"
            raise SyncError(
                f"{report.model}: stopped early: {report.rows_rejected:,} of the first "
                f"{report.objects_settled:,} objects were rejected "
                f"({rate:.0%} > {self._settings.max_rejection_rate:.0%}); first reason: {top}",
                hint="fix the model's values (see the braze_rejected table), or raise "
                "--max-rejection-rate if this is expected",
            )

    def _rows(self, read: Read) -> Iterator[Row]:
        for batch in self._warehouse.rows(read, self._read_batch_rows):
            yield from batch

    def _check_pending_identifier(self, model: ModelSync) -> None:
        """Pending changes computed for another identifier (the meta block changed since the
        last `dbt run`) hold keys of another kind: sending them would address other users."""
        computed_for = self._warehouse.pending_key_prefix(model)
        if computed_for != model.key_prefix:
            raise SyncError(
                f"{model.model_name}: not synced: its pending changes were computed for "
                f"{_keys_of(computed_for)}, but the model is keyed by {_keys_of(model.key_prefix)} "
                "now (its identifier changed since the last `dbt run`)",
                hint="run `dbt run` to compute them for the model's identifier, then sync again",
            )

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

    def _check_removed_share(self, model: ModelSync, report: ModelReport) -> None:
        """The mass-removal guard: a model that suddenly lacks most of its users is far
        more often a broken upstream (an empty join, a bad filter) than a real purge,
        and a delete cannot be undone. Pause the whole model, before anything of it
        is sent, when its removals exceed `max_removed_share` of the users it has in
        Braze. Those are the removed users plus the model's unique identifiers that
        are not new (a changed identifier column therefore counts as removing
        everyone: every old key is removed, every new one is new)."""
        if model.on_removed == "ignore" or self._mode.allow_removals:
            return
        users = self._warehouse.pending_users(model.model_name)
        removed = users.get("removed", 0)
        if removed <= REMOVAL_GUARD_FLOOR:
            return
        unique_keys = report.model_rows - report.withheld_duplicate_rows - report.withheld_null_rows
        in_braze = removed + max(0, unique_keys - users.get("new", 0))
        share = removed / in_braze
        if share > model.max_removed_share:
            verb = "delete" if model.on_removed == "delete" else "unset the attributes of"
            raise SyncError(
                f"{model.model_name}: paused, nothing of it was sent: this sync would {verb} "
                f"{removed:,} of the {in_braze:,} users the model has in Braze ({share:.1%}), above "
                f"max_removed_share {model.max_removed_share:.1%}; the model has {unique_keys:,} "
                "unique identifiers now (an empty or shrunken model is usually a broken upstream)",
                hint="check the model; if these removals are intended, run the sync again with "
                "--allow-removals (this run only), or raise `max_removed_share` in its braze meta block",
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


def sync_one(
    warehouse: WarehouseAccess,
    braze: BrazeAccess | None,
    model: ModelSync,
    relation: RelationRef,
    settings: SyncSettings,
    mode: SyncMode,
    *,
    progress_to: TextIO,
) -> tuple[ModelReport, str | None]:
    """One model's whole sync: under its lock, re-diff a pending relation that an
    overlapping sync made stale, send, and re-diff again when a `dbt run` rebuilt it
    meanwhile; record the run. Returns the report and why the model failed, if it did.
    A failure that would fail every other model too (401/403, the warehouse) is raised."""
    report = ModelReport(model.model_name)
    if mode.dry_run:
        try:
            SyncEngine(warehouse, None, settings, mode).sync_model(model, relation, report)
        except SyncError as exc:  # e.g. a model paused for its duplicates: plan says so
            return report, str(exc)
        return report, None
    run = RunLog(warehouse, model.model_name, lease_seconds=settings.lock_lease_seconds, kind=model.kind)
    try:
        run.start()
    except LockedError as exc:  # this model only: the others still sync
        return report, str(exc)
    rediffs = not kind_of(model).at_most_once  # the events read skips logged ids itself
    if rediffs:
        try:  # Spark: wait for a compaction of the logs, finish one a crash interrupted
            compaction.prepare(warehouse, lease_seconds=settings.lock_lease_seconds)
        except LockedError as exc:
            run.finish("locked", report.counts(), str(exc))
            return report, str(exc)
    progress = Progress(model.model_name, _pending_users(warehouse, model), progress_to)
    engine = SyncEngine(
        warehouse,
        braze,
        settings,
        mode,
        run_id=run.run_id,
        heartbeat=run.heartbeat,
        on_progress=lambda _model, objects: progress.advance(objects),
    )
    status, error = "interrupted", None
    counted: dict[str, int] = {}  # the logs' sizes for the next sync's trigger (none: it counts)
    try:
        # Before the first model sends anything, pending or not (the client keeps the answer
        # for the others): a revoked key fails every scheduled sync, recorded as failed.
        assert braze is not None
        braze.check_access()
        if rediffs and warehouse.pending_is_stale(model.model_name):
            # a sync that overlapped the last `dbt run` acknowledged after it: re-diff
            warehouse.rebuild_pending(model, relation)
        built_at = warehouse.pending_built_at(model.model_name)
        engine.sync_model(model, relation, report)
        if rediffs and warehouse.pending_built_at(model.model_name) != built_at:
            # a `dbt run` rebuilt the pending changes while we sent: its diff may
            # predate our acknowledgements, so recompute it now that we are done
            warehouse.rebuild_pending(model, relation)
        if rediffs:
            # after the last checkpoint and re-diff, still under the model's lock (also when this
            # sync wrote nothing: a compaction a crash or an error left undone is retried)
            try:
                done = compaction.compact(
                    warehouse,
                    model.model_name,
                    run.run_id,
                    ratio=settings.compaction_ratio,
                    lease_seconds=settings.lock_lease_seconds,
                )
                report.compacted = done.logs
                counted = done.latest_count.as_run_columns() if done.latest_count else {}
            except WarehouseError as exc:
                # upkeep, not the sync: what Braze accepted is recorded, and a failed compaction
                # leaves the logs as they were (one transaction; a rewrite is finished next run)
                logger.warning(
                    "%s: the logs were not compacted (the next sync tries again): %s",
                    model.model_name,
                    exc.message,
                )
        status = "success"
        if report.unknown_rows:
            return report, unknown_message(report)
    except SyncError as exc:
        status, error = "failed", exc.message
        if isinstance(exc, (BrazeAuthError, WarehouseError)):
            raise
        return report, str(exc)  # with its hint: what to do about this model
    finally:
        progress.close()
        run.finish(status, {**report.counts(), **counted}, error)
    return report, None


def unknown_message(report: ModelReport) -> str:
    """Why a sync of events exits 1 while Braze may or may not have some of them, and what to do."""
    return (
        f"{report.model}: {report.unknown_rows:,} rows' outcome is unknown (Braze may or may not "
        "have them; they are not sent again by themselves); run `dbt-braze sync --resend-unknown` "
        "to send them again (accepting possible duplicates), or `dbt-braze sync --forget-unknown` "
        "to record them as delivered"
    )


def _keys_of(prefix: str) -> str:
    """The state keys a prefix (ModelSync.key_prefix) makes, as a user reads them."""
    return f"keys `{prefix}...`" if prefix else "external_id or braze_id keys"


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    if size < 1:
        raise ValueError("batch size must be at least 1")
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _pending_users(warehouse: WarehouseAccess, model: ModelSync) -> int:
    """Users the pending relation holds, an upper bound for the progress bar (cheap:
    no join with the state)."""
    if kind_of(model).at_most_once:
        return warehouse.event_counts(model.model_name).get("pending", 0)
    kinds = {"new", "changed"} | ({"removed"} if model.on_removed != "ignore" else set())
    return sum(users for kind, users in warehouse.pending_users(model.model_name).items() if kind in kinds)
