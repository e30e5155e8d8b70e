"""The warehouse through dbt's own adapter: the only module that imports dbt, and the
only one that handles SQL text beyond passing a rendered macro along.

Set-up follows dbt's pytest `adapter` fixture (RuntimeConfig, register_adapter,
macros loaded from the project and its packages). These are dbt v1 internals,
not public API, which is why they are kept in this one module. The queries
come from the package's macros, so adapters override them by dispatch; this
module renders and runs them, with the driver-level means each adapter needs
(server-side cursors, keyset pages, transactions).

Reads stream on a connection of their own (dbt keys connections by thread,
so the reader lives on its own thread) while acknowledgements are written on
the main thread's connection: a DuckDB cursor loses its result when another
statement runs on it.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import gc
import json
import logging
import os
import queue
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbt_braze.errors import ConfigError, NotBuiltError, WarehouseError
from dbt_braze.rows import RelationRef, Row

logger = logging.getLogger(__name__)

PACKAGE = "dbt_braze"
# psycopg2-based adapters: stream through named (server-side) cursors
SERVER_SIDE_CURSOR_ADAPTERS = frozenset({"postgres", "redshift"})
DUCKDB_MEMORY_LIMIT = "80MB"  # for the sync's own session; dbt runs keep the profile's
# dbt-spark's session cursor has no fetchmany (its fetchall is a collect()):
# stream by keyset pages instead (the read macros' `page`, macro braze_keyset_page)
KEYSET_PAGING_ADAPTERS = frozenset({"spark", "databricks"})
# text compares by code point, as Python's str does (no locale collation): a
# range computed in Python bounds the same keys there
BINARY_TEXT_ORDER = frozenset({"duckdb", "spark", "databricks"})
KEYSET_PAGE_ROWS = 25_000  # users (a row holds one rendered object)
# no transactions: dbt-spark's commit() is a no-op that leaves the connection
# marked as in a transaction, so begin() would then refuse to start one
NON_TRANSACTIONAL_ADAPTERS = frozenset({"spark", "databricks"})
PSYCOPG2_TRANSACTION_IDLE = 0  # psycopg2.extensions.TRANSACTION_STATUS_IDLE: the server is in no transaction
# what a read macro takes for one keyset page: {"after": key or None, "rows": n}
Page = dict[str, Any]
# renders a read's query, whole (None) or one keyset page of it
RenderRead = Callable[[Page | None], str]


@dataclass(frozen=True)
class Target:
    project_dir: Path
    profiles_dir: Path | None
    target: str | None
    # dbt's manifest.json: its macros are used while every macro file is as dbt read it
    # (parsing ~150 macro files again was a third of a command's start-up)
    manifest: Path | None = None


class DbtAccess:
    """Renders the package's macros and runs their SQL on the project's target."""

    def __init__(self, target: Target, *, base_macros_only: bool = False) -> None:
        """`base_macros_only`: load dbt's own macros only (introspection before
        `dbt deps` has installed the package, as `dbt-braze init` needs)."""
        self._target = target
        self._base_macros_only = base_macros_only
        self._adapter: Any = None
        self._duckdb_memory_cap: str | None = None  # the limit we set on DuckDB, if any
        self._macro_context: Callable[[], Any] = dict
        self._thread = threading.local()  # each thread's macro namespace (_package_namespace)
        self.keyset_page_rows = KEYSET_PAGE_ROWS
        self.package_version: str | None = None
        self._open()

    # -- set-up -----------------------------------------------------------
    def _open(self) -> None:
        with _collector_paused_then_frozen():
            self._set_up()

    def _set_up(self) -> None:
        from argparse import Namespace

        from dbt.adapters.factory import get_adapter, register_adapter, reset_adapters
        from dbt.config.runtime import RuntimeConfig
        from dbt.context.providers import generate_runtime_macro_context
        from dbt.flags import set_from_args
        from dbt.mp_context import get_mp_context
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
            send_anonymous_usage_stats=False,  # dbt's tracking is its CLI's, not ours
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
            macros = self._macros(config, adapter)
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
        self._macro_context = lambda: self._package_namespace(config, macros, generate_runtime_macro_context)
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

    def _macros(self, config: Any, adapter: Any) -> Any:
        """The macros of the project and its packages: the manifest's while they are current,
        else parsed from their files, as dbt's own loader does."""
        if self._target.manifest is not None and not self._base_macros_only:
            macros = macros_from_manifest(self._target.manifest, config, str(adapter.type()))
            if macros is not None:
                return macros
        from dbt.parser.manifest import ManifestLoader

        return ManifestLoader.load_macros(
            config, adapter.connections.set_query_header, base_macros_only=self._base_macros_only
        )

    @staticmethod
    def _package_namespace(config: Any, macros: Any, generate_context: Any) -> Any:
        """The package's macros, callable, from one dbt macro context. adapter.execute_macro
        builds a context of every macro (~780) for each call: 2-3 ms a call, paid hundreds of
        times by a sync's pages and checkpoints and a tenth of `plan`'s start-up. One context
        per thread (DbtAccess.macro), because a context's macro call stack is not thread-safe."""
        anchor = macros.find_macro_by_name("braze_string_literal", config.project_name, PACKAGE)
        if anchor is None:  # base_macros_only: the package is not installed yet
            return {}
        return generate_context(anchor, config, macros, PACKAGE)[PACKAGE]

    def release_memory_limit(self) -> None:
        """Give DuckDB back its default memory (80% of RAM) for a read that groups a whole
        model (a full refresh) rather than fail for want of memory; other warehouses
        have no limit of ours."""
        if self._duckdb_memory_cap is not None:
            self._adapter.execute("reset memory_limit")
            self._duckdb_memory_cap = None

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
        limit = os.environ.get("DBT_BRAZE_DUCKDB_MEMORY_LIMIT", DUCKDB_MEMORY_LIMIT).replace("'", "")
        self._adapter.execute(f"set memory_limit = '{limit}'")
        self._duckdb_memory_cap = limit

    def close(self) -> None:
        if self._adapter is not None:
            self._adapter.cleanup_connections()
            self._reset_adapters()
            self._adapter = None
            gc.unfreeze()  # what the set-up made may be garbage now (a process that opens many)

    def __enter__(self) -> DbtAccess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def adapter_type(self) -> str:
        return str(self._adapter.type())

    @property
    def transactional(self) -> bool:
        """Whether `transaction` makes its statements one atomic write."""
        return self.adapter_type not in NON_TRANSACTIONAL_ADAPTERS

    @property
    def binary_text_order(self) -> bool:
        """Text compares by code point, as Python's str does (no locale collation): a
        range computed in Python bounds the same keys in the warehouse."""
        return self.adapter_type in BINARY_TEXT_ORDER

    # -- primitives ---------------------------------------------------------
    def macro(self, name: str, **kwargs: Any) -> Any:
        namespace = getattr(self._thread, "namespace", None)
        if namespace is None:
            namespace = self._thread.namespace = self._macro_context()
        function = namespace.get(name)
        try:
            if function is None:  # not the package's (dbt reports it missing)
                return self._adapter.execute_macro(name, project=PACKAGE, kwargs=kwargs)
            return function(**kwargs)
        except self._dbt_error as exc:
            raise WarehouseError(f"dbt_braze.{name} failed: {_first_line(exc)}") from exc

    def execute(self, *statements: str) -> None:
        """Run statements in one transaction (one statement per call to the driver:
        Spark and Snowflake reject multi-statement strings). Adapters without
        transactions (Spark) run them one by one; callers order them so that a
        partial write is harmless."""
        self.transaction(lambda: [self.run(sql) for sql in statements])

    def transaction(self, work: Callable[[], object]) -> None:
        """`work` (statements run with `run` and `fetch`) in one transaction."""
        connections = self._adapter.connections
        try:
            if self.adapter_type in NON_TRANSACTIONAL_ADAPTERS:
                work()
                return
            if connections.get_thread_connection().transaction_open:
                connections.commit()  # introspection (get_relation) may have left one open
            connections.begin()
            self._begin_on_server()
            work()
            connections.commit()
        except Exception as exc:  # dbt's errors and driver errors dbt did not wrap
            self._rollback()
            raise WarehouseError(
                f"the warehouse refused a write: {_first_line(exc)}",
                hint="nothing of this checkpoint was recorded; rerun the sync",
            ) from exc

    def _begin_on_server(self) -> None:
        """dbt-postgres's begin sends nothing: it counts on psycopg2 opening a transaction
        before the next statement. But dbt commits with a COMMIT statement, which psycopg2
        does not see, so after the first commit it opens none, and each statement of a
        `transaction` would commit on its own (a sync killed between two of them left the
        first). Where the server says it is in no transaction, begin one."""
        handle = self._adapter.connections.get_thread_connection().handle
        status = getattr(handle, "get_transaction_status", None)  # psycopg2's connection
        if status is not None and status() == PSYCOPG2_TRANSACTION_IDLE:
            self.run("begin")

    def run(self, sql: str) -> Any:
        """What dbt's add_query does (the thread's connection, its handle's cursor), minus
        dbt's query event: building it parses the whole SQL text into a protobuf
        message in Python, which cost a checkpoint of 5,000 users (2.5 MB of SQL)
        more than the INSERT itself (py-spy, 200k-user sync)."""
        cursor = self._adapter.connections.get_thread_connection().handle.cursor()
        cursor.execute(sql)
        return cursor

    def fetch(self, sql: str) -> list[Row]:
        """Rows of a query inside the transaction `transaction` opened."""
        return [tuple(row) for row in self.run(sql).fetchall()]

    def _rollback(self) -> None:
        try:
            self._adapter.connections.rollback_if_open()
        except Exception:  # the connection may already be gone; the error above is what matters
            logger.debug("rollback failed", exc_info=True)

    def fetch_all(self, sql: str) -> list[Row]:
        """The rows of a one-shot read (a count, a summary; not the streamed changes)."""
        try:
            try:
                _, table = self._adapter.execute(sql, fetch=True)
            except self._dbt_error as exc:
                if not (self._duckdb_memory_cap is not None and "Out of Memory" in str(exc)):
                    raise
                # our cap keeps the streamed read flat, but some operators cannot spill
                # (`validate`'s scan of the latest state of 1M users): the cap must not fail
                # a read the warehouse can do, so this one runs without it
                logger.debug("a read ran out of the capped memory; it runs again uncapped")
                table = self._uncapped(lambda: self._adapter.execute(sql, fetch=True)[1])
        except self._dbt_error as exc:
            raise WarehouseError(f"the warehouse refused a read: {_first_line(exc)}") from exc
        return [tuple(row.values()) for row in table.rows]

    def _uncapped(self, read: Callable[[], Any]) -> Any:
        self._adapter.execute("reset memory_limit")
        try:
            return read()
        finally:
            self._adapter.execute(f"set memory_limit = '{self._duckdb_memory_cap}'")

    def background(self, name: str, work: Callable[[], None]) -> threading.Thread:
        """Run `work` on a thread of its own, with a dbt connection of its own
        (dbt keys connections by thread) and dbt's invocation context."""

        def run() -> None:
            with self._adapter.connection_named(name):
                work()

        thread = threading.Thread(target=self._context.copy().run, args=(run,), daemon=True, name=name)
        thread.start()
        return thread

    def stream(self, render: RenderRead, columns: tuple[str, ...], batch_rows: int) -> Iterator[list[Row]]:
        """Batches of the rows of a read (`render` gives its query, whole or a keyset page of
        it), read on a connection of their own; memory stays bounded by a small queue of
        batches whatever the result's size. The cursor's column names must be `columns`:
        the rows are positional, so a read of another layout (a package whose macros
        differ from this CLI's) fails here, before any row is used."""
        first_query = render({"after": None, "rows": self.keyset_page_rows} if self._pages else None)
        batches: queue.Queue[list[Row] | BaseException | None] = queue.Queue(maxsize=2)
        stop = threading.Event()

        def read() -> None:
            try:
                cursor = self._stream_cursor(first_query, render, batch_rows)
                checked = False
                while not stop.is_set():
                    rows = cursor.fetchmany(batch_rows)
                    if not checked:
                        _check_columns(cursor.description, columns)
                        checked = True
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
                if isinstance(item, WarehouseError):
                    raise item
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

    @property
    def _pages(self) -> bool:
        return self.adapter_type in KEYSET_PAGING_ADAPTERS

    def _stream_cursor(self, first_query: str, render: RenderRead, batch_rows: int) -> Any:
        """A cursor whose fetchmany() streams: psycopg2's default cursor buffers the
        whole result client-side (2 M rows: 384 MB), a named one is server-side."""
        if self._pages:
            return _KeysetCursor(self._adapter.connections, first_query, render, self.keyset_page_rows)
        if self.adapter_type in SERVER_SIDE_CURSOR_ADAPTERS:
            handle = self._adapter.connections.get_thread_connection().handle
            cursor = handle.cursor(
                name=f"dbt_braze_{threading.get_ident()}", withhold=bool(getattr(handle, "autocommit", False))
            )
            cursor.itersize = batch_rows
            cursor.execute(first_query)
            return cursor
        _, cursor = self._adapter.connections.add_query(first_query, auto_begin=False)
        return cursor

    # -- relations ----------------------------------------------------------------
    def relation(self, ref: RelationRef) -> Any:
        """The dbt relation `ref` names, or None when it does not exist."""
        return self._adapter.get_relation(ref.database, ref.schema, ref.identifier)

    def columns(self, ref: RelationRef) -> list[str] | None:
        """The relation's column names, or None when it does not exist."""
        found = self.relation(ref)
        if found is None:
            return None
        if self._base_macros_only:  # before `dbt deps`: dbt's own introspection
            return [c.name for c in self._adapter.get_columns_in_relation(found)]
        return [c.name for c in self.macro("braze_columns_in_relation", relation=found)]

    def exists(self, relation: Any) -> bool:
        """Whether a relation a macro returned exists."""
        return self._adapter.get_relation(relation.database, relation.schema, relation.identifier) is not None


