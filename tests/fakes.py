"""Fakes shared by the tests: each stands in for the very thing production calls.

`FakePool` is a urllib3 pool for `dbt_braze.transport.Transport` (pass it as
`BrazeClient(..., pool=fake)`): it answers from a script, one step per request (an `HTTPReply`,
or an exception to raise, e.g. one of urllib3's), and records every request it got, so a test
asserts call counts, URLs, headers, timeouts and bodies. The production transport runs
unchanged on top of it: its error mapping, headers and options are what the tests see.

`Renderer` stands in for a warehouse whose dbt adapter is not installed (Snowflake,
BigQuery, Redshift, Databricks): the production `DbtAccess` opened on an in-memory DuckDB
project that installs the package, with dbt's dispatch pointed at another adapter's
prefixes, so the package's macros render as that adapter's dbt would render them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http
import itertools
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from unittest import mock

import urllib3

from dbt_braze.braze import CatalogResult, DeleteResult, TrackResult
from dbt_braze.config import (
    CATALOG_ITEM_MARKER,
    SUBSCRIPTION_GROUP_PREFIX,
    AttributeMapping,
    EventColumns,
    ModelSync,
    recorded_elsewhere,
)
from dbt_braze.dbt_access import DbtAccess, Target
from dbt_braze.engine import ModelReport, SyncEngine
from dbt_braze.errors import BrazeUnavailable, NotBuiltError
from dbt_braze.rows import (
    EVENT_COLUMNS,
    OBJECT_COLUMNS,
    REMOVED_USER_COLUMNS,
    ROW_SEPARATOR,
    ObjectAcks,
    Read,
    RelationRef,
    Row,
)
from dbt_braze.settings import SyncMode, SyncSettings
from dbt_braze.store import unpack

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class HTTPReply:
    status: int = 201
    body: Any = field(default_factory=lambda: {"message": "success"})  # dict/list/None: JSON
    headers: dict[str, str] = field(default_factory=dict)
    reason: str | None = None  # default: the standard phrase


@dataclass(frozen=True)
class SentRequest:
    """One call of `urlopen`, as the fake pool received it."""

    method: str
    url: str
    body: bytes
    headers: dict[str, str]
    timeout: urllib3.Timeout
    redirect: bool
    retries: object


Step = HTTPReply | Exception
Script = list[Step] | Callable[[SentRequest], Step]


class Clock(Protocol):
    now: float


class FakePool:
    """A scripted stand-in for urllib3's PoolManager; thread-safe.

    `time` and `latency`: each request moves `time.now` on by `latency` seconds, as a slow
    answer would.
    """

    def __init__(self, script: Script, time: Clock | None = None, latency: float = 0.0) -> None:
        self.script = list(script) if isinstance(script, list) else script
        self.time = time
        self.latency = latency
        self.sent: list[SentRequest] = []
        self.closed = 0
        self._lock = threading.Lock()

    @property
    def timeouts(self) -> list[tuple[float | None, float | None]]:
        return [(r.timeout.connect_timeout, r.timeout.read_timeout) for r in self.sent]  # type: ignore[misc]

    def urlopen(self, method: str, url: str, redirect: bool = True, **kw: Any) -> urllib3.HTTPResponse:
        request = SentRequest(
            method, url, kw["body"], dict(kw["headers"]), kw["timeout"], redirect, kw.get("retries")
        )
        with self._lock:
            self.sent.append(request)
            if callable(self.script):
                step = self.script(request)
            else:
                assert self.script, f"unexpected request #{len(self.sent)}"
                step = self.script.pop(0)
        if self.time is not None:
            self.time.now += self.latency
        if isinstance(step, Exception):
            raise step
        return _response(step)

    def clear(self) -> None:
        self.closed += 1

    def bodies(self) -> list[Any]:
        return [json.loads(r.body or b"null") for r in self.sent]


def _response(reply: HTTPReply) -> urllib3.HTTPResponse:
    headers = dict(reply.headers)
    if isinstance(reply.body, (dict, list)) or reply.body is None:
        raw = json.dumps(reply.body).encode()
        headers.setdefault("Content-Type", "application/json")
    else:
        raw = reply.body.encode() if isinstance(reply.body, str) else reply.body
    reason = reply.reason if reply.reason is not None else http.HTTPStatus(reply.status).phrase
    return urllib3.HTTPResponse(body=raw, headers=headers, status=reply.status, reason=reason)


# -- the sync engine's warehouse and Braze ---------------------------------------------------------
# `FakeStore` holds pending rows (key, attribute, value text, value type, value hash, is_new)
# and serves them as the objects read does (one row per user: `render_objects` restates
# macros/json.sql, whose SQL test_objects_sql.py checks against it on DuckDB); it records every
# acknowledgement and rejection, unpacked per attribute by `warehouse.unpack`. `FakeBraze` answers
# `track_encoded` / `delete_users` like `BrazeClient` (TrackResult, DeleteResult), rejecting
# scripted users and optionally failing on the n-th request.

MODEL_NAME = "braze_users"
RELATION = RelationRef(None, "main", MODEL_NAME)
ATTRS = ("email", "ltv", "plan")


def make_model(
    *, mode: str = "upsert", on_removed: str = "ignore", id_field: str = "external_id"
) -> ModelSync:
    return ModelSync(
        model_name=MODEL_NAME,
        unique_id=f"model.shop.{MODEL_NAME}",
        id_field=id_field,  # type: ignore[arg-type]
        id_column="user_id",
        mode=mode,  # type: ignore[arg-type]
        on_removed=on_removed,  # type: ignore[arg-type]
        attributes=tuple(AttributeMapping(a, a) for a in ATTRS),
    )


def make_event_model(kind: str = "events") -> ModelSync:
    """A model of kind events (or purchases) under the fakes' model name."""
    fields = (("name", "event_name"),) if kind == "events" else (("product_id", "sku"),)
    events = EventColumns(event_id="event_id", time="occurred_at", fields=fields, backfill="all")
    return dataclasses.replace(make_model(), kind=kind, events=events, attributes=())


