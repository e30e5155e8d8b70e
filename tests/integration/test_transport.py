"""The transport (urllib3, dbt_braze.transport) against the emulator over real sockets: answers,
kept-alive connections, one pool for many threads, dropped connections, timeouts, headers, TLS
failures before and after the body was written, a proxy named by the environment; and events
sent at most once through faults."""

from __future__ import annotations

import base64
import http.server
import json
import os
import socket
import ssl
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from certificates import self_signed

from dbt_braze.braze import BrazeClient, RetryPolicy
from dbt_braze.emulator import BrazeEmulator, EmulatorConfig
from dbt_braze.errors import ConfigError
from dbt_braze.transport import Transport, TransportFailure, TransportNotSent, TransportTimeout

pytestmark = pytest.mark.integration

HEADERS = {"Authorization": "Bearer test-key", "Content-Type": "application/json"}
BODY = json.dumps({"attributes": [{"external_id": "u1", "plan": "gold"}]}).encode()
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def no_proxy_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def test_answers_and_keeps_one_connection_alive() -> None:
    with BrazeEmulator() as emulator:
        transport = Transport(emulator.url, HEADERS, (5.0, 5.0))
        first = transport.post("/users/track", BODY)
        second = transport.post("/users/track", BODY)
        assert (first.status, second.status) == (201, 201)
        assert json.loads(second.body)["message"] == "success"
        assert emulator.stats()["connections_opened"] == 1  # reused, not reopened
        assert emulator.profile("u1") is not None
        transport.close()


