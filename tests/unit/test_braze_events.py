"""Events and purchases through the Braze client, each sent at most once, against a scripted pool.

Every rule of issue 14 item 4 has its test: what says Braze did not apply a request is retried
(429, 500/502/503, a connection that could not be made), anything that leaves the outcome open
makes every object of the request `unknown`, with the reason, and is never resent.
"""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Callable

import pytest
from client_harness import ENDPOINT, KEY, FakeTime, make_client, read_timeout
from urllib3.exceptions import (
    ConnectTimeoutError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    SSLError,
)

from dbt_braze import braze
from dbt_braze.braze import BrazeClient, RetryPolicy, TrackResult
from dbt_braze.emulator import BrazeEmulator
from dbt_braze.errors import BrazeAuthError, BrazeRequestError, BrazeUnavailable

from fakes import FakePool as FakeBraze
from fakes import HTTPReply as Reply
from fakes import SentRequest

EVENT_ERROR = "The 'time' field is required and must be an ISO 8601 date and time."


def events(n: int, start: int = 0) -> list[bytes]:
    return [
        json.dumps({"external_id": f"u{i}", "name": "order_placed", "time": "2026-03-01T10:00:00Z"}).encode()
        for i in range(start, start + n)
    ]


def sent_users(fake: FakeBraze, array: str = "events") -> list[list[str]]:
    return [[o["external_id"] for o in body[array]] for body in fake.bodies()]


# -- accepted and rejected ---------------------------------------------------------------------


def test_events_and_purchases_go_in_their_own_array(t: FakeTime) -> None:
    fake = FakeBraze([Reply(201, {"message": "success", "events_processed": 2}),
                      Reply(201, {"message": "success", "purchases_processed": 1})])  # fmt: skip
    client = make_client(fake, t)
    purchase = b'{"external_id":"u1","product_id":"p1","currency":"USD","price":9.5,"time":"2026-03-01"}'

    assert client.track_events_encoded(events(2), "events") == TrackResult([0, 1], {}, 1)
    assert client.track_events_encoded([purchase], "purchases") == TrackResult([0], {}, 1)

    assert fake.sent[0].body == b'{"events":[' + b",".join(events(2)) + b"]}"
    assert fake.sent[1].body == b'{"purchases":[' + purchase + b"]}"


def test_partial_errors_reject_the_named_events_only(t: FakeTime) -> None:
    errors = [{"type": EVENT_ERROR, "input_array": "events", "index": 1}]
    fake = FakeBraze([Reply(201, {"message": "success", "events_processed": 2, "errors": errors})])

    result = make_client(fake, t).track_events_encoded(events(3), "events")

    assert result == TrackResult([0, 2], {1: EVENT_ERROR}, 1)


def test_400_every_event_invalid_rejects_them_all(t: FakeTime) -> None:
    message = "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields."
    errors = [{"type": "bad time", "input_array": "purchases", "index": 0}]
    fake = FakeBraze([Reply(400, {"message": message, "errors": errors})])

    result = make_client(fake, t).track_events_encoded(events(2), "purchases")

    assert result == TrackResult([], {0: "bad time", 1: message}, 1)


def test_only_events_and_purchases_are_sent_at_most_once(t: FakeTime) -> None:
    client = make_client(FakeBraze([]), t)
    with pytest.raises(ValueError, match="events"):
        client.track_events_encoded(events(1), "attributes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_objects=75"):
        client.track_events_encoded(events(76), "events")


# -- retried: Braze did not apply the request ------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_answers_that_say_nothing_was_applied_are_retried(t: FakeTime, status: int) -> None:
    fake = FakeBraze([Reply(status, "<html>busy</html>"), Reply(201)])

    result = make_client(fake, t).track_events_encoded(events(2), "events")

    assert result == TrackResult([0, 1], {}, 2)
    assert len(fake.sent) == 2 and t.sleeps == [0.5]


@pytest.mark.parametrize(
    "error",
    [
        NewConnectionError(None, "Failed to establish a new connection: [Errno 111] Connection refused"),  # type: ignore[arg-type]
        NameResolutionError("rest.iad-01.braze.com", None, OSError("Name or service not known")),  # type: ignore[arg-type]
        ConnectTimeoutError("Connection to rest.iad-01.braze.com timed out. (connect timeout=5.0)"),
        ProxyError("Unable to connect to proxy", OSError("Tunnel connection failed: 403 Forbidden")),
    ],
)
def test_a_connection_that_could_not_be_made_is_retried(t: FakeTime, error: Exception) -> None:
    fake = FakeBraze([error, Reply(201)])
    assert make_client(fake, t).track_events_encoded(events(2), "events") == TrackResult([0, 1], {}, 2)