class _KeysetCursor:
    """fetchmany() over keyset pages of a read (its macro's `page`), for cursors that can
    only fetch a whole result; one page is held in memory at a time."""

    def __init__(self, connections: Any, first_query: str, render: RenderRead, page_rows: int) -> None:
        self._connections = connections
        self._page_rows = page_rows
        self._query: str | None = first_query
        self._render = render
        self._rows: list[Row] = []
        self._next = 0
        self._done = False
        self.description: Any = None

    def fetchmany(self, size: int) -> list[Row]:
        if self._next >= len(self._rows) and not self._done:
            query = self._query or self._render({"after": self._rows[-1][0], "rows": self._page_rows})
            self._query = None
            _, cursor = self._connections.add_query(query, auto_begin=False)
            self.description = cursor.description
            self._rows, self._next = [tuple(r) for r in cursor.fetchall() or []], 0
            self._done = len(self._rows) < self._page_rows
        batch = self._rows[self._next : self._next + size]
        self._next += len(batch)
        return batch


def _check_columns(description: Any, expected: tuple[str, ...]) -> None:
    """Fail on a read whose columns are not the layout its rows are read by."""
    if description is None:  # no result set at all: nothing to read by position either
        raise WarehouseError("a read of the sync returned no result set")
    found = tuple(str(column[0]).lower() for column in description)
    if found != expected:
        raise WarehouseError(
            f"a read of the sync returned the columns ({', '.join(found)}), not ({', '.join(expected)})",
            hint="the dbt_braze macros in the project do not match this CLI: run `dbt deps` "
            "with the package version of the installed dbt-braze",
        )