def test_threads_share_a_pool_of_kept_alive_connections() -> None:
    threads, posts = 6, 4
    with BrazeEmulator(config=EmulatorConfig(latency_ms=30)) as emulator:
        transport = Transport(emulator.url, HEADERS, (5.0, 5.0), pool_size=threads)
        barrier = threading.Barrier(threads)
        statuses: list[int] = []

        def work() -> None:
            barrier.wait()
            statuses.extend(transport.post("/users/track", BODY).status for _ in range(posts))

        workers = [threading.Thread(target=work) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        transport.close()
        stats = emulator.stats()
    assert statuses == [201] * threads * posts
    assert stats["max_concurrent_requests"] > 1
    # one connection per request in flight at most, each kept for the next posts
    assert stats["connections_opened"] <= threads


def test_a_dropped_connection_is_a_failure_and_the_next_post_reconnects() -> None:
    with BrazeEmulator(config=EmulatorConfig(drop_after_apply_rate=1.0, seed=1)) as emulator:
        transport = Transport(emulator.url, HEADERS, (5.0, 5.0))
        with pytest.raises(TransportFailure) as caught:
            transport.post("/users/track", BODY)
        assert not isinstance(caught.value, TransportNotSent)  # it was applied
        emulator.configure(drop_after_apply_rate=0.0)
        assert transport.post("/users/track", BODY).status == 201
        assert emulator.stats()["connections_opened"] == 2
        transport.close()


def test_no_answer_within_the_read_timeout_is_a_timeout() -> None:
    with BrazeEmulator(config=EmulatorConfig(latency_ms=1500)) as emulator:
        transport = Transport(emulator.url, HEADERS, (5.0, 0.3))
        with pytest.raises(TransportTimeout):
            transport.post("/users/track", BODY)
        transport.close()


def test_nothing_listening_is_a_failure() -> None:
    with BrazeEmulator() as emulator:
        url = emulator.url
    transport = Transport(url, HEADERS, (1.0, 1.0))
    with pytest.raises(TransportNotSent, match="NewConnectionError"):
        transport.post("/users/track", BODY)


def test_a_failed_tls_handshake_is_not_sent() -> None:
    with BrazeEmulator() as emulator:  # it speaks plain HTTP: the handshake fails
        transport = Transport(f"https://127.0.0.1:{emulator.port}", HEADERS, (5.0, 5.0))
        with pytest.raises(TransportNotSent, match="SSLError"):
            transport.post("/users/track", BODY)
        assert emulator.stats()["requests"] == 0


def test_a_tls_handshake_that_times_out_is_not_sent() -> None:
    # the listener never accepts: TCP connects (the backlog), the TLS handshake gets no answer,
    # and urllib3 reports a ReadTimeoutError raised while connecting
    with socket.create_server(("127.0.0.1", 0)) as silent:
        transport = Transport(f"https://127.0.0.1:{silent.getsockname()[1]}", HEADERS, (0.3, 5.0))
        with pytest.raises(TransportNotSent, match="ReadTimeoutError"):
            transport.post("/users/track", BODY)


def test_a_failure_the_caller_is_handling_says_nothing_of_the_next_request() -> None:
    # Python chains the exception being handled to any raised meanwhile: a failed handshake the
    # caller is handling must not make a connection dropped after applying look unsent.
    with BrazeEmulator(config=EmulatorConfig(drop_after_apply_rate=1.0)) as emulator:
        refused = Transport(f"https://127.0.0.1:{emulator.port}", HEADERS, (5.0, 5.0))
        dropping = Transport(emulator.url, HEADERS, (5.0, 5.0))
        try:
            refused.post("/users/track", BODY)
        except TransportNotSent:
            with pytest.raises(TransportFailure) as caught:
                dropping.post("/users/track", BODY)
        assert not isinstance(caught.value, TransportNotSent)
        assert emulator.profile("u1") is not None


def test_a_tls_failure_after_the_body_was_written_may_have_been_applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server completes the handshake, reads the whole request, then answers in clear:
    # urllib3 raises the very SSLError of a failed handshake, yet Braze may have applied it.
    cert, key = self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    received: list[bytes] = []
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        connection, _ = listener.accept()
        with context.wrap_socket(connection, server_side=True) as tls:
            request = b""
            while not request.endswith(BODY) and (chunk := tls.recv(65536)):
                request += chunk
            received.append(request)
            os.write(tls.fileno(), b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    transport = Transport(f"https://127.0.0.1:{listener.getsockname()[1]}", HEADERS, (5.0, 5.0))
    with pytest.raises(TransportFailure, match="SSLError") as caught:
        transport.post("/users/track", BODY)
    server.join(5)
    listener.close()
    assert not isinstance(caught.value, TransportNotSent)
    assert received and received[0].endswith(BODY)


def test_rate_limit_headers_read_case_insensitively() -> None:
    with BrazeEmulator(config=EmulatorConfig(rate_limit=1, rate_window_seconds=60.0)) as emulator:
        transport = Transport(emulator.url, HEADERS, (5.0, 5.0))
        assert transport.post("/users/track", BODY).status == 201
        limited = transport.post("/users/track", BODY)
        assert limited.status == 429
        assert (
            limited.headers.get("x-ratelimit-reset") == limited.headers.get("X-RateLimit-Reset") is not None
        )
        transport.close()


@pytest.fixture
def proxy() -> Iterator[tuple[str, list[tuple[str, str | None]]]]:
    """A forward proxy that answers every request itself; yields its URL and what it got
    (the request target and the Proxy-Authorization header)."""
    seen: list[tuple[str, str | None]] = []

    class Proxy(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((self.path, self.headers.get("Proxy-Authorization")))
            answer = b'{"message": "success"}'
            self.send_response(201)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_the_environments_proxy_is_used_unless_no_proxy_names_the_host(
    proxy: tuple[str, list[tuple[str, str | None]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    address, seen = proxy
    with BrazeEmulator() as emulator:
        monkeypatch.setenv("HTTP_PROXY", f"http://sync%40acme:p%3Ass@{address}")
        transport = Transport(emulator.url, HEADERS, (5.0, 5.0))
        assert transport.post("/users/track", BODY).status == 201
        transport.close()
        credentials = base64.b64encode(b"sync@acme:p:ss").decode()
        assert seen == [(emulator.url + "/users/track", f"Basic {credentials}")]
        assert emulator.stats()["requests"] == 0

        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        transport = Transport(emulator.url, HEADERS, (5.0, 5.0))
        assert transport.post("/users/track", BODY).status == 201
        transport.close()
        assert len(seen) == 1 and emulator.stats()["requests"] == 1


def test_a_proxy_url_without_a_scheme_is_http(
    proxy: tuple[str, list[tuple[str, str | None]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    address, seen = proxy
    monkeypatch.setenv("HTTP_PROXY", address)
    transport = Transport("http://127.0.0.1:9", HEADERS, (5.0, 5.0))
    assert transport.post("/users/track", BODY).status == 201
    assert seen == [("http://127.0.0.1:9/users/track", None)]


def test_a_socks_proxy_is_a_config_error_without_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "socks5://me:secret@proxy.example:1080")
    with pytest.raises(ConfigError, match="socks5://") as caught:
        Transport("https://rest.iad-01.braze.com", HEADERS, (1.0, 1.0))
    assert "secret" not in str(caught.value) and caught.value.hint


def test_events_through_dropped_connections_arrive_once_and_the_dropped_are_unknown() -> None:
    # 20% of requests answered 503 (retried: nothing applied) and 10% applied, then dropped
    # without an answer (not retried: their events are unknown).
    faults = EmulatorConfig(error_rate=0.2, drop_after_apply_rate=0.1, seed=14, requests_log_size=1000)
    ids = [f"e{i}" for i in range(3000)]
    parts = [
        json.dumps({"external_id": f"u{i % 500}", "name": "order_placed", "time": "2026-03-01T10:00:00Z",
                    "properties": {"event_id": event_id}}).encode()
        for i, event_id in enumerate(ids)
    ]  # fmt: skip
    unknown: set[str] = set()
    accepted: set[str] = set()
    with BrazeEmulator(config=faults) as emulator:
        client = BrazeClient(
            emulator.url, "test-key", retry=RetryPolicy(base_delay=0.0), sleep=lambda s: None
        )
        with client:
            for start in range(0, len(parts), 75):
                result = client.track_events_encoded(parts[start : start + 75], "events")
                assert result.error is None and result.rejected == {}
                accepted |= {ids[start + i] for i in result.accepted}
                unknown |= {ids[start + i] for i in result.unknown}
        stats = emulator.stats()
        stored = Counter(event["properties"]["event_id"] for event in emulator.events())
        dropped = {
            event["properties"]["event_id"]
            for request in emulator.requests_log
            if request.status == 0
            for event in request.body["events"]
        }

    assert stats["status_counts"].get(503, 0) > 0 and stats["dropped_connections"] > 0
    assert stats["duplicate_events"] == 0
    assert set(stored) == set(ids) and set(stored.values()) == {1}  # every event, each once
    assert unknown == dropped
    assert accepted == set(ids) - dropped