def test_a_failed_tls_handshake_is_retried(t: FakeTime) -> None:
    # A real handshake: TLS spoken to the emulator's plain HTTP port fails before any byte of
    # the request is written, with the same SSLError a TLS failure in the answer would raise.
    policy = RetryPolicy(base_delay=1.0, max_elapsed=5.0, jitter=0.0)
    with BrazeEmulator() as emulator:
        client = BrazeClient(
            f"https://127.0.0.1:{emulator.port}", KEY, retry=policy, sleep=t.sleep, clock=t.clock
        )
        with client:
            result = client.track_events_encoded(events(1), "events")
        stats = emulator.stats()

    assert isinstance(result.error, BrazeUnavailable)
    assert "SSLError" in str(result.error)
    assert (result.accepted, result.rejected, result.unknown) == ([], {}, {})
    assert t.sleeps == [1.0, 2.0]  # retried until the budget ran out
    assert stats["connections_opened"] == 3 and stats["requests"] == 0


# -- not retried: the outcome is unknown -------------------------------------------------------

UNKNOWN_OUTCOMES = [
    (read_timeout(), "timeout (ReadTimeoutError)"),
    (ProtocolError("Connection aborted.", http.client.RemoteDisconnected("closed without response")),
     "RemoteDisconnected"),
    (ProtocolError("Connection broken: IncompleteRead(12 bytes read, 30 more expected)"), "IncompleteRead"),
    (ConnectionResetError(104, "Connection reset by peer"), "Connection reset by peer"),
    (SSLError(ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")), "WRONG_VERSION_NUMBER"),
    (Reply(504, "<html>Gateway Time-out</html>"), "504 Gateway Timeout"),
    (Reply(501, ""), "501 Not Implemented"),
    (Reply(200, "<html>Welcome to the hotel wifi</html>"), "200 OK whose body is not Braze's JSON"),
    (Reply(201, ""), "201 Created whose body is not Braze's JSON"),
    (Reply(201, {"status": "ok"}), "201 Created whose body is not Braze's JSON"),
    (Reply(201, {"message": "success", "errors": [{"type": "x", "input_array": "events", "index": 2}]}),
     "201 Created whose errors name objects outside the request"),
    (Reply(201, {"message": "success", "errors": [{"type": "x", "input_array": "attributes", "index": 0}]}),
     "201 Created whose errors name objects outside the request"),
]  # fmt: skip


@pytest.mark.parametrize(("step", "why"), UNKNOWN_OUTCOMES)
def test_an_outcome_that_cannot_be_known_is_never_resent(
    t: FakeTime, step: Reply | Exception, why: str
) -> None:
    fake = FakeBraze([step, Reply(201)])

    result = make_client(fake, t).track_events_encoded(events(2), "events")

    assert (result.accepted, result.rejected, result.requests, result.error) == ([], {}, 1, None)
    assert list(result.unknown) == [0, 1]
    assert why in result.unknown[0] and "not resent" in result.unknown[0]
    assert len(fake.sent) == 1 and t.sleeps == []


@pytest.mark.parametrize(("step", "why"), UNKNOWN_OUTCOMES[:6])
def test_attributes_are_still_resent_on_the_same_failures(
    t: FakeTime, step: Reply | Exception, why: str
) -> None:
    fake = FakeBraze([step, Reply(201)])
    assert make_client(fake, t).track_encoded(events(2)) == TrackResult([0, 1], {}, 2)


def test_a_retry_that_ends_unknown_says_so_after_the_retried_attempts(t: FakeTime) -> None:
    fake = FakeBraze([Reply(503, ""), read_timeout(), Reply(201)])

    result = make_client(fake, t).track_events_encoded(events(1), "events")

    assert list(result.unknown) == [0] and result.requests == 2
    assert len(fake.sent) == 2


# -- splitting a request Braze refused whole -------------------------------------------------


def answer_by_marker(marker: str, failure: Reply) -> Callable[[SentRequest], Reply]:
    def answer(request: SentRequest) -> Reply:
        users = [o["external_id"] for o in json.loads(request.body)["events"]]
        return failure if marker in users else Reply(201)

    return answer


def test_a_refused_batch_is_split_to_isolate_the_bad_event(t: FakeTime) -> None:
    parts = events(6)
    parts[4] = b'{"external_id":"bad","name":"x","time":"2026-03-01T10:00:00Z"}'
    fake = FakeBraze(answer_by_marker("bad", Reply(400, {"message": "Max Input Length Exceeded"})))

    result = make_client(fake, t).track_events_encoded(parts, "events")

    assert result == TrackResult([0, 1, 2, 3, 5], {4: "Max Input Length Exceeded"}, len(fake.sent))
    delivered = [users for users in sent_users(fake) if "bad" not in users]
    assert sorted(sum(delivered, [])) == ["u0", "u1", "u2", "u3", "u5"]  # each exactly once


def test_a_half_whose_outcome_is_unknown_leaves_the_other_half_accepted(t: FakeTime) -> None:
    def answer(request: SentRequest) -> Reply:
        users = [o["external_id"] for o in json.loads(request.body)["events"]]
        if len(users) == 4:
            return Reply(413, {"message": "Request body too large"})
        return Reply(504, "") if "u0" in users else Reply(201)

    fake = FakeBraze(answer)

    result = make_client(fake, t).track_events_encoded(events(4), "events")

    assert result.accepted == [2, 3] and list(result.unknown) == [0, 1]
    assert sent_users(fake) == [["u0", "u1", "u2", "u3"], ["u0", "u1"], ["u2", "u3"]]


def test_a_body_over_the_size_limit_is_split_before_sending(
    t: FakeTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(braze, "MAX_BODY_BYTES", 200)
    parts = events(3)
    parts.append(json.dumps({"external_id": "huge", "name": "x" * 300, "time": "2026-03-01"}).encode())
    fake = FakeBraze(lambda request: Reply(201))

    result = make_client(fake, t).track_events_encoded(parts, "events")

    assert result.accepted == [0, 1, 2] and list(result.rejected) == [3]
    assert all(len(r.body) <= 200 for r in fake.sent)
    assert "huge" not in sum(sent_users(fake), [])


# -- an error stops the call without losing what was settled ---------------------------------


def test_the_spent_retry_budget_is_the_results_error_and_nothing_was_applied(t: FakeTime) -> None:
    policy = RetryPolicy(base_delay=1.0, max_elapsed=5.0, jitter=0.0)
    fake = FakeBraze(lambda request: Reply(503, ""))

    result = make_client(fake, t, retry=policy).track_events_encoded(events(2), "events")

    assert isinstance(result.error, BrazeUnavailable)
    assert (result.accepted, result.rejected, result.unknown) == ([], {}, {})  # both still pending
    assert len(fake.sent) == 3


def test_an_error_after_a_delivered_half_keeps_that_half_accepted(t: FakeTime) -> None:
    # raising would lose the first half's acceptance, and the next sync would send it again
    def answer(request: SentRequest) -> Reply:
        users = [o["external_id"] for o in json.loads(request.body)["events"]]
        if len(users) == 4:
            return Reply(400, {"message": "Max Input Length Exceeded"})
        return Reply(201) if "u0" in users else Reply(429, {"message": "rate limited"})

    policy = RetryPolicy(base_delay=1.0, max_elapsed=5.0, jitter=0.0)
    fake = FakeBraze(answer)

    result = make_client(fake, t, retry=policy).track_events_encoded(events(4), "events")

    assert result.accepted == [0, 1]
    assert isinstance(result.error, BrazeUnavailable)
    assert (result.rejected, result.unknown) == ({}, {})  # 2 and 3: never applied, still pending


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply(401, {"message": f"Invalid API key: {KEY}"}), BrazeAuthError),
        (Reply(404, {"message": "no route"}), BrazeRequestError),
        (Reply(400, "<html>Request blocked by the firewall</html>"), BrazeRequestError),
    ],
)
def test_a_refused_request_is_the_results_error(t: FakeTime, reply: Reply, error: type[Exception]) -> None:
    fake = FakeBraze([reply])

    result = make_client(fake, t).track_events_encoded(events(2), "events")

    assert isinstance(result.error, error)
    assert (result.accepted, result.rejected, result.unknown) == ([], {}, {})
    assert KEY not in str(result.error) and ENDPOINT in str(result.error)
