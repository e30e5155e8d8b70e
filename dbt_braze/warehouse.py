"""The warehouse, through dbt's own adapter: the only module that imports dbt.

Set-up follows dbt's pytest `adapter` fixture (RuntimeConfig, register_adapter,
macros loaded from the project and its packages). These are dbt v1 internals,
not public API, which is why they are kept in this one module. All SQL comes
from the package's macros (macros/sync.sql), so adapters override it by
dispatch; this module only executes it.

Reads stream on a connection of their own (dbt keys connections by thread,
so the reader lives on its own thread) while acknowledgements are written on
the main thread's connection: a DuckDB cursor loses its result when another
statement runs on it.
"""

from __future__ import annotations

import contextvars
import logging
import os
import queue
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbt_braze.config import ModelSync
from dbt_braze.errors import ConfigError, NotBuiltError, WarehouseError
from dbt_braze.payloads import ObjectAcks

logger = logging.getLogger(__name__)

PACKAGE = "dbt_braze"
# psycopg2-based adapters: stream through named (server-side) cursors
SERVER_SIDE_CURSOR_ADAPTERS = frozenset({"postgres", "redshift"})
DUCKDB_MEMORY_LIMIT = "80MB"  # for the sync's own session; dbt runs keep the profile's
# dbt-spark's session cursor has no fetchmany (its fetchall is a collect()):
# stream by keyset paging instead (keyset_page_sql)
KEYSET_PAGING_ADAPTERS = frozenset({"spark", "databricks"})
# text compares by code point, as Python's str does (no locale collation): a
# range computed in Python bounds the same keys there
BINARY_TEXT_ORDER = frozenset({"duckdb", "spark", "databricks"})
KEYSET_PAGE_ROWS = 25_000  # users (a row holds one rendered object)
# no transactions: dbt-spark's commit() is a no-op that leaves the connection
# marked as in a transaction, so begin() would then refuse to start one
NON_TRANSACTIONAL_ADAPTERS = frozenset({"spark", "databricks"})
Row = tuple[Any, ...]


@dataclass(frozen=True)
class RelationRef:
    database: str | None
    schema: str
    identifier: str


@dataclass(frozen=True)
class Target:
    project_dir: Path
    profiles_dir: Path | None
    target: str | None


