"""Fakes shared by the tests: each stands in for the very thing production calls.

`FakePool` is a urllib3 pool for `dbt_braze.transport.Transport` (pass it as
`BrazeClient(..., pool=fake)`): it answers from a script, one step per request (an `HTTPReply`,
or an exception to raise, e.g. one of urllib3's), and records every request it got, so a test
asserts call counts, URLs, headers, timeouts and bodies. The production transport runs
unchanged on top of it: its error mapping, headers and options are what the tests see.
"""

from __future__ import annotations

import http
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import urllib3


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
