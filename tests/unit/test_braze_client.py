"""The Braze HTTP client against a scripted pool.

`FakeBraze` (tests/fakes.py `FakePool`) takes the place of urllib3's pool under the client's own
transport: it answers from a script (status, headers, body; or raises a urllib3 exception) and
records every request, so the tests assert call counts and request bodies. Sleep and both clocks
are fakes: no test waits on wall time.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from email.utils import formatdate
from typing import Any

import pytest
from certificates import self_signed
from client_harness import ENDPOINT, KEY, WALL_START, FakeTime, make_client, read_timeout
from urllib3.exceptions import (
    ConnectTimeoutError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
)

from dbt_braze import braze
from dbt_braze.braze import (
    MAX_DELETE_IDS,
    BrazeClient,
    DeleteResult,
    RateLimiter,
    RetryPolicy,
    TrackResult,
    redact,
)
from dbt_braze.errors import (
    EXIT_SYNC_FAILED,
    EXIT_USAGE,
    BrazeAuthError,
    BrazeRequestError,
    BrazeTLSError,
    BrazeUnavailable,
    ConfigError,
    MissingSettingError,
    SyncError,
)
from dbt_braze.ratelimit import wait_from_headers

from fakes import FakePool as FakeBraze
from fakes import HTTPReply as Reply
from fakes import SentRequest, Step


def users(n: int) -> list[dict[str, Any]]:
    return [{"external_id": f"u{i}", "plan": "pro"} for i in range(n)]


def sent_ids(fake: FakeBraze) -> list[list[str]]:
    return [[o["external_id"] for o in body["attributes"]] for body in fake.bodies()]


# -- success and per-object errors ------------------------------------------------------------


def test_success_posts_compact_json_with_auth_and_user_agent(t: FakeTime) -> None:
    fake = FakeBraze([Reply(201, {"message": "success", "attributes_processed": 2})])
    client = make_client(fake, t)
    objects: list[dict[str, Any]] = [
        {"external_id": "u1", "plan": "pro"},
        {"external_id": "u2", "score": 1.5},
    ]

    assert client.track_attributes(objects) == TrackResult([0, 1], {}, 1)

    [request] = fake.sent
    assert request.method == "POST"
    assert request.url == "https://rest.iad-01.braze.com/users/track"
    assert request.body == (
        b'{"attributes":[{"external_id":"u1","plan":"pro"},{"external_id":"u2","score":1.5}]}'
    )
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"].startswith("dbt-braze/")
    assert len(request.headers["User-Agent"]) > len("dbt-braze/")
    assert fake.timeouts == [(5.0, 60.0)]
    assert request.redirect is False and request.retries.total is False  # the client retries
    assert t.sleeps == []


def test_non_ascii_is_sent_as_utf8(t: FakeTime) -> None:
    fake = FakeBraze([Reply(201)])
    make_client(fake, t).track_attributes([{"external_id": "u1", "city": "Zürich"}])
    assert fake.sent[0].body == '{"attributes":[{"external_id":"u1","city":"Zürich"}]}'.encode()


def test_partial_success_rejects_the_named_indexes(t: FakeTime) -> None:
    errors = [
        {"type": "The value provided for the 'email' field is not a valid email.",
         "input_array": "attributes", "index": 1},
    ]  # fmt: skip
    fake = FakeBraze([Reply(201, {"message": "success", "attributes_processed": 2,
                                  "errors": errors})])  # fmt: skip

    result = make_client(fake, t).track_attributes(users(3))

    assert result.accepted == [0, 2]
    assert result.rejected == {1: "The value provided for the 'email' field is not a valid email."}
    assert result.requests == 1


def test_null_errors_on_2xx_accept_everything(t: FakeTime) -> None:
    fake = FakeBraze([Reply(201, {"message": "success", "errors": None})])
    assert make_client(fake, t).track_attributes(users(2)) == TrackResult([0, 1], {}, 1)


@pytest.mark.parametrize(
    "errors",
    [
        "oops",
        {"index": 0},
        ["not an object"],
        [{"type": "x", "input_array": "events", "index": 0}],
        [{"type": "x", "input_array": "attributes", "index": 2}],
        [{"type": "x", "input_array": "attributes", "index": 99}],
        [{"type": "x", "input_array": "attributes", "index": True}],
        [{"type": "x", "input_array": "attributes"}],
    ],
)
def test_2xx_whose_errors_point_outside_the_request_acknowledges_nothing(t: FakeTime, errors: object) -> None:
    # the whole request's outcome is unknown: resent (attribute sets are idempotent), never
    # taken as an acknowledgement of the object the entry failed to name
    fake = FakeBraze([Reply(201, {"message": "success", "errors": errors}), Reply(201)])
    assert make_client(fake, t).track_attributes(users(2)) == TrackResult([0, 1], {}, 2)
    assert len(t.sleeps) == 1


@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, "<html><body>Welcome to the hotel wifi</body></html>", {"Content-Type": "text/html"}),
        Reply(201, ""),
        Reply(201, {"status": "ok"}),
        Reply(201, ["success"]),
        Reply(202, {"message": None}),
    ],
)
def test_2xx_that_is_not_brazes_json_acknowledges_nothing(t: FakeTime, reply: Reply) -> None:
    fake = FakeBraze([reply, reply, Reply(201)])
    assert make_client(fake, t).track_attributes(users(2)) == TrackResult([0, 1], {}, 3)
    assert len(t.sleeps) == 2  # retried as a 5xx would be

    policy = RetryPolicy(max_elapsed=0.0, jitter=0.0)
    fake = FakeBraze([reply])
    with pytest.raises(BrazeUnavailable, match="not Braze's JSON"):
        make_client(fake, t, retry=policy).track_attributes(users(2))


def test_delete_2xx_that_is_not_brazes_json_is_retried(t: FakeTime) -> None:
    fake = FakeBraze([Reply(200, "<html>proxy</html>"), Reply(201, {"deleted": 1, "message": "success"})])
    assert make_client(fake, t).delete_users(["u1"], "external_id") == DeleteResult(["u1"], 2)


def test_missing_errors_key_accepts_everything(t: FakeTime) -> None:
    fake = FakeBraze([Reply(201, {"message": "success", "attributes_processed": 2})])
    assert make_client(fake, t).track_attributes(users(2)).accepted == [0, 1]


@pytest.mark.parametrize("reply", [Reply(202, {"message": "queued"}), Reply(200, {"message": "success"})])
def test_any_2xx_is_accepted(t: FakeTime, reply: Reply) -> None:
    fake = FakeBraze([reply])
    assert make_client(fake, t).track_attributes(users(2)) == TrackResult([0, 1], {}, 1)


def test_400_every_object_invalid_rejects_all_without_splitting(t: FakeTime) -> None:
    message = "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields."
    errors = [
        {"type": "bad email", "input_array": "attributes", "index": 0},
        {"type": "bad country", "input_array": "attributes", "index": 2},
    ]
    fake = FakeBraze([Reply(400, {"message": message, "errors": errors})])

    result = make_client(fake, t).track_attributes(users(3))

    assert result == TrackResult([], {0: "bad email", 1: message, 2: "bad country"}, 1)


def test_empty_batch_sends_nothing(t: FakeTime) -> None:
    fake = FakeBraze([])
    assert make_client(fake, t).track_attributes([]) == TrackResult([], {}, 0)


# -- splitting a batch Braze refuses as a whole --------------------------------------------------


def fail_batches_with(marker: str, failure: Reply) -> Callable[[SentRequest], Reply]:
    def answer(request: SentRequest) -> Reply:
        ids = [o["external_id"] for o in json.loads(request.body or b"")["attributes"]]
        return failure if marker in ids else Reply(201)

    return answer


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (Reply(400, {"message": "Max Input Length Exceeded"}), "Max Input Length Exceeded"),
        (Reply(400, {"message": "Invalid JSON in request body."}), "Invalid JSON in request body."),
        (Reply(413, {"message": "Request body too large"}), "Request body too large"),
    ],
)  # fmt: skip
def test_split_isolates_exactly_the_bad_object(t: FakeTime, failure: Reply, reason: str) -> None:
    objects = users(10)
    objects[7]["external_id"] = "bad"
    fake = FakeBraze(fail_batches_with("bad", failure))

    result = make_client(fake, t).track_attributes(objects)

    assert result.rejected == {7: reason}
    assert result.accepted == [0, 1, 2, 3, 4, 5, 6, 8, 9]
    assert result.requests == len(fake.sent)
    delivered = [ids for ids in sent_ids(fake) if "bad" not in ids]
    assert sorted(sum(delivered, [])) == sorted(o["external_id"] for o in objects if o is not
                                                objects[7])  # fmt: skip
    assert t.sleeps == []  # a refusal is not retried as is


@pytest.mark.parametrize(
    "failure",
    [
        Reply(400, "<html><h1>Request blocked by the firewall</h1></html>", {"Content-Type": "text/html"}),
        Reply(400, "Bad Request", {"Content-Type": "text/plain"}),
        Reply(400, ""),
        Reply(400, {"error": "blocked"}),
        Reply(400, {"message": "no valid data", "errors": [{"type": "x", "index": 5}]}),
    ],
)
def test_400_that_is_not_brazes_fails_the_request_and_rejects_nothing(t: FakeTime, failure: Reply) -> None:
    fake = FakeBraze([failure])

    with pytest.raises(BrazeRequestError, match="nothing was recorded as rejected") as caught:
        make_client(fake, t).track_attributes(users(4))

    assert caught.value.status == 400
    assert len(fake.sent) == 1  # not split down to single objects
    assert "proxy" in str(caught.value)


def test_413_that_is_not_brazes_is_split_but_never_recorded(t: FakeTime) -> None:
    objects = users(4)
    objects[3]["external_id"] = "bad"
    fake = FakeBraze(fail_batches_with("bad", Reply(413, "<html>Request Entity Too Large</html>")))

    with pytest.raises(BrazeRequestError, match="not with Braze's JSON"):
        make_client(fake, t).track_attributes(objects)

    assert sent_ids(fake) == [["u0", "u1", "u2", "bad"], ["u0", "u1"],
                              ["u2", "bad"], ["u2"], ["bad"]]  # fmt: skip


def test_split_maps_errors_of_a_half_back_to_the_callers_indexes(t: FakeTime) -> None:
    def answer(request: SentRequest) -> Reply:
        ids = [o["external_id"] for o in json.loads(request.body or b"")["attributes"]]
        if "bad" in ids:
            return Reply(400, {"message": "Max Input Length Exceeded"})
        errors = [{"type": "bad email", "input_array": "attributes", "index": ids.index(x)}
                  for x in ids if x == "u3"]  # fmt: skip
        return Reply(201, {"message": "success", "errors": errors})

    objects = users(4)
    objects[0]["external_id"] = "bad"
    fake = FakeBraze(answer)

    result = make_client(fake, t).track_attributes(objects)

    assert result.accepted == [1, 2]
    assert result.rejected == {0: "Max Input Length Exceeded", 3: "bad email"}
    assert sent_ids(fake) == [["bad", "u1", "u2", "u3"], ["bad", "u1"], ["bad"], ["u1"],
                              ["u2", "u3"]]  # fmt: skip
    assert result.requests == 5


def test_body_over_the_size_limit_is_split_before_sending(
    t: FakeTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(braze, "MAX_BODY_BYTES", 200)
    objects = [{"external_id": f"u{i}", "bio": "x" * 40} for i in range(6)]
    objects.append({"external_id": "huge", "bio": "x" * 300})
    fake = FakeBraze(lambda request: Reply(201))

    result = make_client(fake, t).track_attributes(objects)

    assert result.accepted == [0, 1, 2, 3, 4, 5]
    assert list(result.rejected) == [6]
    assert "bytes" in result.rejected[6]
    assert all(len(r.body or b"") <= 200 for r in fake.sent)
    assert "huge" not in sum(sent_ids(fake), [])


# -- transient failures: retried ------------------------------------------------------------------

WAIT_HEADERS = [
    ({"X-RateLimit-Reset": "2"}, 2.0),  # delta seconds (MAU contracts)
    ({"X-RateLimit-Reset": str(int(WALL_START) + 3)}, 3.0),  # epoch seconds
    ({"x-ratelimit-retry-after": "4"}, 4.0),  # read case-insensitively
    ({"X-Ratelimit-Retry-After": "4.5"}, 4.5),
    ({"Retry-After": "5"}, 5.0),
    ({"Retry-After": formatdate(WALL_START + 6, usegmt=True)}, 6.0),  # HTTP-date
    ({"Retry-After": "3600"}, 30.0),  # capped at max_delay
    ({}, 0.5),  # no header: exponential backoff, first step
    ({"Retry-After": "soon"}, 0.5),
]


@pytest.mark.parametrize(("headers", "first_wait"), WAIT_HEADERS)
def test_429_then_503_then_201_honours_rate_limit_headers(
    t: FakeTime, headers: dict[str, str], first_wait: float
) -> None:
    fake = FakeBraze([Reply(429, {"message": "rate limited"}, headers), Reply(503, ""),
                      Reply(201)])  # fmt: skip

    result = make_client(fake, t).track_attributes(users(2))

    assert result == TrackResult([0, 1], {}, 3)
    assert t.sleeps == [pytest.approx(first_wait), 1.0]
    assert len({r.body for r in fake.sent}) == 1  # the same body each time


def test_5xx_honours_retry_after_but_not_the_window_reset(t: FakeTime) -> None:
    fake = FakeBraze([Reply(503, "", {"Retry-After": "7"}),
                      Reply(503, "", {"X-RateLimit-Reset": "20"}), Reply(201)])  # fmt: skip
    make_client(fake, t).track_attributes(users(1))
    assert t.sleeps == [7.0, 1.0]


def test_429_slows_the_limiter_and_pauses_it(t: FakeTime) -> None:
    limiter = RateLimiter(10, clock=t.clock, sleep=t.sleep)
    fake = FakeBraze([Reply(429, {}, {"Retry-After": "2"}), Reply(201)])

    result = make_client(fake, t, limiter=limiter).track_attributes(users(1))

    assert result.requests == 2
    assert t.sleeps == [2.0]  # the pause ends when the client's own wait does
    assert limiter.rate == pytest.approx(5.0 + 10 * 0.02)  # halved, then one success back


@pytest.mark.parametrize(
    "error",
    [
        ProtocolError("Connection aborted.", http.client.RemoteDisconnected("closed without response")),
        ProtocolError("Connection broken: IncompleteRead(12 bytes read, 30 more expected)"),
        NewConnectionError(None, "Failed to establish a new connection: [Errno 111] Connection refused"),  # type: ignore[arg-type]
        ConnectionResetError(104, "Connection reset by peer"),
        read_timeout(),
        ConnectTimeoutError("connect timed out"),
    ],
)
def test_connection_trouble_then_success(t: FakeTime, error: Exception) -> None:
    fake = FakeBraze([error, Reply(201)])
    assert make_client(fake, t).track_attributes(users(2)) == TrackResult([0, 1], {}, 2)
    assert t.sleeps == [0.5]


def test_timeouts_back_off_exponentially(t: FakeTime) -> None:
    fake = FakeBraze([read_timeout(), read_timeout(), read_timeout(), Reply(201)])
    assert make_client(fake, t).track_attributes(users(1)).requests == 4
    assert t.sleeps == [0.5, 1.0, 2.0]


def test_html_502_is_retried(t: FakeTime) -> None:
    html = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    fake = FakeBraze([Reply(502, html, {"Content-Type": "text/html"}), Reply(201)])
    assert make_client(fake, t).track_attributes(users(1)) == TrackResult([0], {}, 2)


def test_jitter_stays_within_its_fraction(t: FakeTime) -> None:
    fake = FakeBraze([Reply(503, ""), Reply(201)])
    make_client(fake, t, retry=RetryPolicy()).track_attributes(users(1))
    assert 0.375 <= t.sleeps[0] <= 0.625


def test_spent_budget_raises_braze_unavailable(t: FakeTime) -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0, max_elapsed=20.0, jitter=0.0)
    fake = FakeBraze(lambda request: Reply(503, "<html>down</html>"))

    with pytest.raises(BrazeUnavailable) as caught:
        make_client(fake, t, retry=policy).track_attributes(users(1))

    assert t.sleeps == [1.0, 2.0, 4.0, 8.0]  # a fifth wait (8 s) would pass 20 s
    assert len(fake.sent) == 5
    assert caught.value.exit_code == EXIT_SYNC_FAILED
    assert isinstance(caught.value, SyncError)
    assert "after 5 attempts over 15s (last: 503 Service Unavailable)" in str(caught.value)
    assert caught.value.hint


def test_budget_counts_time_spent_in_requests(t: FakeTime) -> None:
    policy = RetryPolicy(base_delay=1.0, max_elapsed=20.0, jitter=0.0)
    fake = FakeBraze(lambda request: read_timeout(), time=t, latency=10.0)

    with pytest.raises(BrazeUnavailable, match=r"after 2 attempts over 21s \(last: timeout"):
        make_client(fake, t, retry=policy).track_attributes(users(1))


# -- terminal answers --------------------------------------------------------------------------


def test_401_never_leaks_the_key(t: FakeTime, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake = FakeBraze([Reply(401, {"message": f"Invalid API key: {KEY}"})])

    with pytest.raises(BrazeAuthError) as caught:
        make_client(fake, t).track_attributes(users(1))

    error = caught.value
    assert error.status == 401
    assert error.exit_code == EXIT_SYNC_FAILED
    assert KEY not in str(error) and KEY not in repr(error.args)
    assert KEY not in caplog.text
    assert "u0" in caplog.text  # the payload is logged at DEBUG, the key is not
    assert "BRAZE_API_KEY" in str(error)
    assert "rest.fra-01.braze.eu" in str(error)
    assert ENDPOINT in error.message
    assert len(fake.sent) == 1 and t.sleeps == []


@pytest.mark.parametrize(("call", "permission"), [
    (lambda c: c.track_attributes(users(1)), "users.track"),
    (lambda c: c.delete_users(["u1"], "external_id"), "users.delete"),
])  # fmt: skip
def test_403_names_the_missing_permission(
    t: FakeTime, call: Callable[[BrazeClient], object], permission: str
) -> None:
    fake = FakeBraze([Reply(403, {"message": f"forbidden for {KEY}"})])
    with pytest.raises(BrazeAuthError) as caught:
        call(make_client(fake, t))
    assert caught.value.status == 403
    assert caught.value.hint is not None and permission in caught.value.hint
    assert KEY not in str(caught.value)


def test_other_4xx_raise_with_a_scrubbed_excerpt(t: FakeTime, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake = FakeBraze([Reply(404, f"<html>no route for key {KEY}" + "x" * 500 + "</html>")])

    with pytest.raises(BrazeRequestError) as caught:
        make_client(fake, t).track_attributes(users(1))

    assert caught.value.status == 404
    assert "no route for key ***" in str(caught.value)
    assert len(caught.value.message) < 400
    assert "BRAZE_REST_ENDPOINT" in str(caught.value)
    assert KEY not in str(caught.value) and KEY not in caplog.text


def test_415_is_a_request_error(t: FakeTime) -> None:
    fake = FakeBraze([Reply(415, {"message": "Unsupported Media Type"})])
    with pytest.raises(BrazeRequestError, match="Unsupported Media Type") as caught:
        make_client(fake, t).track_attributes(users(1))
    assert caught.value.status == 415


def test_redirect_is_not_followed(t: FakeTime) -> None:
    fake = FakeBraze([Reply(301, "", {"Location": "https://rest.fra-01.braze.eu/users/track"})])
    with pytest.raises(BrazeRequestError, match="rest.fra-01.braze.eu") as caught:
        make_client(fake, t).track_attributes(users(1))
    assert caught.value.status == 301
    assert len(fake.sent) == 1 and fake.sent[0].redirect is False


def test_connection_error_text_is_scrubbed(t: FakeTime, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    policy = RetryPolicy(max_elapsed=0.0, jitter=0.0)
    fake = FakeBraze([ProxyError(f"proxy said {KEY}", OSError(f"tunnel refused for {KEY}"))])
    with pytest.raises(BrazeUnavailable) as caught:
        make_client(fake, t, retry=policy).track_attributes(users(1))
    assert KEY not in str(caught.value) and KEY not in caplog.text


def test_retries_log_no_payload_above_debug(t: FakeTime, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    fake = FakeBraze([Reply(503, ""), Reply(201)])
    make_client(fake, t).track_attributes([{"external_id": "secret-user", "email": "a@b.c"}])
    assert "503" in caplog.text
    assert "secret-user" not in caplog.text and "a@b.c" not in caplog.text


# -- invalid input: refused before anything is sent ----------------------------------------------


@pytest.mark.parametrize("value", [float("nan"), float("inf"), object()])
def test_values_that_are_not_json_raise_before_sending(t: FakeTime, value: object) -> None:
    fake = FakeBraze([])
    objects: list[dict[str, Any]] = [{"external_id": "u0"}, {"external_id": "u1", "score": value}]
    with pytest.raises(ValueError, match=r"attributes\[1\]"):
        make_client(fake, t).track_attributes(objects)
    assert fake.sent == []


def test_more_than_max_objects_is_the_callers_bug(t: FakeTime) -> None:
    fake = FakeBraze([])
    with pytest.raises(ValueError, match="max_objects=75"):
        make_client(fake, t).track_attributes(users(76))
    with pytest.raises(ValueError, match="max_objects=50"):
        make_client(fake, t, max_objects=50).track_attributes(users(51))
    assert fake.sent == []


@pytest.mark.parametrize("max_objects", [0, 76])
def test_max_objects_must_fit_braze(t: FakeTime, max_objects: int) -> None:
    with pytest.raises(ValueError):
        make_client(FakeBraze([]), t, max_objects=max_objects)


def test_endpoint_is_normalised() -> None:
    client = BrazeClient(" https://rest.fra-01.braze.eu/// ", KEY)
    assert client.endpoint == "https://rest.fra-01.braze.eu"
    client.close()


@pytest.mark.parametrize("endpoint", ["rest.iad-01.braze.com", "ftp://x", "https://", ""])
def test_endpoint_without_scheme_is_a_config_error(endpoint: str) -> None:
    with pytest.raises(ConfigError) as caught:
        BrazeClient(endpoint, KEY)
    assert caught.value.exit_code == EXIT_USAGE
    assert "https://rest.iad-01.braze.com" in str(caught.value)


def test_bad_keys_are_refused_without_echoing_them() -> None:
    with pytest.raises(MissingSettingError, match="BRAZE_API_KEY"):
        BrazeClient(ENDPOINT, "  ")
    with pytest.raises(ConfigError) as caught:
        BrazeClient(ENDPOINT, "abc123\ndef456")
    assert "abc123" not in str(caught.value)


# -- /users/delete ---------------------------------------------------------------------------


def test_delete_chunks_120_ids_into_3_requests(t: FakeTime) -> None:
    fake = FakeBraze(lambda request: Reply(201, {"deleted": 50, "message": "success"}))
    ids = [f"u{i}" for i in range(120)]

    result = make_client(fake, t).delete_users(ids, "external_id")

    assert result == DeleteResult(ids, 3)
    assert [r.url for r in fake.sent] == [f"{ENDPOINT}/users/delete"] * 3
    assert fake.bodies() == [{"external_ids": ids[:50]}, {"external_ids": ids[50:100]},
                             {"external_ids": ids[100:]}]  # fmt: skip
    assert MAX_DELETE_IDS == 50


def test_delete_by_braze_id_retries_transient_failures(t: FakeTime) -> None:
    fake = FakeBraze([Reply(503, ""), Reply(201, {"deleted": 1, "message": "success"})])
    assert make_client(fake, t).delete_users(["b1"], "braze_id") == DeleteResult(["b1"], 2)
    assert fake.bodies() == [{"braze_ids": ["b1"]}] * 2


def test_delete_by_user_alias_names_the_label_50_aliases_per_request(t: FakeTime) -> None:
    fake = FakeBraze(lambda request: Reply(201, {"deleted": 50, "message": "success"}))
    names = [f"c{i}" for i in range(70)]

    result = make_client(fake, t).delete_users(names, "user_alias", "crm")

    assert result == DeleteResult(names, 2)
    aliases = [{"alias_name": name, "alias_label": "crm"} for name in names]
    assert fake.bodies() == [{"user_aliases": aliases[:50]}, {"user_aliases": aliases[50:]}]


def test_delete_refused_is_a_request_error(t: FakeTime) -> None:
    fake = FakeBraze([Reply(400, {"message": "bad ids"})])
    with pytest.raises(BrazeRequestError, match="bad ids"):
        make_client(fake, t).delete_users(["u1"], "external_id")


def test_delete_validates_its_input(t: FakeTime) -> None:
    fake = FakeBraze([])
    client = make_client(fake, t)
    assert client.delete_users([], "external_id") == DeleteResult([], 0)
    with pytest.raises(ValueError, match="id_field"):
        client.delete_users(["u1"], "email")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="alias_label"):
        client.delete_users(["c1"], "user_alias")
    with pytest.raises(ValueError, match="alias_label"):
        client.delete_users(["u1"], "external_id", "crm")
    assert fake.sent == []


# -- the pool ---------------------------------------------------------------------------------


def test_one_pool_shared_by_threads_and_close_clears_it(t: FakeTime) -> None:
    fake = FakeBraze(lambda request: Reply(201))

    client = BrazeClient(ENDPOINT, KEY, pool=fake, sleep=t.sleep, clock=t.clock)
    client.track_attributes(users(1))
    client.track_attributes(users(1))
    worker = threading.Thread(target=client.track_attributes, args=(users(1),))
    worker.start()
    worker.join()

    assert len(fake.sent) == 3
    client.close()
    assert fake.closed == 1
    with pytest.raises(RuntimeError, match="closed"):
        client.track_attributes(users(1))
    assert len(fake.sent) == 3


# -- RateLimiter -------------------------------------------------------------------------------


def test_limiter_spaces_requests(t: FakeTime) -> None:
    limiter = RateLimiter(10, clock=t.clock, sleep=t.sleep)
    starts = []
    for _ in range(3):
        limiter.acquire()
        starts.append(t.now)
    assert starts == [1000.0, pytest.approx(1000.1), pytest.approx(1000.2)]


def test_limiter_reserves_distinct_slots_across_threads() -> None:
    sleeps: list[float] = []
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            sleeps.append(seconds)

    limiter = RateLimiter(100, clock=lambda: 50.0, sleep=sleep)  # a clock that stands still
    threads = [threading.Thread(target=limiter.acquire) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(sleeps) == pytest.approx([k / 100 for k in range(1, 20)])


def test_limiter_without_cap_never_waits_unless_paused(t: FakeTime) -> None:
    limiter = RateLimiter(None, clock=t.clock, sleep=t.sleep)
    for _ in range(100):
        limiter.acquire()
    assert t.sleeps == [] and limiter.rate is None
    limiter.on_rate_limited(3.0)
    limiter.acquire()
    assert t.sleeps == [3.0]


def test_limiter_halves_once_per_burst_then_recovers(t: FakeTime) -> None:
    limiter = RateLimiter(10, clock=t.clock, sleep=t.sleep)
    limiter.on_rate_limited()
    limiter.on_rate_limited()  # same burst of 429s: one cut
    assert limiter.rate == 5.0
    t.now += 1.0
    limiter.on_rate_limited()
    assert limiter.rate == 2.5
    for _ in range(5):
        t.now += 1.0
        limiter.on_rate_limited()
    assert limiter.rate == 1.0  # floor
    for _ in range(20):
        limiter.on_success()
    assert limiter.rate == pytest.approx(1.0 + 20 * 0.2)  # additive: 2% of 10 rps per success
    for _ in range(30):
        limiter.on_success()
    assert limiter.rate == 10.0  # never above the configured rate


def test_limiter_below_the_floor_keeps_its_rate(t: FakeTime) -> None:
    limiter = RateLimiter(0.5, clock=t.clock, sleep=t.sleep)
    limiter.on_rate_limited()
    assert limiter.rate == 0.5


@pytest.mark.parametrize("rps", [0, -1.0])
def test_limiter_rejects_non_positive_rates(rps: float) -> None:
    with pytest.raises(ValueError):
        RateLimiter(rps)


# -- RetryPolicy and header parsing --------------------------------------------------------------


def test_backoff_doubles_and_caps() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=30.0, jitter=0.0)
    assert [policy.backoff(n) for n in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert policy.backoff(10_000) == 30.0


def test_backoff_jitter_uses_the_given_draw() -> None:
    policy = RetryPolicy(base_delay=1.0, jitter=0.25)
    assert policy.backoff(2, uniform=lambda low, high: high) == 5.0
    assert policy.backoff(2, uniform=lambda low, high: low) == 3.0


@pytest.mark.parametrize("kwargs", [{"jitter": 1.0}, {"base_delay": -1.0}, {"max_elapsed": -1}])
def test_retry_policy_validates(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


@pytest.mark.parametrize(
    ("headers", "rate_limited", "expected"),
    [
        ({"retry-after": "nan"}, True, None),
        ({"Retry-After": "-3"}, True, None),
        ({"X-RateLimit-Reset": str(int(WALL_START) - 5)}, True, None),  # already past
        ({"X-RATELIMIT-RESET": "2"}, True, 2.0),
        ({"X-RateLimit-Reset": "2"}, False, None),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00"}, True, None),  # no zone: unusable
        ({"X-Ratelimit-Retry-After": "1", "Retry-After": "9"}, True, 1.0),
    ],
)
def test_wait_from_headers(headers: Mapping[str, str], rate_limited: bool, expected: float | None) -> None:
    assert wait_from_headers(headers, now=WALL_START, rate_limited=rate_limited) == expected


def test_redact() -> None:
    assert redact(f"Invalid API key: {KEY} ({KEY})", KEY) == "Invalid API key: *** (***)"
    assert redact("nothing to hide", "") == "nothing to hide"


def test_redact_leaves_text_alone_for_a_trivially_short_key() -> None:
    assert redact("POST /users/track", "k") == "POST /users/track"


# -- the key never leaks, whatever part of a response echoes it ------------------------------------


def test_key_echoed_in_reason_phrase_body_and_header_is_masked(
    t: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    echo = {"X-Echo": KEY, "Location": f"https://evil.example/{KEY}"}
    fake = FakeBraze([Reply(404, f"<html>{KEY}</html>", echo, reason=f"Not Found {KEY}")])
    with pytest.raises(BrazeRequestError) as caught:
        make_client(fake, t).track_attributes(users(1))
    assert "Not Found ***" in caught.value.message and KEY not in str(caught.value)

    fake = FakeBraze([Reply(301, "", echo, reason=f"Moved {KEY}")])
    with pytest.raises(BrazeRequestError) as caught:
        make_client(fake, t).track_attributes(users(1))
    assert "evil.example/***" in caught.value.message and KEY not in str(caught.value)

    policy = RetryPolicy(max_elapsed=0.0, jitter=0.0)
    fake = FakeBraze([Reply(503, f"down for {KEY}", echo, reason=f"Unavailable {KEY}")])
    with pytest.raises(BrazeUnavailable) as caught:
        make_client(fake, t, retry=policy).track_attributes(users(1))
    assert "Unavailable ***" in caught.value.message and KEY not in str(caught.value)
    assert KEY not in caplog.text


def test_key_echoed_in_a_rejection_reason_is_masked(t: FakeTime) -> None:
    escaped = KEY.replace("a", "\\u0061")  # JSON escapes hide nothing: the parsed text is masked
    body = (
        '{"message":"success","errors":[{"type":"bad value for ' + escaped + '",'
        '"input_array":"attributes","index":0}]}'
    )
    fake = FakeBraze([Reply(201, body, {"Content-Type": "application/json"})])
    result = make_client(fake, t).track_attributes(users(2))
    assert result.rejected == {0: "bad value for ***"}

    message = f"Valid data must be provided ({KEY})"
    fake = FakeBraze([Reply(400, {"message": message})])
    result = make_client(fake, t).track_attributes(users(1))
    assert result.rejected == {0: "Valid data must be provided (***)"}


# -- the key check ---------------------------------------------------------------------------------

NO_VALID_DATA = "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields."


@pytest.mark.parametrize(
    "script",
    [
        [Reply(400, {"message": NO_VALID_DATA})],
        [Reply(201, {"message": "success"})],
        [Reply(503, "<html>busy</html>"), Reply(429, {"message": "slow down"}), Reply(400, {"message": "x"})],
    ],
)
def test_key_check_passes_on_brazes_answer_to_an_empty_request(t: FakeTime, script: list[Step]) -> None:
    fake = FakeBraze(script)
    make_client(fake, t).check_access()
    assert fake.bodies()[-1] == {"attributes": []}
    assert all(r.url == ENDPOINT + "/users/track" for r in fake.sent)
    assert len(fake.sent) == len(script)


@pytest.mark.parametrize(("status", "expected"), [(401, "BRAZE_API_KEY"), (403, "users.track")])
def test_key_check_refused_key_raises_auth_error(t: FakeTime, status: int, expected: str) -> None:
    fake = FakeBraze([Reply(status, {"message": f"Invalid API key: {KEY}"})])
    with pytest.raises(BrazeAuthError) as caught:
        make_client(fake, t).check_access()
    assert caught.value.exit_code == EXIT_SYNC_FAILED
    assert expected in str(caught.value) and KEY not in str(caught.value)
    assert len(fake.sent) == 1


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (Reply(200, "<html>captive portal</html>", {"Content-Type": "text/html"}), "not with Braze's JSON"),
        (Reply(400, "<html>blocked</html>"), "not with Braze's JSON"),
        (Reply(201, {"ok": True}), "not with Braze's JSON"),
        (Reply(404, "<html>Not Found</html>"), "not the dashboard URL"),
        (Reply(415, {"message": "Content-Type must be application/json"}), "Content-Type"),
    ],
)
def test_key_check_fails_at_once_on_any_other_answer(t: FakeTime, reply: Reply, expected: str) -> None:
    fake = FakeBraze([reply])
    with pytest.raises(BrazeRequestError) as caught:
        make_client(fake, t).check_access()
    assert expected in str(caught.value)
    assert caught.value.exit_code == EXIT_SYNC_FAILED
    assert len(fake.sent) == 1 and t.sleeps == []


# -- cleartext and TLS -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "endpoint", ["http://127.0.0.1:4080", "http://127.9.8.7", "http://[::1]:8080", "http://LOCALHOST:9"]
)
def test_plain_http_is_allowed_on_loopback(endpoint: str) -> None:
    BrazeClient(endpoint, KEY).close()


@pytest.mark.parametrize(
    "endpoint",
    ["http://rest.iad-01.braze.com", "http://10.0.0.5:4080", "http://localhost.evil.example", "http://[::2]"],
)
def test_plain_http_elsewhere_is_refused_with_the_reason(endpoint: str) -> None:
    with pytest.raises(ConfigError) as caught:
        BrazeClient(endpoint, KEY)
    assert caught.value.exit_code == EXIT_USAGE
    assert "in clear" in caught.value.message and "loopback" in caught.value.message


@pytest.fixture(scope="module")
def untrusted_https(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """An HTTPS server on 127.0.0.1 that answers Braze's 201, with a self-signed certificate
    nobody trusts; yields its URL and the certificate's file."""
    import http.server
    import shutil
    import ssl

    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a certificate")
    cert, key = self_signed(tmp_path_factory.mktemp("tls"))

    class Braze(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            answer = b'{"message": "success"}'
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Braze)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", str(cert)
    server.shutdown()
    server.server_close()