def event_rows(n: int, *, start: int = 0, invalid: dict[int, str] | None = None) -> list[Row]:
    """Rows of the events read (EVENT_COLUMNS): event `e<i>` of user `u<i>`."""
    return [
        (
            f"e{i:05d}",
            f"u{i}",
            f"hash{i}",
            f'"time":"2026-01-01T00:00:00Z","name":"ordered","properties":{{"n":{i}}}',
            (invalid or {}).get(i),
            0,
        )
        for i in range(start, start + n)
    ]


def key(i: int) -> str:
    return f"u{i:04d}"


def user_rows(n: int, attrs: tuple[str, ...] = ATTRS, *, start: int = 0, new: bool = True) -> list[Row]:
    """Rows for users start..start+n-1, ordered by key then attribute (as the read sql)."""
    typed = {"email": "text", "ltv": "number", "plan": "text"}
    values = {"email": "{k}@example.com", "ltv": "12.50", "plan": "gold"}
    rows: list[Row] = []
    for i in range(start, start + n):
        k = key(i)
        for a in attrs:
            rows.append((k, a, values.get(a, "v").format(k=k), typed.get(a, "text"), f"h:{k}:{a}", new))
    return rows


RAW_JSON_TYPES = ("integer", "number", "boolean", "json")
NON_FINITE = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}


def render_objects(rows: list[Row]) -> list[Row]:
    """macros/json.sql braze_user_objects_sql (and braze_catalog_objects_sql), restated: one row
    per user, in key order.
    Subscription group rows (value type `subscription`, macros/subscriptions.sql): a sent
    state joins `"subscription_groups":[...]`, `subscribed:withheld` is only counted."""
    objects: list[Row] = []
    ordered = sorted(rows, key=lambda r: (r[0], r[1]))
    for user_key, group in itertools.groupby(ordered, key=lambda r: r[0]):
        changes = list(group)
        pairs = [
            json.dumps(a, ensure_ascii=False)
            + ":"
            + ("null" if t is None else t if vt in RAW_JSON_TYPES else json.dumps(t, ensure_ascii=False))
            for _, a, t, vt, _, _ in changes
            if vt != "subscription" and a != CATALOG_ITEM_MARKER  # a catalog item's marker: no member
        ]
        states = [
            {"subscription_group_id": a.removeprefix(SUBSCRIPTION_GROUP_PREFIX), "subscription_state": t}
            for _, a, t, vt, _, _ in changes
            if vt == "subscription" and t in ("subscribed", "unsubscribed")
        ]
        withheld = sum(vt == "subscription" and t == "subscribed:withheld" for _, _, t, vt, _, _ in changes)
        members = pairs + (
            [f'"subscription_groups":{json.dumps(states, separators=(",", ":"))}'] if states else []
        )
        body = ",".join(members)
        invalid = [
            f"{a}: {t} is not a finite number; Braze accepts no NaN or infinity"
            for _, a, t, vt, _, _ in changes
            if vt == "number" and str(t).lower() in NON_FINITE
        ]
        objects.append(
            (
                user_key,
                changes[0][5],
                len(pairs),
                body,
                ROW_SEPARATOR.join(c[1] for c in changes),
                ROW_SEPARATOR.join(c[4] or "" for c in changes),
                max(invalid) if invalid else None,
                int(any(vt == "json" and t is not None for _, _, t, vt, _, _ in changes)),
                len(states),
                withheld,
            )
        )
    return objects


