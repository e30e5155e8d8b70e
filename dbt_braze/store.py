"""The package's tables in the warehouse: what the sync reads and what it records.

Pending work, run history, acknowledged state and rejections live in tables
the package's macros create and query; this module calls those macros through
`DbtAccess` and hands their rows on, typed: it neither builds nor edits SQL.
The engine sees it through the `WarehouseAccess` protocol (engine.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from dbt_braze.config import ModelSync
from dbt_braze.dbt_access import DbtAccess, Page
from dbt_braze.errors import NotBuiltError
from dbt_braze.rows import (
    LOGS,
    ROW_SEPARATOR,
    EventRecord,
    IdentifierChange,
    LogSizes,
    ObjectAcks,
    Read,
    RelationRef,
    Row,
    UserAck,
)

logger = logging.getLogger(__name__)

CHUNK_ROWS = 10_000  # users per statement of a checkpoint
# users per acknowledgement from braze_objects__<model>: only their keys are handed, and a
# checkpoint's users in one INSERT let DuckDB write whole row groups to the file (a
# checkpoint of 20,000 users in two statements spent more on its commit than on them)
OBJECT_CHUNK_USERS = 100_000
# the columns of the rows a checkpoint hands its macros (braze_rows_sql)
ACK_COLUMNS = ("braze_key", "attribute", "value_hash")
REJECTION_COLUMNS = (*ACK_COLUMNS, "reason")
EVENT_LOG_COLUMNS = ("event_id", "row_hash", "status", "reason")  # braze_record_events_sql


class Store:
    """The braze tables of one project's target."""

    def __init__(self, dbt: DbtAccess) -> None:
        self.dbt = dbt
        self._fingerprinted_builds: dict[tuple[str, str], bool] = {}

    def close(self) -> None:
        self.dbt.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def package_version(self) -> str | None:
        return self.dbt.package_version

    def ensure_tables(self) -> None:
        self.dbt.macro("braze_ensure_tables")

    def relation_name(self, macro: str) -> str:
        """A package table's name, as a macro gives it (braze_runs_relation, ...)."""
        return str(self.dbt.macro(macro))

    def columns(self, relation: RelationRef) -> list[str] | None:
        return self.dbt.columns(relation)

    def fetch_macro(self, name: str, **kwargs: Any) -> list[Row]:
        """Rows of the query a package macro renders (status and estimates)."""
        return self.dbt.fetch_all(str(self.dbt.macro(name, **kwargs)))

    def background(self, name: str, work: Any) -> Any:
        return self.dbt.background(name, work)

    # -- pending work ---------------------------------------------------------------
    def require_pending(self, model_name: str) -> None:
        for macro in ("braze_pending_relation", "braze_objects_relation"):
            pending = self.dbt.macro(macro, model_name=model_name)
            if not self.dbt.exists(pending):
                raise NotBuiltError(
                    f"{model_name}: no pending-changes relation ({pending})",
                    hint="run `dbt run` first: its on-run-end hook computes the pending changes",
                )

    def withheld(self, model_name: str) -> list[Row]:
        return self.fetch_macro("braze_withheld_sql", model_name=model_name)

    def pending_users(self, model_name: str) -> dict[str, int]:
        """The users the pending changes send (new, changed) and remove (removed)."""
        rows = self.fetch_macro("braze_pending_users_sql", model_name=model_name)
        return {str(kind): int(users) for kind, users in rows if users}

    def pending_built_at(self, model_name: str) -> Any:
        rows = self.fetch_macro("braze_pending_built_at_sql", model_name=model_name)
        return rows[0][0] if rows else None

    def pending_key_prefix(self, model: ModelSync) -> str:
        """The key prefix (ModelSync.key_prefix) the model's pending changes were computed for."""
        rows = self.fetch_macro("braze_pending_key_prefix_sql", model_name=model.model_name)
        return str(rows[0][0] or "") if rows else ""

    def pending_is_stale(self, model_name: str) -> bool:
        rows = self.fetch_macro("braze_pending_is_stale_sql", model_name=model_name)
        return bool(rows and rows[0][0])

    def rebuild_pending(self, model: ModelSync, relation: RelationRef) -> None:
        """Recompute the model's pending relation now, every user compared again (the
        hook's own macro, with the model's mappings as the hook builds them)."""
        self.dbt.macro(
            "braze_rebuild_pending",
            model_name=model.model_name,
            relation=self._relation(relation),
            id_column=model.id_column,
            mappings=model.mapping_specs(),
            key_prefix=model.key_prefix,
            kind=model.kind,
        )

    def identifier_change(self, model: ModelSync, relation: RelationRef | None = None) -> IdentifierChange:
        """Users the model's state holds under another identifier than the model's, and the
        users that will be sent whole: from the state and the model's `relation`, or without
        one from the pending changes (as of the last `dbt run`)."""
        if relation is None:
            rows = self.fetch_macro(
                "braze_pending_identifier_change_sql",
                model_name=model.model_name,
                key_prefix=model.key_prefix,
                kind=model.kind,
            )
        elif self.dbt.exists(self.dbt.macro("braze_state_relation")):
            rows = self.fetch_macro(
                "braze_identifier_change_sql",
                model_name=model.model_name,
                relation=self._relation(relation),
                id_column=model.id_column,
                key_prefix=model.key_prefix,
            )
        else:  # never synced: no state to change
            return IdentifierChange(0, 0)
        recorded_elsewhere, sent_whole = rows[0]
        return IdentifierChange(int(recorded_elsewhere or 0), int(sent_whole or 0))

    def rows(self, read: Read, batch_rows: int) -> Iterator[list[Row]]:
        """Batches of the rows of `read`, whose columns are checked against `read.columns`."""
        args = {
            name: self._relation(value) if isinstance(value, RelationRef) else value
            for name, value in read.args.items()
        }
        if read.whole_model:
            self.dbt.release_memory_limit()

        def render(page: Page | None) -> str:
            sql = self.dbt.macro(read.macro, page=page, **args)
            if not sql:  # the read macros render nothing for a mapped column that is missing
                raise NotBuiltError(
                    f"{read.macro}: a mapped column is missing from the model",
                    hint="run `dbt-braze validate`",
                )
            return str(sql)

        return self.dbt.stream(render, read.columns, batch_rows)

    def _relation(self, ref: RelationRef) -> Any:
        found = self.dbt.relation(ref)
        if found is None:
            raise NotBuiltError(
                f"relation {ref.schema}.{ref.identifier} does not exist", hint="run `dbt run` first"
            )
        return found

    # -- acknowledgements ---------------------------------------------------------------
    def checkpoint(
        self,
        model_name: str,
        run_id: str,
        acked: Sequence[UserAck],
        rejected: Sequence[tuple[str, str, str | None, str]],
        acked_objects: ObjectAcks | None = None,
        *,
        kind: str,
    ) -> None:
        """Record, in one transaction, what Braze rejected (with reasons) and what it
        accepted. `acked_objects`: users of braze_objects__<model>, by key (the
        names and hashes are taken from there, and the fingerprints of the rows
        their objects bring Braze to); `acked`: one entry per other user (key, its
        attributes and their value hashes, each ROW_SEPARATOR-joined; hashes None
        when the values were removed), whose fingerprints are voided (their state
        moved). Rejections go first, then the voiding, then the acknowledgements, then
        the fingerprints that vouch for them: were a non-transactional adapter to stop
        in between, those users would only be diffed or sent again, never skipped
        (there the users of `acked_objects` are voided first too).

        A `dbt run` may have rebuilt braze_objects__<model> since the sync read
        it: then nothing there is the build read (`stamp`), and the users are
        acknowledged from what the sync sent instead, their fingerprints voided,
        so the state holds what Braze holds either way. The check runs in the same
        transaction, after the insert: on PostgreSQL the insert's lock on the
        relation keeps a rebuild from swapping it in between; elsewhere a swap in
        between can only make a user be acknowledged twice, with the same hashes."""
        objects = acked_objects.users if acked_objects else []
        voided = [entry[0] for entry in acked]
        if not self.dbt.transactional:
            voided += [entry[0] for entry in objects]
        statements = (
            [
                self.dbt.macro(
                    "braze_record_rejected_sql",
                    model_name=model_name,
                    rows_sql=self._rows_sql(REJECTION_COLUMNS, unpack(chunk)),
                    kind=kind,
                )
                for chunk in _chunks(rejected)
            ]
            + [self._forget_fingerprints_sql(model_name, keys) for keys in _chunks(voided)]
            + [self._acknowledge_sql(model_name, run_id, chunk) for chunk in _chunks(acked)]
        )

        def write() -> None:
            for sql in statements:
                self.dbt.run(sql)
            if acked_objects is not None:
                for users in _chunks(objects, OBJECT_CHUNK_USERS):
                    self._acknowledge_objects(model_name, run_id, acked_objects.stamp, users)

        if statements or objects:
            self.dbt.transaction(write)

    def _acknowledge_objects(
        self, model_name: str, run_id: str, stamp: str, users: Sequence[UserAck]
    ) -> None:
        keys = [user[0] for user in users]
        keys_sql = self._keys_sql(keys)
        key_range = (encode_cell(min(keys)), encode_cell(max(keys))) if self.dbt.binary_text_order else None
        found = {"model_name": model_name, "keys_sql": keys_sql, "stamp": stamp, "key_range": key_range}
        self.dbt.run(self.dbt.macro("braze_acknowledge_objects_sql", run_id=run_id, **found))
        if not self.dbt.fetch(self.dbt.macro("braze_objects_built_sql", model_name=model_name, stamp=stamp)):
            logger.debug(
                "%s: objects rebuilt since the read: acknowledging %d users as sent", model_name, len(users)
            )
            self.dbt.run(self._forget_fingerprints_sql(model_name, keys, keys_sql))
            self.dbt.run(self._acknowledge_sql(model_name, run_id, users))
        elif self._has_fingerprints(model_name, stamp):
            self.dbt.run(self.dbt.macro("braze_vouch_objects_sql", **found))
        else:  # built by a package version that did not record them
            self.dbt.run(self._forget_fingerprints_sql(model_name, keys, keys_sql))

    def _has_fingerprints(self, model_name: str, stamp: str) -> bool:
        """Whether braze_objects__<model> (the build `stamp`) has the fingerprint column."""
        if (model_name, stamp) not in self._fingerprinted_builds:
            relation = self.dbt.macro("braze_objects_relation", model_name=model_name)
            columns = self.dbt.macro("braze_columns_in_relation", relation=relation)
            names = {str(column.name).lower() for column in columns}
            self._fingerprinted_builds[(model_name, stamp)] = "fingerprint" in names
        return self._fingerprinted_builds[(model_name, stamp)]

    def _forget_fingerprints_sql(
        self, model_name: str, keys: Sequence[str], keys_sql: str | None = None
    ) -> str:
        keys_sql = keys_sql or self._keys_sql(keys)
        return str(self.dbt.macro("braze_forget_fingerprints_sql", model_name=model_name, keys_sql=keys_sql))

    def _acknowledge_sql(self, model_name: str, run_id: str, entries: Sequence[Sequence[Any]]) -> str:
        return str(
            self.dbt.macro(
                "braze_acknowledge_sql",
                model_name=model_name,
                run_id=run_id,
                rows_sql=self._rows_sql(ACK_COLUMNS, unpack(entries)),
            )
        )

    def _keys_sql(self, keys: Sequence[str]) -> str:
        return self._rows_sql(("braze_key",), [ROW_SEPARATOR.join(map(encode_cell, keys))])

    def _rows_sql(self, names: Sequence[str], texts: Sequence[str]) -> str:
        """Rows as a relation (macro braze_rows_sql): per column, its encode_cell
        values joined by ROW_SEPARATOR."""
        columns = [[name, text] for name, text in zip(names, texts, strict=True)]
        return str(self.dbt.macro("braze_rows_sql", columns=columns))

    # -- events and purchases ------------------------------------------------------------
    def record_events(
        self, model_name: str, run_id: str, records: Sequence[EventRecord], *, kind: str
    ) -> None:
        """Append each id's new status to braze_events_log, and the rejected ones, with their
        reasons, to braze_rejected too, in one transaction."""
        rejected = [
            (event_id, "", None, reason or "")
            for event_id, _, status, reason in records
            if status == "rejected"
        ]
        statements = [
            self.dbt.macro(
                "braze_record_rejected_sql",
                model_name=model_name,
                rows_sql=self._rows_sql(REJECTION_COLUMNS, unpack(chunk)),
                kind=kind,
            )
            for chunk in _chunks(rejected)
        ] + [
            self.dbt.macro(
                "braze_record_events_sql",
                model_name=model_name,
                run_id=run_id,
                rows_sql=self._rows_sql(
                    EVENT_LOG_COLUMNS,
                    [ROW_SEPARATOR.join(map(encode_cell, column)) for column in zip(*chunk, strict=True)],
                ),
            )
            for chunk in _chunks(records)
        ]

        def write() -> None:
            for sql in statements:
                self.dbt.run(sql)

        if statements:
            self.dbt.transaction(write)

    def move_events(
        self, model_name: str, run_id: str, from_status: str, to_status: str, reason: str
    ) -> None:
        """Every id whose latest status is `from_status` gets `to_status`, in one statement."""
        self.dbt.execute(
            self.dbt.macro(
                "braze_move_events_sql",
                model_name=model_name,
                run_id=run_id,
                from_status=from_status,
                to_status=to_status,
                reason=reason,
            )
        )

    def event_counts(self, model_name: str) -> dict[str, int]:
        """An events model's counts: the pending summary's (withheld_null, changed_after_sending,
        unknown, ...) and `pending`, its objects the log does not hold yet."""
        rows = self.fetch_macro("braze_event_counts_sql", model_name=model_name)
        return {str(name): int(count or 0) for name, count in rows}

    def event_statuses(self, model_name: str) -> dict[str, int]:
        """Event ids per latest status (delivered, rejected, unknown, in_flight)."""
        return {
            str(status): int(count)
            for status, count in self.fetch_macro("braze_event_statuses_sql", model_name=model_name)
        }

    # -- run history ------------------------------------------------------------------
    def record_run(
        self,
        run_id: str,
        model_name: str,
        status: str,
        *,
        holder: str,
        ended: bool = False,
        counts: dict[str, int] | None = None,
        error: str | None = None,
        kind: str | None = None,
    ) -> None:
        """Append one row to the run history (`kind`: the model's; None for a claim that
        is no model's run)."""
        self.dbt.execute(
            self.dbt.macro(
                "braze_record_run_sql",
                run_id=run_id,
                model_name=model_name,
                status=status,
                ended=ended,
                counts=counts or {},
                error=error,
                holder=holder,
                kind=kind,
            )
        )

    def live_runs(self, model_name: str, lease_seconds: float) -> list[Row]:
        return self.fetch_macro(
            "braze_live_runs_sql", model_name=model_name, lease_seconds=int(lease_seconds)
        )

    def all_live_runs(self, lease_seconds: float) -> list[Row]:
        """(run_id, model_name) of the runs of every model that hold a lock."""
        return self.fetch_macro("braze_all_live_runs_sql", lease_seconds=int(lease_seconds))

    # -- compaction (dbt_braze/compaction.py, macros/compaction.sql) -------------------------
    @property
    def compaction_rewrites(self) -> bool:
        """True where a compaction rewrites the logs (Spark: no DELETE)."""
        return bool(self.dbt.macro("braze_compaction_rewrites"))

    def log_sizes(self, model_name: str, *, exact: bool = True) -> LogSizes:
        """The model's rows and keys in each log; `exact` False: the keys may be estimated
        (braze_estimate_keys_sql: DuckDB's exact count does not fit the sync's memory cap)."""
        (row,) = self.fetch_macro("braze_log_sizes_sql", model_name=model_name, exact=exact)
        return LogSizes(*(int(count or 0) for count in row))

    def log_rows(self, model_name: str) -> tuple[int, int]:
        """The model's rows in braze_state and in braze_fingerprints (no keys counted)."""
        ((state_rows, fingerprint_rows),) = self.fetch_macro("braze_log_rows_sql", model_name=model_name)
        return int(state_rows or 0), int(fingerprint_rows or 0)

    def counted_log_sizes(self, model_name: str, run_id: str) -> LogSizes | None:
        """The log sizes the model's previous run kept in the run history, if it kept any."""
        rows = self.fetch_macro("braze_counted_log_sizes_sql", model_name=model_name, run_id=run_id)
        if not rows or any(count is None for count in rows[0]):
            return None
        return LogSizes(*(int(count) for count in rows[0]))

    def compact_logs(
        self, model_name: str, logs: list[str], heartbeat: Callable[[], None] | None = None
    ) -> None:
        """Compact the model's `logs`: one DELETE each, in one transaction; where the logs
        are rewritten instead (Spark), one rewrite each (macro braze_rewrite_log), calling
        `heartbeat` between its steps."""
        if self.compaction_rewrites:
            for log in logs:
                self.dbt.macro("braze_rewrite_log", log=log, model_name=model_name, heartbeat=heartbeat)
            return
        # the DELETE ranks the model's whole log: under the sync's DuckDB memory cap it ran
        # out of memory at 1M users x 3 attributes (6.6M rows); it runs once per doubling
        self.dbt.release_memory_limit()
        statements = [
            str(self.dbt.macro("braze_compact_sql", log=log, model_name=model_name)) for log in logs
        ]
        self.dbt.execute(*statements)

    def compaction_leftover(self) -> bool:
        """True when a rewrite left a copy of a log behind (Spark: a crash, or one running)."""
        return any(bool(self.dbt.macro("braze_compaction_leftover", log=log)) for log in LOGS)

    def finish_compaction(self) -> bool:
        """Finish the rewrites a crash interrupted (Spark); True when there was one."""
        return any([bool(self.dbt.macro("braze_finish_compaction", log=log)) for log in LOGS])