class Warehouse:
    """Runs the package's SQL on the project's target."""

    def __init__(self, target: Target, *, base_macros_only: bool = False) -> None:
        """`base_macros_only`: load dbt's own macros only (introspection before
        `dbt deps` has installed the package, as `dbt-braze init` needs)."""
        self._target = target
        self._base_macros_only = base_macros_only
        self._adapter: Any = None
        self._capped_duckdb_memory = False
        self.package_version: str | None = None
        self._open()

    # -- set-up -----------------------------------------------------------
    def _open(self) -> None:
        os.environ.setdefault("DO_NOT_TRACK", "1")
        from argparse import Namespace

        from dbt.adapters.factory import get_adapter, register_adapter, reset_adapters
        from dbt.config.runtime import RuntimeConfig
        from dbt.context.providers import generate_runtime_macro_context
        from dbt.flags import set_from_args
        from dbt.mp_context import get_mp_context
        from dbt.parser.manifest import ManifestLoader
        from dbt_common.context import set_invocation_context
        from dbt_common.exceptions import DbtBaseException

        self._dbt_error = DbtBaseException
        self._reset_adapters: Any = reset_adapters
        args = Namespace(
            project_dir=str(self._target.project_dir),
            profiles_dir=str(self._target.profiles_dir) if self._target.profiles_dir else None,
            target=self._target.target,
            profile=None,
            threads=None,
            vars={},
        )
        set_invocation_context(os.environ)
        set_from_args(args, {})
        _quiet_dbt_events()
        try:
            config = RuntimeConfig.from_args(args)
            # dbt keeps one adapter per type for the process and registers a type only
            # once: one left by an earlier use in this process would point at its own
            # target (another database), so start from none
            reset_adapters()  # type: ignore[no-untyped-call]
            register_adapter(config, get_mp_context())
            adapter = get_adapter(config)
            macros = ManifestLoader.load_macros(
                config, adapter.connections.set_query_header, base_macros_only=self._base_macros_only
            )
        except DbtBaseException as exc:
            raise ConfigError(
                f"dbt could not load the project at {self._target.project_dir}: {_first_line(exc)}",
                hint="check --project-dir, --profiles-dir and --target, and run `dbt deps`",
            ) from exc
        if not self._base_macros_only and not any(m.package_name == PACKAGE for m in macros.macros.values()):
            raise NotBuiltError(
                "the dbt_braze package is not installed in this project",
                hint="add it to packages.yml and run `dbt deps`, then `dbt run`",
            )
        installed = config.load_dependencies().get(PACKAGE)
        # the version of the macros the project installed (dbt_packages/), next to the CLI's
        self.package_version = str(installed.version) if installed is not None else None
        adapter.set_macro_resolver(macros)
        adapter.set_macro_context_generator(generate_runtime_macro_context)
        self._adapter = adapter
        self._context = contextvars.copy_context()
        self._adapter.acquire_connection("dbt_braze")
        try:  # connect now, so that an unreachable warehouse is reported as such
            self._adapter.execute("select 1", fetch=True)
            self._limit_duckdb_memory(config)
        except Exception as exc:
            hint = "check the target in profiles.yml and that the warehouse is up"
            if "lock" in str(exc).lower():
                hint = "another process (a dbt run or a sync) holds the DuckDB file; retry when it is done"
            raise WarehouseError(
                f"cannot use the warehouse of target {config.target_name}: {_first_line(exc)}",
                hint=hint,
            ) from exc

    def _limit_duckdb_memory(self, config: Any) -> None:
        """DuckDB takes up to 80% of RAM by default; the sync's sorted read of the
        pending relation then holds it all (6 GB at 1M users). A limit makes
        DuckDB spill to disk instead, keeping the sync's memory flat. A limit the
        profile sets wins; DBT_BRAZE_DUCKDB_MEMORY_LIMIT overrides ours."""
        if self.adapter_type != "duckdb":
            return
        settings = getattr(config.credentials, "settings", None) or {}
        if "memory_limit" in settings:
            return
        limit = os.environ.get("DBT_BRAZE_DUCKDB_MEMORY_LIMIT", DUCKDB_MEMORY_LIMIT)
        self._adapter.execute(f"set memory_limit = '{limit.replace(chr(39), '')}'")
        self._capped_duckdb_memory = True

    def close(self) -> None:
        if self._adapter is not None:
            self._adapter.cleanup_connections()
            self._reset_adapters()
            self._adapter = None

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def adapter_type(self) -> str:
        return str(self._adapter.type())

    # -- primitives ---------------------------------------------------------
    def macro(self, name: str, **kwargs: Any) -> Any:
        try:
            return self._adapter.execute_macro(name, project=PACKAGE, kwargs=kwargs)
        except self._dbt_error as exc:
            raise WarehouseError(f"dbt_braze.{name} failed: {_first_line(exc)}") from exc

    def execute(self, *statements: str) -> None:
        """Run statements in one transaction (one statement per call to the driver:
        Spark and Snowflake reject multi-statement strings). Adapters without
        transactions (Spark) run them one by one; callers order them so that a
        partial write is harmless."""
        self._transaction(lambda: [self._run(sql) for sql in statements])

    def _transaction(self, work: Callable[[], object]) -> None:
        """`work` (statements run with _run and _fetch) in one transaction."""
        connections = self._adapter.connections
        try:
            if self.adapter_type in NON_TRANSACTIONAL_ADAPTERS:
                work()
                return
            if connections.get_thread_connection().transaction_open:
                connections.commit()  # introspection (get_relation) may have left one open
            connections.begin()
            work()
            connections.commit()
        except Exception as exc:  # dbt's errors and driver errors dbt did not wrap
            self._rollback()
            raise WarehouseError(
                f"the warehouse refused a write: {_first_line(exc)}",
                hint="nothing of this checkpoint was recorded; rerun the sync",
            ) from exc

    def _run(self, sql: str) -> Any:
        """What dbt's add_query does (the thread's connection, its handle's cursor), minus
        dbt's query event: building it parses the whole SQL text into a protobuf
        message in Python, which cost a checkpoint of 5,000 users (2.5 MB of SQL)
        more than the INSERT itself (py-spy, 200k-user sync)."""
        cursor = self._adapter.connections.get_thread_connection().handle.cursor()
        cursor.execute(sql)
        return cursor

    def _fetch(self, sql: str) -> list[Row]:
        """Rows of a query inside the transaction _transaction opened."""
        return [tuple(row) for row in self._run(sql).fetchall()]

    def _rollback(self) -> None:
        try:
            self._adapter.connections.rollback_if_open()
        except Exception:  # the connection may already be gone; the error above is what matters
            logger.debug("rollback failed", exc_info=True)

    def fetch_all(self, sql: str) -> list[Row]:
        try:
            _, table = self._adapter.execute(sql, fetch=True)
        except self._dbt_error as exc:
            raise WarehouseError(f"the warehouse refused a read: {_first_line(exc)}") from exc
        return [tuple(row.values()) for row in table.rows]

    def background(self, name: str, work: Callable[[], None]) -> threading.Thread:
        """Run `work` on a thread of its own, with a dbt connection of its own
        (dbt keys connections by thread) and dbt's invocation context."""

        def run() -> None:
            with self._adapter.connection_named(name):
                work()

        thread = threading.Thread(target=self._context.copy().run, args=(run,), daemon=True, name=name)
        thread.start()
        return thread

    def stream(self, sql: str, batch_rows: int = 10_000) -> Iterator[list[Row]]:
        """Batches of rows, read on a connection of their own; memory stays bounded
        by a small queue of batches whatever the result's size."""
        batches: queue.Queue[list[Row] | BaseException | None] = queue.Queue(maxsize=2)
        stop = threading.Event()

        def read() -> None:
            try:
                cursor = self._stream_cursor(sql, batch_rows)
                while not stop.is_set():
                    rows = cursor.fetchmany(batch_rows)
                    if not rows:
                        break
                    batches.put(rows)  # DB-API rows are tuples already
                if self.adapter_type in SERVER_SIDE_CURSOR_ADAPTERS:
                    cursor.close()  # a psycopg2 cursor of our own (dbt-duckdb's must stay open)
                batches.put(None)
            except BaseException as exc:  # handed to the consumer, raised there
                batches.put(exc)

        reader = self.background("dbt_braze_reader", read)
        try:
            while True:
                item = batches.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise WarehouseError(f"reading pending changes failed: {_first_line(item)}") from item
                yield item
        finally:
            stop.set()
            while reader.is_alive():  # unblock a reader waiting on a full queue
                try:
                    batches.get_nowait()
                except queue.Empty:
                    reader.join(0.05)

    def _stream_cursor(self, sql: str, batch_rows: int) -> Any:
        """A cursor whose fetchmany() streams: psycopg2's default cursor buffers the
        whole result client-side (2 M rows: 384 MB), a named one is server-side."""
        if self.adapter_type in KEYSET_PAGING_ADAPTERS:
            return _KeysetCursor(self._adapter.connections, sql)
        if self.adapter_type in SERVER_SIDE_CURSOR_ADAPTERS:
            handle = self._adapter.connections.get_thread_connection().handle
            cursor = handle.cursor(
                name=f"dbt_braze_{threading.get_ident()}", withhold=bool(getattr(handle, "autocommit", False))
            )
            cursor.itersize = batch_rows
            cursor.execute(sql)
            return cursor
        _, cursor = self._adapter.connections.add_query(sql, auto_begin=False)
        return cursor

    # -- the package's tables ---------------------------------------------
    def ensure_tables(self) -> None:
        self.macro("braze_ensure_tables")

    def columns(self, relation: RelationRef) -> list[str] | None:
        """The relation's column names, or None when it does not exist."""
        found = self._adapter.get_relation(relation.database, relation.schema, relation.identifier)
        if found is None:
            return None
        if self._base_macros_only:  # before `dbt deps`: dbt's own introspection
            return [c.name for c in self._adapter.get_columns_in_relation(found)]
        return [c.name for c in self.macro("braze_columns_in_relation", relation=found)]

    def _relation(self, relation: RelationRef) -> Any:
        found = self._adapter.get_relation(relation.database, relation.schema, relation.identifier)
        if found is None:
            raise NotBuiltError(
                f"relation {relation.schema}.{relation.identifier} does not exist",
                hint="run `dbt run` first",
            )
        return found

    def require_pending(self, model_name: str) -> None:
        for macro in ("braze_pending_relation", "braze_objects_relation"):
            pending = self.macro(macro, model_name=model_name)
            if self._adapter.get_relation(pending.database, pending.schema, pending.identifier) is None:
                raise NotBuiltError(
                    f"{model_name}: no pending-changes relation ({pending})",
                    hint="run `dbt run` first: its on-run-end hook computes the pending changes",
                )

    def withheld(self, model_name: str) -> list[Row]:
        return self.fetch_all(self.macro("braze_withheld_sql", model_name=model_name))

    def pending_users(self, model_name: str) -> dict[str, int]:
        """Distinct users of the pending relation per kind (new, changed, removed, ...)."""
        relation = self.macro("braze_pending_relation", model_name=model_name)
        rows = self.fetch_macro("braze_pending_summary_sql", relation=relation)
        return {str(kind): int(users) for kind, _, users, _ in rows}

    def read_objects_sql(self, model: ModelSync) -> str:
        ordered = self.adapter_type in KEYSET_PAGING_ADAPTERS
        return str(self.macro("braze_read_objects_sql", model_name=model.model_name, ordered=ordered))

    def read_removed_users_sql(self, model_name: str, *, mapped_only: bool) -> str:
        return str(self.macro("braze_read_removed_users_sql", model_name=model_name, mapped_only=mapped_only))

    def read_full_refresh_sql(self, model: ModelSync, relation: RelationRef) -> str:
        found = self._relation(relation)
        if self._capped_duckdb_memory:
            # a full refresh groups the whole model into objects here, not in the hook:
            # give DuckDB back its default (80% of RAM) rather than fail for want of memory
            self._adapter.execute("reset memory_limit")
            self._capped_duckdb_memory = False
        sql = self.macro(
            "braze_read_full_refresh_objects_sql",
            relation=found,
            id_column=model.id_column,
            mappings=_mapping_specs(model),
            ordered=self.adapter_type in KEYSET_PAGING_ADAPTERS,
        )
        if not sql:
            raise NotBuiltError(f"a mapped column is missing from {found}", hint="run `dbt-braze validate`")
        return str(sql)

    def checkpoint(
        self,
        model_name: str,
        run_id: str,
        acked: Sequence[tuple[str, str, str | None]],
        rejected: Sequence[tuple[str, str, str | None, str]],
        acked_objects: ObjectAcks | None = None,
    ) -> None:
        """Record, in one transaction, what Braze rejected (with reasons) and what it
        accepted. `acked_objects`: users of braze_objects__<model>, by key (the
        names and hashes are taken from there); `acked`: one
        entry per other user (key, its attributes and their value hashes, each
        ROW_SEPARATOR-joined; hashes None when the values were removed).
        Rejections go first, then the acknowledged users' fingerprints are voided
        (their state moves), then the acknowledgements: were a non-transactional
        adapter to stop in between, those users would only be diffed or sent
        again, never skipped.

        A `dbt run` may have rebuilt braze_objects__<model> since the sync read
        it: then nothing there is the build read (`stamp`), and the users are
        acknowledged from what the sync sent instead, so the state holds what
        Braze holds either way. The check runs in the same transaction, after
        the insert: on PostgreSQL the insert's lock on the relation keeps a
        rebuild from swapping it in between; elsewhere a swap in between can
        only make a user be acknowledged twice, with the same hashes."""
        objects = acked_objects.users if acked_objects else []
        acked_keys = [entry[0] for entry in acked] + [entry[0] for entry in objects]
        statements = (
            [
                self.macro(
                    "braze_record_rejected_sql",
                    model_name=model_name,
                    rows_sql=self._rows_sql(
                        ("braze_key", "attribute", "value_hash", "reason"), unpack(chunk)
                    ),
                )
                for chunk in _chunks(rejected)
            ]
            + [
                self.macro(
                    "braze_forget_fingerprints_sql", model_name=model_name, keys_sql=self._keys_sql(keys)
                )
                for keys in _chunks(acked_keys)
            ]
            + [self._acknowledge_sql(model_name, run_id, chunk) for chunk in _chunks(acked)]
        )

        def write() -> None:
            for sql in statements:
                self._run(sql)
            if acked_objects is not None:
                for users in _chunks(objects):
                    self._acknowledge_objects(model_name, run_id, acked_objects.stamp, users)

        if statements or objects:
            self._transaction(write)

    def _acknowledge_objects(
        self, model_name: str, run_id: str, stamp: str, users: Sequence[tuple[str, str, str | None]]
    ) -> None:
        keys = [user[0] for user in users]
        key_range = None
        if self.adapter_type in BINARY_TEXT_ORDER:
            key_range = (encode_cell(min(keys)), encode_cell(max(keys)))
        self._run(
            self.macro(
                "braze_acknowledge_objects_sql",
                model_name=model_name,
                keys_sql=self._keys_sql(keys),
                stamp=stamp,
                run_id=run_id,
                key_range=key_range,
            )
        )
        if not self._fetch(self.macro("braze_objects_built_sql", model_name=model_name, stamp=stamp)):
            logger.debug(
                "%s: objects rebuilt since the read: acknowledging %d users as sent", model_name, len(users)
            )
            self._run(self._acknowledge_sql(model_name, run_id, users))

    def _acknowledge_sql(self, model_name: str, run_id: str, entries: Sequence[Sequence[Any]]) -> str:
        return str(
            self.macro(
                "braze_acknowledge_sql",
                model_name=model_name,
                run_id=run_id,
                rows_sql=self._rows_sql(("braze_key", "attribute", "value_hash"), unpack(entries)),
            )
        )

    def _keys_sql(self, keys: Sequence[str]) -> str:
        return self._rows_sql(("braze_key",), [ROW_SEPARATOR.join(map(encode_cell, keys))])

    def _rows_sql(self, names: Sequence[str], texts: Sequence[str]) -> str:
        """Rows as a relation (macro braze_rows_sql): per column, its encode_cell
        values joined by ROW_SEPARATOR."""
        columns = [[name, text] for name, text in zip(names, texts, strict=True)]
        return str(self.macro("braze_rows_sql", columns=columns))

    def pending_built_at(self, model_name: str) -> Any:
        rows = self.fetch_all(self.macro("braze_pending_built_at_sql", model_name=model_name))
        return rows[0][0] if rows else None

    def pending_is_stale(self, model_name: str) -> bool:
        rows = self.fetch_all(self.macro("braze_pending_is_stale_sql", model_name=model_name))
        return bool(rows and rows[0][0])

    def rebuild_pending(self, model: ModelSync, relation: RelationRef) -> None:
        """Recompute the model's pending relation now, every user compared again (the
        hook's own macro, with the model's mappings as the hook builds them)."""
        self.macro(
            "braze_rebuild_pending",
            model_name=model.model_name,
            relation=self._relation(relation),
            id_column=model.id_column,
            mappings=_mapping_specs(model),
        )

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
    ) -> None:
        """Append one row to the run history; the run's first row dates its start."""
        now = str(self.macro("braze_utc_now"))
        started_at = f"coalesce({self.macro('braze_run_started_at_sql', run_id=run_id)}, {now})"
        self.execute(
            self.macro(
                "braze_record_run_sql",
                run_id=run_id,
                model_name=model_name,
                status=status,
                started_at_sql=started_at,
                ended=ended,
                counts=counts or {},
                error=error,
                holder=holder,
            )
        )

    def live_runs(self, model_name: str, lease_seconds: float) -> list[Row]:
        return self.fetch_all(
            self.macro("braze_live_runs_sql", model_name=model_name, lease_seconds=int(lease_seconds))
        )

    def fetch_macro(self, name: str, **kwargs: Any) -> list[Row]:
        """Rows of the query a package macro renders (status and estimates)."""
        return self.fetch_all(str(self.macro(name, **kwargs)))