def macros_from_manifest(path: Path, config: Any, adapter_type: str) -> Any:
    """The macros recorded in dbt's manifest.json at `path`, as a MacroManifest; None when
    they may not be the project's macros now: the manifest written by another dbt version
    or for another adapter, or a macro file added, removed or changed since. Files are
    compared by content, as dbt's partial parsing does (not by time: dbt rewrites the
    manifest at the end of a run, after it read the files)."""
    from dbt.contracts.graph.manifest import MacroManifest, Manifest
    from dbt.contracts.graph.nodes import Macro
    from dbt.parser.macros import MacroParser
    from dbt.version import __version__ as dbt_version

    try:
        document = json.loads(path.read_bytes())
        metadata, recorded = document["metadata"], document["macros"]
        if metadata.get("dbt_version") != dbt_version or metadata.get("adapter_type") != adapter_type:
            return None
        by_file: dict[tuple[str, str], list[str]] = {}
        for macro in recorded.values():
            by_file.setdefault((macro["package_name"], macro["original_file_path"]), []).append(
                macro["macro_sql"]
            )
        projects = config.load_dependencies()
        for name, project in projects.items():  # a file the manifest does not know: macro-less only
            files = MacroParser(project, Manifest()).get_paths()
            unknown = [f.absolute_path for f in files if (name, f.original_file_path) not in by_file]
            if any(_macro_blocks(Path(file).read_text()) for file in unknown):
                return None
        for (package, file_path), blocks in by_file.items():  # generic tests' files included
            if package not in projects or not _same_blocks(
                Path(projects[package].project_root, file_path), blocks
            ):
                return None
        return MacroManifest({uid: Macro.from_dict(macro) for uid, macro in recorded.items()})
    except Exception:  # whatever the manifest holds, the macro files are the truth
        logger.debug("macros parsed from their files: manifest %s unusable", path, exc_info=True)
        return None