def unpack(entries: Sequence[Sequence[Any]]) -> list[str]:
    """Per-user entries (key, attributes, hashes[, reason]), lists ROW_SEPARATOR-joined,
    as one text per column of braze_rows_sql (encode_cell values, ROW_SEPARATOR-joined):
    the key (and reason) repeated for each attribute, NULL for a NULL hash."""
    keys: list[str] = []
    attributes: list[str] = []
    hashes: list[str] = []
    reasons: list[str] = []
    for entry in entries:
        key, names = encode_cell(entry[0]), entry[1].split(ROW_SEPARATOR)
        count = len(names)
        keys.append(ROW_SEPARATOR.join([key] * count) if count > 1 else key)
        attributes.append(ROW_SEPARATOR.join(map(encode_cell, names)))
        if entry[2] is None:
            hashes.append(ROW_SEPARATOR * (count - 1))
        else:  # '' stands for a removed value in these lists: NULL
            hashes.append(ROW_SEPARATOR.join(encode_cell(h or None) for h in entry[2].split(ROW_SEPARATOR)))
        if len(entry) > 3:
            reason = encode_cell(entry[3])
            reasons.append(ROW_SEPARATOR.join([reason] * count) if count > 1 else reason)
    columns = [ROW_SEPARATOR.join(keys), ROW_SEPARATOR.join(attributes), ROW_SEPARATOR.join(hashes)]
    return columns + [ROW_SEPARATOR.join(reasons)] if reasons else columns


def encode_cell(value: object) -> str:
    """One value of braze_rows_sql: '' for NULL, else `x` and the hex of its UTF-8
    bytes (macro braze_decode_cell), so that every text, separators and control
    characters included, reaches the warehouse exactly as it is."""
    return "" if value is None else "x" + str(value).encode("utf-8").hex()


def _chunks(rows: Sequence[Any], size: int = CHUNK_ROWS) -> Iterator[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]
