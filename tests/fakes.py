"""Fakes shared by the tests: each stands in for the very thing production calls.

`FakePool` is a urllib3 pool for `dbt_braze.transport.Transport` (pass it as
`BrazeClient(..., pool=fake)`): it answers from a script, one step per request (an `HTTPReply`,
or an exception to raise, e.g. one of urllib3's), and records every request it got, so a test
asserts call counts, URLs, headers, timeouts and bodies. The production transport runs
unchanged on top of it: its error mapping, headers and options are what the tests see.

`Renderer` stands in for a warehouse whose dbt adapter is not installed (Snowflake,
BigQuery, Redshift, Databricks): the production `Warehouse` opened on an in-memory DuckDB
project that installs the package, with dbt's dispatch pointed at another adapter's
prefixes, so the package's macros render as that adapter's dbt would render them.
"""

from __future__ import annotations

import contextlib
import http
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from unittest import mock

import urllib3

from dbt_braze.warehouse import Target, Warehouse

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
        self.warehouse = Warehouse(Target(project_dir=root, profiles_dir=root, target=None))
        self.adapter: Any = self.warehouse._adapter  # the dbt adapter the warehouse set up

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