# where a block dbt reads as a macro starts (MacroParser's allowed blocks), and Jinja comments,
# which dbt skips (dbt's own global project has a commented-out example macro)
_BLOCK_START = re.compile(r"\{%[-+]?\s*(?:macro|materialization|test|data_test)\s")
_COMMENT = re.compile(r"\{#.*?#\}", re.DOTALL)


def _macro_blocks(text: str) -> int:
    return len(_BLOCK_START.findall(_COMMENT.sub("", text)))


def _same_blocks(path: Path, blocks: list[str]) -> bool:
    """Whether the file at `path` holds exactly the macro blocks `blocks` (their text as dbt
    recorded it), whatever lies between them."""
    if not path.is_file():
        return False
    text = path.read_text()
    return all(block in text for block in blocks) and _macro_blocks(text) == len(blocks)


def invoke_dbt(args: list[str]) -> Any:
    """A dbt command run in this process (dbt's programmatic entry point): its
    dbtRunnerResult (`success`, `result`, `exception`)."""
    from dbt.cli.main import dbtRunner

    return dbtRunner().invoke(args)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # dbt prefixes messages with a kind ("Runtime Error"); keep what follows
    if len(lines) > 1 and lines[0].lower().endswith("error"):
        return " ".join(lines[1:3])
    return lines[0] if lines else type(exc).__name__


@contextlib.contextmanager
def _collector_paused_then_frozen() -> Iterator[None]:
    """dbt's set-up (its imports, the project, the macros) makes some 230,000 objects that
    Python's cyclic collector tracks, nearly all of which live as long as the adapter. The
    collector walked them again and again while they were made, and in every full
    collection after: a sixth of `plan`'s CPU time on the demo project. Paused while they
    are made, then set aside (gc.freeze: never walked, still freed by reference counting)
    until `close`."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        gc.freeze()  # not when the set-up failed: no `close` would give them back
    finally:
        if enabled:
            gc.enable()


# the collector's last walks, as the interpreter exits, over those same objects and the
# rest: 0.3 s of CPU after a command's output (bench/bench_startup.py)
atexit.register(gc.freeze)


def _quiet_dbt_events() -> None:
    """Keep dbt's own event log (adapter registration, SQL) out of our output."""
    try:
        from dbt_common.events.event_manager_client import cleanup_event_logger

        cleanup_event_logger()
    except Exception:  # older dbt-common: its default logger only prints a line or two
        logger.debug("could not silence dbt's event logger", exc_info=True)