ROW_SEPARATOR = "\x1f"  # ASCII unit separator: joins braze_rows_sql cells and the warehouse's lists
CHUNK_ROWS = 10_000  # users per statement of a checkpoint


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


_TRAILING_KEY_ORDER = re.compile(r"\border\s+by\s+(?:\w+\.)?braze_key\s*;?\s*$", re.IGNORECASE)


def keyset_page_sql(sql: str, after: str | None, page_rows: int = KEYSET_PAGE_ROWS) -> str:
    """One page of a read whose SQL ends with `order by braze_key` (every read
    macro does; it returns one row per user): the rows after key `after`, or
    the first page when it is None."""
    body, found = _TRAILING_KEY_ORDER.subn("", sql.strip())
    if not found:
        raise ValueError("a read for keyset paging must end with `order by braze_key`")
    where = "" if after is None else f"\nwhere q.braze_key > {_text_literal(after)}"
    return f"select * from (\n{body}\n) q{where}\norder by q.braze_key\nlimit {int(page_rows)}"


def _text_literal(value: object) -> str:
    """A Spark SQL string literal: backslash is an escape character there."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


class _KeysetCursor:
    """fetchmany() over keyset pages (keyset_page_sql), for cursors that can only
    fetch a whole result; one page is held in memory at a time."""

    def __init__(self, connections: Any, sql: str, page_rows: int = KEYSET_PAGE_ROWS) -> None:
        self._connections = connections
        self._sql = sql
        self._page_rows = page_rows
        self._rows: list[Row] = []
        self._next = 0
        self._after: str | None = None
        self._done = False

    def fetchmany(self, size: int) -> list[Row]:
        if self._next >= len(self._rows) and not self._done:
            _, cursor = self._connections.add_query(
                keyset_page_sql(self._sql, self._after, self._page_rows), auto_begin=False
            )
            self._rows, self._next = [tuple(r) for r in cursor.fetchall() or []], 0
            self._done = len(self._rows) < self._page_rows
            if self._rows:
                self._after = self._rows[-1][0]
        batch = self._rows[self._next : self._next + size]
        self._next += len(batch)
        return batch


def _mapping_specs(model: ModelSync) -> list[dict[str, Any]]:
    """The model's mappings as the macros take them (the hook builds the same from meta)."""
    return [
        {"column": m.column, "attribute": m.attribute, "truncate_strings": model.truncate_strings}
        for m in model.attributes
    ]


def _chunks(rows: Sequence[Any], size: int = CHUNK_ROWS) -> Iterator[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # dbt prefixes messages with a kind ("Runtime Error"); keep what follows
    if len(lines) > 1 and lines[0].lower().endswith("error"):
        return " ".join(lines[1:3])
    return lines[0] if lines else type(exc).__name__


def _quiet_dbt_events() -> None:
    """Keep dbt's own event log (adapter registration, SQL) out of our output."""
    try:
        from dbt_common.events.event_manager_client import cleanup_event_logger

        cleanup_event_logger()
    except Exception:  # older dbt-common: its default logger only prints a line or two
        logger.debug("could not silence dbt's event logger", exc_info=True)