def removed_users(rows: list[Row]) -> list[Row]:
    ordered = sorted(rows, key=lambda r: (r[0], r[1]))
    return [
        (k, ROW_SEPARATOR.join(r[1] for r in group))
        for k, group in itertools.groupby(ordered, key=lambda r: r[0])
    ]


def per_attribute(entries: list[Any]) -> list[tuple[Any, ...]]:
    """Per-user checkpoint entries as rows, the way the warehouse inserts them."""
    columns = [text.split(ROW_SEPARATOR) for text in unpack(entries)]
    return [tuple(map(decode_cell, row)) for row in zip(*columns, strict=True)]


def decode_cell(cell: str) -> str | None:
    """What macro braze_decode_cell makes of a cell of warehouse.encode_cell."""
    return None if cell == "" else bytes.fromhex(cell[1:]).decode("utf-8")


class FakeStore:
    """The store (dbt_braze.store.Store) over rows held in memory. `reads` names each read the
    engine streamed: its macro, and `mapped_only=` for the removed users."""

    UPSERTS = "braze_read_objects_sql"
    EVENTS = "braze_read_events_sql"
    FULL_REFRESH = "braze_read_full_refresh_objects_sql"
    CATALOG_FULL_REFRESH = "braze_read_catalog_full_refresh_sql"
    REMOVED = "braze_read_removed_users_sql"

    def __init__(
        self,
        upserts: list[Row] | None = None,
        removed: list[Row] | None = None,
        withheld: list[Row] | None = None,
        full_refresh: list[Row] | None = None,
        *,
        pending: bool = True,
        key_prefix: str | None = None,
    ) -> None:
        """`key_prefix`: the one the pending changes were computed for (default: the synced model's)."""
        self.key_prefix = key_prefix
        self.pending_rows = {self.UPSERTS: upserts or [], self.FULL_REFRESH: full_refresh or []}
        self.removed_users = removed_users(removed or [])
        self.objects: list[Row] = []  # the objects read from braze_objects__<model>, as served
        self._withheld = withheld or []
        self._pending = pending
        self.reads: list[str] = []
        self.full_refresh_args: list[tuple[Any, ...]] = []
        self.acknowledged: list[list[tuple[Any, ...]]] = []
        self.rejected: list[list[tuple[Any, ...]]] = []
        self.events: list[str] = []
        # kinds events and purchases: the rows of braze_objects__<model> and braze_events_log
        self.event_objects: list[Row] = []
        self.event_log: list[tuple[str, str | None, str, str | None]] = []
        self.event_writes: list[list[tuple[str, str | None, str, str | None]]] = []
        self.moves: list[tuple[str, str]] = []

    STAMP = "2026-11-28 10:00:00"

    def require_pending(self, model_name: str) -> None:
        assert model_name == MODEL_NAME
        if not self._pending:
            raise NotBuiltError(f"{model_name}: no pending-changes relation", hint="run `dbt run` first")

    def withheld(self, model_name: str) -> list[Row]:
        assert model_name == MODEL_NAME
        return list(self._withheld)

    def pending_key_prefix(self, model: ModelSync) -> str:
        return model.key_prefix if self.key_prefix is None else self.key_prefix

    def pending_users(self, model_name: str) -> dict[str, int]:
        assert model_name == MODEL_NAME
        removed = {row[0] for row in self.removed_users}
        new = {row[0] for row in self.pending_rows[self.UPSERTS] if row[5]}
        return {"removed": len(removed), "new": len(new)}

    def rows(self, read: Read, batch_rows: int) -> Iterator[list[Row]]:
        if read.macro == self.EVENTS:
            assert read.columns == EVENT_COLUMNS and read.args["model_name"] == MODEL_NAME
            self.reads.append(f"{read.macro} unknown={read.args['unknown']}")
            latest = self.latest_events()
            wanted = (
                (lambda status: status == "unknown")
                if read.args["unknown"]
                else (lambda status: status is None)
            )
            rows = [row for row in self.event_objects if wanted(latest.get(row[0]))]
        elif read.macro == self.REMOVED:
            args = read.args
            assert read.columns == REMOVED_USER_COLUMNS and args["model_name"] == MODEL_NAME
            elsewhere = args["recorded_elsewhere"]
            self.reads.append(
                f"{read.macro} mapped_only={args['mapped_only']}"
                + (" recorded_elsewhere" if elsewhere else "")
            )
            rows = [
                r for r in self.removed_users if recorded_elsewhere(r[0], args["key_prefix"]) == elsewhere
            ]
        else:
            assert read.columns == OBJECT_COLUMNS
            self.reads.append(read.macro)
            if read.macro == self.UPSERTS:  # from braze_objects__<model>: acknowledged by key
                assert read.args["model_name"] == MODEL_NAME and set(read.args) <= {"model_name", "is_new"}
                served = [(*row, self.STAMP) for row in render_objects(self.pending_rows[read.macro])]
                if "is_new" in read.args:  # a catalog's new items, or its changed ones
                    self.reads[-1] += f" is_new={read.args['is_new']}"
                    served = [row for row in served if bool(row[1]) == read.args["is_new"]]
                self.objects += served
                rows = served
            else:
                args = read.args
                self.full_refresh_args.append((args["relation"], args["id_column"], args["mappings"]))
                rows = [(*row, None) for row in render_objects(self.pending_rows[self.FULL_REFRESH])]
        for i in range(0, len(rows), batch_rows):
            yield rows[i : i + batch_rows]

    def acknowledge(self, model_name: str, rows: Any) -> None:
        assert model_name == MODEL_NAME
        self.acknowledged.append(list(rows))
        self.events.append("acknowledge")

    def record_rejected(self, model_name: str, rows: Any) -> None:
        assert model_name == MODEL_NAME
        self.rejected.append(list(rows))
        self.events.append("record_rejected")

    def background(self, name: str, work: Any) -> threading.Thread:
        thread = threading.Thread(target=work, name=name, daemon=True)
        thread.start()
        return thread

    def checkpoint(
        self,
        model_name: str,
        run_id: str,
        acked: Any,
        rejected: Any,
        acked_objects: ObjectAcks | None,
        *,
        kind: str,
    ) -> None:
        """One transaction in the real warehouse: rejections first, then acknowledgements
        (by key: what braze_objects__<model> holds for those keys, which the users' entries
        restate for a relation rebuilt since)."""
        if rejected:
            self.record_rejected(model_name, per_attribute(rejected))
        if acked_objects is not None:
            assert acked_objects.stamp == self.STAMP
            by_key = {row[0]: row for row in self.objects}
            assert acked_objects.users == [(k, by_key[k][4], by_key[k][5]) for k in acked_objects.keys]
            acked = [*acked, *((k, by_key[k][4], by_key[k][5]) for k in acked_objects.keys)]
        if acked:
            self.acknowledge(model_name, per_attribute(acked))

    # -- events and purchases: braze_events_log, its latest row per id wins
    def latest_events(self) -> dict[str, str]:
        return {event_id: status for event_id, _, status, _ in self.event_log}

    def record_events(self, model_name: str, run_id: str, records: list[Any], *, kind: str) -> None:
        assert model_name == MODEL_NAME and kind in ("events", "purchases")
        self.event_writes.append(list(records))
        self.event_log += records
        self.events.append("record_events")

    def move_events(
        self, model_name: str, run_id: str, from_status: str, to_status: str, reason: str
    ) -> None:
        self.moves.append((from_status, to_status))
        moved = [(i, h, to_status, reason) for i, h, status, _ in self.latest_rows() if status == from_status]
        self.event_log += moved

    def latest_rows(self) -> list[tuple[str, str | None, str, str | None]]:
        return list({row[0]: row for row in self.event_log}.values())

    def event_counts(self, model_name: str) -> dict[str, int]:
        latest = self.latest_events()
        return {
            "pending": sum(1 for row in self.event_objects if row[0] not in latest),
            "changed_after_sending": 0,
        }

    def event_statuses(self, model_name: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for status in self.latest_events().values():
            counts[status] = counts.get(status, 0) + 1
        return counts

    def logged(self, status: str) -> list[str]:
        """Event ids whose latest status is `status`, in order."""
        return sorted(i for i, s in self.latest_events().items() if s == status)

    @property
    def all_acknowledged(self) -> list[tuple[str, str, str | None]]:
        return [row for call in self.acknowledged for row in call]

    @property
    def all_rejected(self) -> list[tuple[str, str, str | None, str]]:
        return [row for call in self.rejected for row in call]


class FakeBraze:
    def __init__(
        self,
        *,
        reject: dict[str, str] | None = None,
        fail_on_request: int | None = None,
        not_deleted: set[str] | None = None,
        requests_per_call: int = 1,
        on_request: Any = None,
    ) -> None:
        self.reject = reject or {}
        self.fail_on_request = fail_on_request
        self.not_deleted = not_deleted or set()
        self.requests_per_call = requests_per_call
        self.on_request = on_request
        self.track_calls: list[list[dict[str, Any]]] = []
        self.unknown: dict[str, str] = {}  # events: user -> why Braze's answer is unknown
        self.error_on_request: int | None = None  # events: the n-th request stops the call (result.error)
        self.on_event_request: Callable[[list[dict[str, Any]]], None] | None = None
        self.event_calls: list[tuple[str, list[dict[str, Any]]]] = []
        self.delete_calls: list[tuple[list[str], str]] = []
        # kind catalog: (catalog, method, items) per call; ids Braze already holds (a POST of
        # one is accepted as PUT, listed in `replaced`, as BrazeClient.catalog_items does)
        self.catalog_calls: list[tuple[str, str, list[dict[str, Any]]]] = []
        self.existing_items: set[str] = set()

    def track_encoded(self, parts: list[bytes]) -> TrackResult:
        objects = [json.loads(part) for part in parts]
        if self.on_request is not None:
            self.on_request()
        if self.fail_on_request == len(self.track_calls) + 1:
            raise BrazeUnavailable("Braze did not answer after 5 attempts")
        self.track_calls.append([dict(o) for o in objects])
        rejected = {}
        for i, obj in enumerate(objects):
            ident = obj.get("external_id", obj.get("braze_id"))
            if ident in self.reject:
                rejected[i] = self.reject[ident]
        accepted = [i for i in range(len(objects)) if i not in rejected]
        return TrackResult(accepted=accepted, rejected=rejected, requests=self.requests_per_call)

    def track_events_encoded(self, parts: list[bytes], array: str) -> TrackResult:
        """Like BrazeClient: users in `unknown` are unknown with the reason, in `reject` rejected;
        the `error_on_request`-th request answers nothing and is the result's error."""
        objects = [json.loads(part) for part in parts]
        if self.on_event_request is not None:
            self.on_event_request(objects)
        if self.error_on_request == len(self.event_calls) + 1:
            self.event_calls.append((array, []))
            return TrackResult([], {}, 1, error=BrazeUnavailable("Braze did not answer after 5 attempts"))
        self.event_calls.append((array, objects))
        users = [obj.get("external_id", obj.get("braze_id")) for obj in objects]
        unknown = {i: self.unknown[u] for i, u in enumerate(users) if u in self.unknown}
        rejected = {i: self.reject[u] for i, u in enumerate(users) if u in self.reject}
        accepted = [i for i in range(len(objects)) if i not in unknown and i not in rejected]
        return TrackResult(accepted, rejected, 1, unknown=unknown)

    @property
    def sent_events(self) -> list[dict[str, Any]]:
        return [obj for _, call in self.event_calls for obj in call]

    def delete_users(self, ids: list[str], id_field: Any, alias_label: str | None = None) -> DeleteResult:
        self.delete_calls.append(
            (list(ids), id_field if alias_label is None else f"{id_field}:{alias_label}")
        )
        return DeleteResult(deleted=[i for i in ids if i not in self.not_deleted], requests=1)

    def catalog_items(self, catalog: str, method: str, parts: list[bytes]) -> CatalogResult:
        """Like BrazeClient.catalog_items: items whose id is in `reject` rejected with the
        reason, a POST of an id in `existing_items` accepted and listed as replaced."""
        items = [json.loads(part) for part in parts]
        self.catalog_calls.append((catalog, method, items))
        rejected = {i: self.reject[item["id"]] for i, item in enumerate(items) if item["id"] in self.reject}
        accepted = [i for i in range(len(items)) if i not in rejected]
        replaced = [i for i in accepted if method == "POST" and items[i]["id"] in self.existing_items]
        return CatalogResult(accepted=accepted, rejected=rejected, requests=1, replaced=replaced)

    @property
    def sent_objects(self) -> list[dict[str, Any]]:
        return [obj for call in self.track_calls for obj in call]


MODE_FIELDS = frozenset(f.name for f in dataclasses.fields(SyncMode))


def make_engine(warehouse: Any, braze: Any, **options: Any) -> SyncEngine:
    """A SyncEngine with a frozen clock, one request in flight (requests in a fixed order) and
    no early stop, unless `options` say otherwise: SyncMode's and SyncSettings' fields, and the
    engine's own keywords (run_id, read_batch_rows, clock, on_progress, heartbeat)."""
    mode = SyncMode(**{k: options.pop(k) for k in list(options) if k in MODE_FIELDS})
    settings_fields = {f.name for f in dataclasses.fields(SyncSettings)}
    tuning = {k: options.pop(k) for k in list(options) if k in settings_fields}
    settings = SyncSettings(**{"concurrency": 1, "max_rejection_rate": 1.0, **tuning})
    return SyncEngine(warehouse, braze, settings, mode, **{"clock": lambda: 0.0, **options})


def run(
    warehouse: FakeStore,
    braze: FakeBraze | None,
    model: ModelSync | None = None,
    **options: Any,
) -> ModelReport:
    return make_engine(warehouse, braze, **options).sync_model(model or make_model(), RELATION)


# Dispatch prefixes per adapter, in the order that adapter's dbt searches them (each adapter
# plugin declares its parents: dbt-redshift -> postgres, dbt-databricks -> spark).
PREFIXES = {
    "default": ["default"],
    "snowflake": ["snowflake", "default"],
    "bigquery": ["bigquery", "default"],
    "redshift": ["redshift", "postgres", "default"],
    "databricks": ["databricks", "spark", "default"],
}


class Renderer:
    """The package's macros as another adapter's dbt renders them (see the module docstring).

    dbt's own cross-database macros (dbt.hash, dbt.type_string) and identifier quoting stay
    DuckDB's: those belong to the adapters, not to this package.
    """

    def __init__(self, root: Path) -> None:
        os.environ.setdefault("DO_NOT_TRACK", "1")
        (root / "dbt_project.yml").write_text(
            "name: dialect_check\nversion: '1.0'\nprofile: dialect_check\nconfig-version: 2\n"
        )
        (root / "profiles.yml").write_text(
            "dialect_check:\n  target: t\n  outputs:\n    t:\n      type: duckdb\n"
            "      path: ':memory:'\n      schema: analytics\n"
        )
        (root / "dbt_packages").mkdir()
        (root / "dbt_packages" / "dbt_braze").symlink_to(REPO_ROOT, target_is_directory=True)
        self.warehouse = DbtAccess(Target(project_dir=root, profiles_dir=root, target=None))
        self.adapter: Any = self.warehouse._adapter  # the dbt adapter DbtAccess set up

    def close(self) -> None:
        self.warehouse.close()

    @contextlib.contextmanager
    def dispatching_as(self, dialect: str) -> Iterator[None]:
        """dbt computes an adapter's prefixes from its installed plugins; only dbt-duckdb is."""
        from dbt.context.providers import BaseDatabaseWrapper

        prefixes = PREFIXES[dialect]
        with mock.patch.object(BaseDatabaseWrapper, "_get_adapter_macro_prefixes", lambda _self: prefixes):
            yield

    def macro(self, dialect: str, name: str, **kwargs: Any) -> Any:
        with self.dispatching_as(dialect):
            return self.adapter.execute_macro(name, project="dbt_braze", kwargs=kwargs)

    def relation(self, identifier: str) -> Any:
        return self.adapter.Relation.create(database=None, schema="analytics", identifier=identifier)