def test_tls_verification_failure_fails_at_once(t: FakeTime, untrusted_https: tuple[str, str]) -> None:
    client = BrazeClient(untrusted_https[0], KEY, sleep=t.sleep, clock=t.clock)
    with client, pytest.raises(BrazeTLSError) as caught:
        client.track_attributes(users(1))
    assert caught.value.exit_code == EXIT_SYNC_FAILED
    assert "certificate" in caught.value.message and "REQUESTS_CA_BUNDLE" in str(caught.value)
    assert t.sleeps == []  # not retried for five minutes


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"])
def test_ca_bundle_from_the_environment_is_trusted(
    t: FakeTime, untrusted_https: tuple[str, str], variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, cert = untrusted_https
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, cert)
    with BrazeClient(url, KEY, sleep=t.sleep, clock=t.clock) as client:
        assert client.track_attributes(users(1)) == TrackResult([0], {}, 1)


def test_key_check_is_made_once_per_client(t: FakeTime) -> None:
    fake = FakeBraze([Reply(400, {"message": NO_VALID_DATA})])
    client = make_client(fake, t)
    client.check_access()
    client.check_access()
    assert len(fake.sent) == 1

    fake = FakeBraze([Reply(200, "<html>portal</html>")])
    client = make_client(fake, t)
    for _ in range(2):
        with pytest.raises(BrazeRequestError):
            client.check_access()
    assert len(fake.sent) == 1  # a failed check is not repeated (nor its retries) per model


def test_key_behind_json_escapes_is_masked_in_excerpts(t: FakeTime) -> None:
    escaped = KEY.replace("a", "\\u0061")
    fake = FakeBraze(
        [Reply(404, '{"error": "no route for ' + escaped + '"}', {"Content-Type": "application/json"})]
    )
    with pytest.raises(BrazeRequestError) as caught:
        make_client(fake, t).track_attributes(users(1))
    assert "no route for ***" in caught.value.message
    assert escaped not in caught.value.message and KEY not in caught.value.message
