"""The Braze client's catalog calls (`catalog_items`, `catalog_fields`) against a scripted pool.

As in test_braze_client.py, `FakeBraze` (tests/fakes.py `FakePool`) stands in for urllib3's pool
under the client's own transport, and time is fake. Where Braze's answer depends on what was
sent, the script is a function of the request: `catalog_braze` answers like Braze's catalog item
endpoints, refusing a whole request with 400 when it holds a bad item.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest
from client_harness import ENDPOINT, KEY, FakeTime, make_client, read_timeout
from urllib3.exceptions import ProtocolError

from dbt_braze.braze import (
    CATALOG_REQUESTS_PER_MINUTE,
    MAX_CATALOG_ITEMS,
    MAX_CATALOG_PAGES,
    BrazeClient,
    CatalogResult,
    RateLimiter,
    RetryPolicy,
)
from dbt_braze.commands import _client
from dbt_braze.errors import BrazeAuthError, BrazeRequestError, BrazeUnavailable
from dbt_braze.settings import BrazeSettings, SyncSettings

from fakes import FakePool as FakeBraze
from fakes import HTTPReply as Reply
from fakes import SentRequest, Step

ITEMS_URL = f"{ENDPOINT}/catalogs/products/items"
ACCEPTED = Reply(202, {"message": "success"})
HTML = "<html><body>Please sign in to the network</body></html>"


def items(n: int, prefix: str = "sku-") -> list[bytes]:
    """Encoded items as the warehouse renders them: spacing Python would not write, to show
    that the parts travel as they are."""
    return [f'{{"id": "{prefix}{i}",  "price":{i}.50}}'.encode() for i in range(n)]


def client(fake: FakeBraze, t: FakeTime, **kwargs: Any) -> BrazeClient:
    """A client whose catalog requests are not paced, unless a test gives a limiter."""
    kwargs.setdefault("catalog_limiter", RateLimiter(None, clock=t.clock, sleep=t.sleep))
    return make_client(fake, t, **kwargs)


def sent_ids(request: SentRequest) -> list[str]:
    return [item["id"] for item in json.loads(request.body)["items"]]


def refusal(code: str, message: str, *ids: str) -> Reply:
    error = {"id": code, "message": message, "parameters": ["id"], "parameter_values": list(ids)}
    return Reply(400, {"errors": [error], "message": "Invalid Request"})


def catalog_braze(bad: dict[str, str], *, name_ids: bool = True) -> Callable[[SentRequest], Step]:
    """Braze's item endpoints: 202 unless the request holds an id of `bad` (id -> error code),
    then 400 for the whole request, naming the bad ids or, without `name_ids`, none."""

    def answer(request: SentRequest) -> Step:
        found = [i for i in sent_ids(request) if i in bad]
        if not found:
            return ACCEPTED
        errors = [
            {"id": bad[i], "message": f"{bad[i]} for this item", "parameters": ["id"],
             "parameter_values": [i] if name_ids else []}
            for i in found
        ]  # fmt: skip
        return Reply(400, {"errors": errors, "message": "Invalid Request"})

    return answer


def delivered(fake: FakeBraze) -> list[str]:
    """Ids of the requests a `catalog_braze` script accepted (it is pure: asked again, it
    answers the same)."""
    assert callable(fake.script)
    return [i for r in fake.sent if fake.script(r) is ACCEPTED for i in sent_ids(r)]


# -- sending ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PATCH", "PUT", "DELETE"])
def test_items_go_as_given_in_requests_of_50(t: FakeTime, method: Any) -> None:
    parts = items(120)
    fake = FakeBraze(lambda request: ACCEPTED)

    result = client(fake, t).catalog_items("products", method, parts)

    assert result == CatalogResult(list(range(120)), {}, 3, [])
    assert MAX_CATALOG_ITEMS == 50
    assert [len(sent_ids(r)) for r in fake.sent] == [50, 50, 20]
    assert {(r.method, r.url) for r in fake.sent} == {(method, ITEMS_URL)}
    assert fake.sent[2].body == b'{"items":[' + b",".join(parts[100:]) + b"]}"  # not re-encoded
    assert fake.sent[0].headers["Authorization"] == f"Bearer {KEY}"
    assert t.sleeps == []


def test_the_catalog_name_is_quoted_into_the_path(t: FakeTime) -> None:
    fake = FakeBraze([ACCEPTED])
    client(fake, t).catalog_items("my catalog/x", "POST", items(1))
    assert fake.sent[0].url == f"{ENDPOINT}/catalogs/my%20catalog%2Fx/items"


def test_nothing_to_send_sends_nothing(t: FakeTime) -> None:
    fake = FakeBraze([])
    assert client(fake, t).catalog_items("products", "PATCH", []) == CatalogResult([], {}, 0, [])


def test_a_method_braze_has_not_is_the_callers_bug(t: FakeTime) -> None:
    fake = FakeBraze([])
    with pytest.raises(ValueError, match="method must be one of"):
        client(fake, t).catalog_items("products", "GET", items(1))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="catalog name"):
        client(fake, t).catalog_items("", "POST", items(1))
    assert fake.sent == []


def test_batches_sent_from_several_threads_are_each_settled(t: FakeTime) -> None:
    fake = FakeBraze(catalog_braze({"t2-sku-7": "invalid-fields"}))
    braze = client(fake, t)
    results: dict[int, CatalogResult] = {}

    def send(thread: int) -> None:
        results[thread] = braze.catalog_items("products", "POST", items(50, f"t{thread}-sku-"))

    workers = [threading.Thread(target=send, args=(n,)) for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    for thread, result in results.items():
        bad = {7: "invalid-fields: invalid-fields for this item"} if thread == 2 else {}
        assert result.rejected == bad
        assert result.accepted == [i for i in range(50) if i not in bad]
    assert len(fake.sent) == 5  # one request per thread, and thread 2 resent its 49 good items


# -- Braze's 400: the items at fault ----------------------------------------------------------------


def test_400_naming_ids_rejects_exactly_those_and_resends_the_rest(t: FakeTime) -> None:
    first = Reply(400, {"message": "Invalid Request", "errors": [
        {"id": "invalid-fields", "message": "Some of the fields given do not exist in the catalog",
         "parameters": ["id"], "parameter_values": ["sku-1"]},
        {"id": "unable-to-coerce-value", "message": "Item types can't be converted",
         "parameters": ["id"], "parameter_values": ["sku-3", "not-in-this-request"]},
    ]})  # fmt: skip
    fake = FakeBraze([first, ACCEPTED])

    result = client(fake, t).catalog_items("products", "PATCH", items(5))

    assert result.rejected == {
        1: "invalid-fields: Some of the fields given do not exist in the catalog",
        3: "unable-to-coerce-value: Item types can't be converted",
    }
    assert result.accepted == [0, 2, 4]
    assert result.requests == 2 and result.error is None
    assert [sent_ids(r) for r in fake.sent][1] == ["sku-0", "sku-2", "sku-4"]
    assert fake.sent[1].method == "PATCH"


def test_400_naming_no_item_is_halved_until_each_bad_item_is_alone(t: FakeTime) -> None:
    fake = FakeBraze(catalog_braze({"sku-5": "items-too-large", "sku-6": "invalid-ids"}, name_ids=False))

    result = client(fake, t).catalog_items("products", "POST", items(8))

    assert result.rejected == {
        5: "items-too-large: items-too-large for this item",
        6: "invalid-ids: invalid-ids for this item",
    }
    assert result.accepted == [0, 1, 2, 3, 4, 7]
    assert not set(result.accepted) & set(result.rejected)
    assert sorted(delivered(fake)) == [f"sku-{i}" for i in (0, 1, 2, 3, 4, 7)]  # each once
    # 0-7 refused -> 0-3 sent, 4-7 refused -> 4-5 refused -> 4, 5 -> 6-7 refused -> 6, 7
    assert [len(sent_ids(r)) for r in fake.sent] == [8, 4, 4, 2, 1, 1, 2, 1, 1]
    assert result.requests == 9


def test_a_lone_item_refused_without_errors_gets_brazes_message(t: FakeTime) -> None:
    fake = FakeBraze([Reply(400, {"message": "Invalid Request"})])
    result = client(fake, t).catalog_items("products", "POST", items(1))
    assert result == CatalogResult([], {0: "Invalid Request"}, 1, [])


def test_a_long_reason_is_cut_to_an_excerpt(t: FakeTime) -> None:
    fake = FakeBraze([refusal("invalid-fields", "no such field:\n" + "x" * 500, "sku-0")])
    [reason] = client(fake, t).catalog_items("products", "POST", items(1)).rejected.values()
    assert reason.startswith("invalid-fields: no such field: xxx") and reason.endswith("...")
    assert len(reason) == 200


@pytest.mark.parametrize(
    "failure",
    [
        Reply(400, HTML, {"Content-Type": "text/html"}),
        Reply(400, {"error": "blocked by policy"}),  # JSON, but not Braze's: no `message`
        Reply(400, ""),
    ],
)
def test_400_that_is_not_brazes_rejects_nothing(t: FakeTime, failure: Reply) -> None:
    fake = FakeBraze([ACCEPTED, failure])

    result = client(fake, t).catalog_items("products", "POST", items(60))

    assert result.accepted == list(range(50))  # the first request's answer stands
    assert result.rejected == {}
    assert isinstance(result.error, BrazeRequestError)
    assert "not with Braze's JSON" in result.error.message
    assert len(fake.sent) == 2  # not split either


# -- item-already-exists: PUT instead ----------------------------------------------------------------


def test_post_of_existing_items_goes_again_as_put(t: FakeTime) -> None:
    fake = FakeBraze([refusal("item-already-exists", "The item already exists", "sku-1", "sku-2"),
                      ACCEPTED, ACCEPTED])  # fmt: skip

    result = client(fake, t).catalog_items("products", "POST", items(4))

    assert result == CatalogResult([0, 1, 2, 3], {}, 3, [1, 2])
    assert [(r.method, sent_ids(r)) for r in fake.sent] == [
        ("POST", ["sku-0", "sku-1", "sku-2", "sku-3"]),
        ("POST", ["sku-0", "sku-3"]),
        ("PUT", ["sku-1", "sku-2"]),
    ]
    assert fake.sent[2].body == b'{"items":[' + b",".join(items(4)[1:3]) + b"]}"


def test_existing_and_invalid_items_in_one_refusal(t: FakeTime) -> None:
    answer = Reply(400, {"message": "Invalid Request", "errors": [
        {"id": "item-already-exists", "message": "exists", "parameter_values": ["sku-0", "sku-2"]},
        {"id": "invalid-fields", "message": "no such field", "parameter_values": ["sku-2"]},
    ]})  # fmt: skip
    fake = FakeBraze([answer, ACCEPTED, refusal("unable-to-coerce-value", "bad", "sku-0")])

    result = client(fake, t).catalog_items("products", "POST", items(3))

    # sku-2 is invalid whether it exists or not; sku-0 existed, and its PUT was refused too
    assert result.rejected == {0: "unable-to-coerce-value: bad", 2: "invalid-fields: no such field"}
    assert result.accepted == [1] and result.replaced == []
    assert [(r.method, sent_ids(r)) for r in fake.sent][1:] == [("POST", ["sku-1"]), ("PUT", ["sku-0"])]


def test_a_post_resent_after_a_dropped_connection_that_meets_its_own_item_is_replaced(t: FakeTime) -> None:
    dropped = ProtocolError("Connection aborted.", http.client.RemoteDisconnected("closed"))
    fake = FakeBraze([dropped, refusal("item-already-exists", "exists", "sku-0"), ACCEPTED])

    result = client(fake, t).catalog_items("products", "POST", items(1))

    assert result == CatalogResult([0], {}, 3, [0])
    assert [r.method for r in fake.sent] == ["POST", "POST", "PUT"]


def test_item_already_exists_outside_a_post_is_a_rejection(t: FakeTime) -> None:
    fake = FakeBraze([refusal("item-already-exists", "exists", "sku-0")])
    result = client(fake, t).catalog_items("products", "PUT", items(1))
    assert result == CatalogResult([], {0: "item-already-exists: exists"}, 1, [])


# -- transient trouble ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trouble", "wait"),
    [
        (Reply(429, {"message": "rate limited"}, {"X-Ratelimit-Retry-After": "4"}), 4.0),
        (Reply(429, {"message": "rate limited"}, {"Retry-After": "3600"}), 30.0),  # capped
        (Reply(503, HTML, {"Content-Type": "text/html"}), 0.5),
        (Reply(500, {"message": "internal error"}, {"Retry-After": "2"}), 2.0),
        (ProtocolError("Connection aborted.", http.client.RemoteDisconnected("closed")), 0.5),
        (ConnectionResetError(104, "Connection reset by peer"), 0.5),
        (read_timeout(), 0.5),
        (Reply(200, HTML, {"Content-Type": "text/html"}), 0.5),  # a captive portal's 200
        (Reply(202, ""), 0.5),
        (Reply(202, {"status": "queued"}), 0.5),  # JSON without Braze's `message`
    ],
)
def test_transient_trouble_is_retried_with_the_same_body(t: FakeTime, trouble: Step, wait: float) -> None:
    fake = FakeBraze([trouble, ACCEPTED])

    result = client(fake, t).catalog_items("products", "DELETE", items(3))

    assert result == CatalogResult([0, 1, 2], {}, 2, [])
    assert t.sleeps == [wait]
    assert fake.sent[0].body == fake.sent[1].body


def test_a_2xx_that_is_not_brazes_acknowledges_nothing_when_retries_run_out(t: FakeTime) -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=4.0, max_elapsed=10.0, jitter=0.0)
    fake = FakeBraze(lambda request: Reply(200, HTML, {"Content-Type": "text/html"}))

    result = client(fake, t, retry=policy).catalog_items("products", "POST", items(2))

    assert result.accepted == [] and result.rejected == {}
    assert isinstance(result.error, BrazeUnavailable)
    assert "not Braze's JSON" in result.error.message
    assert len(fake.sent) == 4


# -- terminal answers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        Reply(404, {"errors": [{"id": "catalog-not-found", "message": "Could not find catalog",
                                "parameters": ["catalog_name"], "parameter_values": ["products"]}],
                    "message": "Invalid Request"}),
        Reply(404, "<html>Not Found</html>", {"Content-Type": "text/html"}),
    ],
)  # fmt: skip
def test_404_names_the_catalog_and_how_to_fix_it(t: FakeTime, answer: Reply) -> None:
    fake = FakeBraze([answer])

    result = client(fake, t).catalog_items("products", "POST", items(2))

    assert result.accepted == [] and result.rejected == {}
    error = result.error
    assert isinstance(error, BrazeRequestError) and error.status == 404
    assert "no catalog named 'products'" in error.message
    assert error.hint is not None
    assert "create the catalog 'products' in Braze" in error.hint and "`catalog:`" in error.hint
    assert len(fake.sent) == 1


@pytest.mark.parametrize(
    ("method", "permission"),
    [("POST", "catalogs.add_items"), ("PATCH", "catalogs.update_items"),
     ("PUT", "catalogs.replace_items"), ("DELETE", "catalogs.delete_items")],
)  # fmt: skip
def test_403_names_the_permission_of_the_method(t: FakeTime, method: Any, permission: str) -> None:
    fake = FakeBraze([Reply(403, {"message": f"forbidden for {KEY}"})])

    result = client(fake, t).catalog_items("products", method, items(1))

    error = result.error
    assert isinstance(error, BrazeAuthError) and error.status == 403
    assert error.hint is not None and f"`{permission}`" in error.hint
    assert f"{method} /catalogs/products/items" in error.message
    assert KEY not in str(error) and KEY not in error.hint


def test_401_stops_the_call_and_keeps_what_was_settled(t: FakeTime) -> None:
    fake = FakeBraze([ACCEPTED, Reply(401, {"message": f"bad key {KEY}"})])
    result = client(fake, t).catalog_items("products", "PATCH", items(70))
    assert result.accepted == list(range(50))
    assert isinstance(result.error, BrazeAuthError) and result.error.status == 401
    assert KEY not in str(result.error)


def test_the_key_never_reaches_a_reason_a_message_or_the_log(
    t: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    escaped = KEY.replace("a", "\\u0061")
    body = ('{"message":"Invalid Request","errors":[{"id":"invalid-fields","message":"no field '
            + escaped + '","parameter_values":["sku-0"]}]}')  # fmt: skip
    fake = FakeBraze([
        Reply(400, body, {"Content-Type": "application/json"}), ACCEPTED,
        Reply(404, f"<html>{KEY}</html>", {"X-Echo": KEY}, reason=f"Not Found {KEY}"),
    ])  # fmt: skip

    first = client(fake, t).catalog_items("products", "POST", items(2))
    second = client(fake, t).catalog_items("products", "POST", items(1))

    assert first.rejected == {0: "invalid-fields: no field ***"}
    assert second.error is not None and "***" in str(second.error)
    assert KEY not in str(second.error) and KEY not in (second.error.hint or "")
    assert KEY not in caplog.text


# -- pacing --------------------------------------------------------------------------------------------


class RecordingLimiter(RateLimiter):
    def __init__(self, rate: float | None, t: FakeTime) -> None:
        super().__init__(rate, clock=t.clock, sleep=t.sleep)
        self.acquired = 0
        self.limited = 0

    def acquire(self) -> None:
        self.acquired += 1
        super().acquire()

    def on_rate_limited(self, retry_after: float | None = None) -> None:
        self.limited += 1
        super().on_rate_limited(retry_after)


def test_catalog_requests_have_their_own_limiter(t: FakeTime) -> None:
    track = RecordingLimiter(10, t)
    catalog = RecordingLimiter(100, t)
    fake = FakeBraze([Reply(429, {"message": "rate limited"}, {"Retry-After": "1"}), ACCEPTED, ACCEPTED])

    result = client(fake, t, limiter=track, catalog_limiter=catalog).catalog_items(
        "products", "POST", items(51)
    )

    assert result.accepted == list(range(51))
    assert (catalog.acquired, catalog.limited) == (3, 1)
    assert (track.acquired, track.limited) == (0, 0)
    assert track.rate == 10 and catalog.rate is not None and catalog.rate < 100


def test_default_pace_is_brazes_catalog_limit(t: FakeTime) -> None:
    fake = FakeBraze(lambda request: ACCEPTED)

    make_client(fake, t).catalog_items("products", "PUT", items(150))

    assert CATALOG_REQUESTS_PER_MINUTE == 16_000
    assert t.sleeps == [pytest.approx(60 / 16_000)] * 2  # three requests, spaced


def test_the_sync_setting_paces_the_catalog_limiter() -> None:
    assert SyncSettings().catalog_requests_per_second == 266
    braze = BrazeSettings(ENDPOINT, KEY)
    assert _client(braze, SyncSettings(catalog_requests_per_second=40))._catalog_limiter.rate == 40
    assert _client(braze, SyncSettings(catalog_requests_per_second=0))._catalog_limiter.rate is None


# -- catalog_fields ------------------------------------------------------------------------------------


def catalog(name: str, **fields: str) -> dict[str, Any]:
    listed = [{"name": "id", "type": "string"}] + [{"name": k, "type": v} for k, v in fields.items()]
    return {"name": name, "description": "", "fields": listed, "num_items": 3, "updated_at": "2024-01-01"}


def test_fields_of_a_catalog(t: FakeTime) -> None:
    listing = {"catalogs": [catalog("stores", city="string"), catalog("products", price="number",
                                                                        on_sale="boolean")],
               "message": "success"}  # fmt: skip
    fake = FakeBraze([Reply(200, listing)])

    fields = client(fake, t).catalog_fields("products")

    assert fields == {"id": "string", "price": "number", "on_sale": "boolean"}
    [request] = fake.sent
    assert (request.method, request.url, request.body) == ("GET", f"{ENDPOINT}/catalogs", None)


@pytest.mark.parametrize(
    ("page_one", "next_url"),
    [
        ({"Link": '</catalogs?cursor=c2tpcDow>; rel="next"'}, None),
        ({"Link": f'<{ENDPOINT}/catalogs?cursor=c2tpcDow>; rel="next", </catalogs>; rel="prev"'}, None),
        ({}, "c2tpcDow"),  # the cursor in the body
    ],
)
def test_pages_are_followed_until_the_catalog_or_the_last_page(
    t: FakeTime, page_one: dict[str, str], next_url: str | None
) -> None:
    first = {"catalogs": [catalog("stores")], "message": "success"}
    if next_url:
        first["next_cursor"] = next_url
    pages = [Reply(200, first, page_one),
             Reply(200, {"catalogs": [catalog("products", price="number")], "message": "success"},
                   {"Link": '</catalogs>; rel="prev"'})]  # fmt: skip
    fake = FakeBraze(list(pages))

    assert client(fake, t).catalog_fields("products") == {"id": "string", "price": "number"}
    assert [r.url for r in fake.sent] == [f"{ENDPOINT}/catalogs", f"{ENDPOINT}/catalogs?cursor=c2tpcDow"]

    fake = FakeBraze(list(pages))
    assert client(fake, t).catalog_fields("absent") is None
    assert len(fake.sent) == 2  # every page read, then none has it


def test_a_next_page_elsewhere_is_not_followed(t: FakeTime) -> None:
    elsewhere = {"Link": '<https://collector.example/catalogs?cursor=x>; rel="next"'}
    fake = FakeBraze([Reply(200, {"catalogs": [], "message": "success"}, elsewhere)])

    with pytest.raises(BrazeRequestError, match="not followed"):
        client(fake, t).catalog_fields("products")
    assert len(fake.sent) == 1


def test_pages_that_loop_or_never_end_are_not_followed_forever(t: FakeTime) -> None:
    loop = {"Link": '</catalogs?cursor=again>; rel="next"'}
    fake = FakeBraze(lambda request: Reply(200, {"catalogs": [], "message": "success"}, loop))
    with pytest.raises(BrazeRequestError, match="kept pointing to further pages"):
        client(fake, t).catalog_fields("products")
    assert len(fake.sent) == 2

    endless = FakeBraze(
        lambda request: Reply(
            200, {"catalogs": [], "next_cursor": f"c{len(endless.sent)}", "message": "success"}
        )
    )
    with pytest.raises(BrazeRequestError, match="kept pointing to further pages"):
        client(endless, t).catalog_fields("products")
    assert len(endless.sent) == MAX_CATALOG_PAGES


def test_catalog_fields_retries_what_is_not_brazes_list_and_names_its_permission(t: FakeTime) -> None:
    listing = Reply(200, {"catalogs": [catalog("products")], "message": "success"})
    fake = FakeBraze([Reply(200, HTML, {"Content-Type": "text/html"}), Reply(200, {"message": "success"}),
                      Reply(429, {"message": "slow down"}, {"Retry-After": "5"}), listing])  # fmt: skip
    assert client(fake, t).catalog_fields("products") == {"id": "string"}
    assert t.sleeps == [0.5, 1.0, 5.0]

    fake = FakeBraze([Reply(403, {"message": f"forbidden {KEY}"})])
    with pytest.raises(BrazeAuthError) as caught:
        client(fake, t).catalog_fields("products")
    assert caught.value.hint is not None and "`catalogs.get`" in caught.value.hint
    assert KEY not in str(caught.value)
