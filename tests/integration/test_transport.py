"""The default transport (http.client, dbt_braze.transport) against the emulator over
real sockets: answers, dropped connections, timeouts, reconnection, headers."""

from __future__ import annotations

import json

import pytest

from dbt_braze.emulator import BrazeEmulator, EmulatorConfig
from dbt_braze.transport import HttpClientTransport, TransportFailure, TransportTimeout, transport_factory

pytestmark = pytest.mark.integration

HEADERS = {"Authorization": "Bearer test-key", "Content-Type": "application/json"}
BODY = json.dumps({"attributes": [{"external_id": "u1", "plan": "gold"}]}).encode()


def test_answers_and_keeps_one_connection_alive() -> None:
    with BrazeEmulator() as emulator:
        transport = HttpClientTransport(emulator.url, HEADERS, (5.0, 5.0))
        first = transport.post("/users/track", BODY)
        connection = transport._connection
        second = transport.post("/users/track", BODY)
        assert (first.status, second.status) == (201, 201)
        assert json.loads(second.body)["message"] == "success"
        assert transport._connection is connection is not None  # reused, not reopened
        assert emulator.profile("u1") is not None
        transport.close()


def test_a_dropped_connection_is_a_failure_and_the_next_post_reconnects() -> None:
    with BrazeEmulator(config=EmulatorConfig(drop_after_apply_rate=1.0, seed=1)) as emulator:
        transport = HttpClientTransport(emulator.url, HEADERS, (5.0, 5.0))
        with pytest.raises(TransportFailure):
            transport.post("/users/track", BODY)
        assert transport._connection is None
        emulator.configure(drop_after_apply_rate=0.0)
        assert transport.post("/users/track", BODY).status == 201
        transport.close()


def test_no_answer_within_the_read_timeout_is_a_timeout() -> None:
    with BrazeEmulator(config=EmulatorConfig(latency_ms=1500)) as emulator:
        transport = HttpClientTransport(emulator.url, HEADERS, (5.0, 0.3))
        with pytest.raises(TransportTimeout):
            transport.post("/users/track", BODY)
        transport.close()


def test_nothing_listening_is_a_failure() -> None:
    with BrazeEmulator() as emulator:
        url = emulator.url
    transport = HttpClientTransport(url, HEADERS, (1.0, 1.0))
    with pytest.raises(TransportFailure):
        transport.post("/users/track", BODY)


def test_rate_limit_headers_read_case_insensitively() -> None:
    with BrazeEmulator(config=EmulatorConfig(rate_limit=1, rate_window_seconds=60.0)) as emulator:
        transport = HttpClientTransport(emulator.url, HEADERS, (5.0, 5.0))
        assert transport.post("/users/track", BODY).status == 201
        limited = transport.post("/users/track", BODY)
        assert limited.status == 429
        assert (
            limited.headers.get("x-ratelimit-reset") == limited.headers.get("X-RateLimit-Reset") is not None
        )
        transport.close()


def test_requests_is_used_behind_a_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    make = transport_factory("https://rest.iad-01.braze.com", HEADERS, (1.0, 1.0), None)
    assert type(make()).__name__ == "RequestsTransport"
    monkeypatch.delenv("HTTPS_PROXY")
    monkeypatch.delenv("https_proxy", raising=False)
    assert type(transport_factory("https://rest.iad-01.braze.com", HEADERS, (1.0, 1.0), None)()).__name__ == (
        "HttpClientTransport"
    )
