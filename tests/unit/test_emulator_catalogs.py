"""Catalogs in the Braze emulator, over real loopback sockets: the asynchronous item
endpoints with Braze's rules and error codes (one bad item refuses the whole request),
GET /catalogs, auth, rate limits, faults, the control interface and reset."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import requests
from emulator_harness import TRACK_ONLY_KEY, track

from dbt_braze.emulator import BrazeEmulator
from dbt_braze.emulator.cli import build_parser

FIELDS = {
    "title": "string",
    "price": "number",
    "in_stock": "boolean",
    "launched": "time",
    "specs": "object",
    "tags": "array",
}


@pytest.fixture
def shop(emu: BrazeEmulator) -> BrazeEmulator:
    emu.create_catalog("products", FIELDS)
    return emu


def send(
    emu: BrazeEmulator, http: requests.Session, method: str, *items: Any, catalog: str = "products"
) -> requests.Response:
    return http.request(method, f"{emu.url}/catalogs/{catalog}/items", json={"items": list(items)}, timeout=5)


def error(code: str, *values: Any, parameter: str = "id") -> dict[str, Any]:
    """One entry of Braze's `errors`, its message aside."""
    return {"id": code, "parameters": [parameter], "parameter_values": list(values)}


def errors_of(r: requests.Response) -> list[dict[str, Any]]:
    body = r.json()
    assert body["message"] == "Invalid Request", body
    assert all(entry["message"] for entry in body["errors"]), body
    return [{k: v for k, v in entry.items() if k != "message"} for entry in body["errors"]]


# -- the four methods ------------------------------------------------------------------------------


def test_post_creates_items_and_answers_202(shop: BrazeEmulator, http: requests.Session) -> None:
    mug = {"id": "sku-1", "title": "Mug", "price": 3.5, "in_stock": True, "launched": "2026-03-01T10:00:00Z",
           "specs": {"colour": {"outer": "red"}}, "tags": ["kitchen"]}  # fmt: skip
    r = send(shop, http, "POST", mug, {"id": "SKU_2", "title": "x" * 5000, "price": 7, "specs": None})

    assert r.status_code == 202 and r.json() == {"message": "success"}
    assert r.headers["X-RateLimit-Limit"] == "16000" and r.headers["X-RateLimit-Remaining"] == "15999"
    assert shop.catalog_items("products") == {
        "sku-1": {"title": "Mug", "price": 3.5, "in_stock": True, "launched": "2026-03-01T10:00:00Z",
                  "specs": {"colour": {"outer": "red"}}, "tags": ["kitchen"]},
        "SKU_2": {"title": "x" * 5000, "price": 7},  # a null is no value: the field is absent
    }  # fmt: skip
    stats = shop.stats()
    assert (stats["catalog_requests"], stats["catalog_post_requests"], stats["catalog_patch_requests"]) == (
        1,
        1,
        0,
    )
    assert (stats["catalog_items_sent"], stats["catalog_items_accepted"], stats["catalog_items_created"]) == (
        2,
        2,
        2,
    )
    assert stats["data_points"] == 0  # catalog writes are not data points
    [logged] = shop.requests_log
    assert (logged.method, logged.path, logged.status) == ("POST", "/catalogs/products/items", 202)


def test_post_of_an_existing_id_refuses_the_request(shop: BrazeEmulator, http: requests.Session) -> None:
    send(shop, http, "POST", {"id": "a", "title": "A"})

    r = send(shop, http, "POST", {"id": "new", "title": "N"}, {"id": "a", "title": "again"})

    assert r.status_code == 400 and errors_of(r) == [error("item-already-exists", "a")]
    assert shop.catalog_items("products") == {"a": {"title": "A"}}  # "new" was not created either
    assert shop.stats()["catalog_items_rejected"] == 2


def test_patch_changes_only_the_given_fields_and_ignores_missing_ids(
    shop: BrazeEmulator, http: requests.Session
) -> None:
    send(shop, http, "POST", {"id": "a", "title": "A", "price": 1, "in_stock": True, "tags": ["x", "y"]})

    r = send(shop, http, "PATCH",
             {"id": "a", "price": 2, "in_stock": None, "tags": {"$add": ["z"], "$remove": ["x"]}},
             {"id": "ghost", "price": 9})  # fmt: skip

    assert r.status_code == 202 and r.json() == {"message": "success"}
    assert shop.catalog_items("products") == {"a": {"title": "A", "price": 2, "tags": ["y", "z"]}}
    stats = shop.stats()
    assert (stats["catalog_items_updated"], stats["catalog_items_patched_missing"]) == (1, 1)
    assert stats["catalog_patch_requests"] == 1


def test_put_replaces_an_item_or_creates_it(shop: BrazeEmulator, http: requests.Session) -> None:
    send(shop, http, "POST", {"id": "a", "title": "A", "price": 1})

    r = send(shop, http, "PUT", {"id": "a", "price": 2}, {"id": "b", "title": "B"})

    assert r.status_code == 202
    assert shop.catalog_items("products") == {"a": {"price": 2}, "b": {"title": "B"}}  # "title" of a is gone
    stats = shop.stats()
    assert (stats["catalog_items_replaced"], stats["catalog_items_created"]) == (1, 2)
    assert stats["catalog_put_requests"] == 1


def test_delete_removes_items_and_ignores_missing_ids(shop: BrazeEmulator, http: requests.Session) -> None:
    send(shop, http, "POST", {"id": "a"}, {"id": "b"})

    r = send(shop, http, "DELETE", {"id": "a"}, {"id": "ghost"})

    assert r.status_code == 202 and r.json() == {"message": "success"}
    assert shop.catalog_items("products") == {"b": {}}
    stats = shop.stats()
    assert (stats["catalog_items_deleted"], stats["catalog_items_deleted_missing"]) == (1, 1)
    assert stats["catalog_delete_requests"] == 1


def test_patch_operators_only_on_array_fields_of_a_patch(shop: BrazeEmulator, http: requests.Session) -> None:
    send(shop, http, "POST", {"id": "a", "tags": ["x"]})
    operator = {"$add": ["y"]}

    assert errors_of(send(shop, http, "PUT", {"id": "a", "tags": operator})) == [
        error("invalid-keys-in-value-object", "a")
    ]
    assert errors_of(send(shop, http, "PATCH", {"id": "a", "specs": operator})) == [
        error("invalid-keys-in-value-object", "a")
    ]
    assert errors_of(send(shop, http, "PATCH", {"id": "a", "tags": {"add": ["y"]}})) == [
        error("unable-to-coerce-value", "a")
    ]
    assert shop.catalog_items("products") == {"a": {"tags": ["x"]}}


# -- one bad item refuses the whole request ---------------------------------------------------------


def nested(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = {"k": value}
    return value


BAD_ITEMS = [
    ({"id": "bad", "colour": "red"}, error("invalid-fields", "bad")),
    ({"id": "has space"}, error("invalid-ids", "has space")),
    ({"id": "é"}, error("invalid-ids", "é")),
    ({"id": ""}, error("invalid-ids", "")),
    ({"id": "x" * 251}, error("ids-too-large", "x" * 251)),
    ({"id": 12}, error("ids-not-strings", 12)),
    ({"title": "no id"}, error("items-missing-ids")),
    ({"id": None}, error("items-missing-ids")),
    ({"id": "bad", "title": "x" * 5001}, error("items-too-large", "bad")),
    ({"id": "bad", "specs": {"text": "x" * 5000}}, error("items-too-large", "bad")),
    ({"id": "bad", "specs": {"a.b": 1}}, error("invalid-keys-in-value-object", "bad")),
    ({"id": "bad", "specs": {"outer": [{"$set": 1}]}}, error("invalid-keys-in-value-object", "bad")),
    ({"id": "bad", "ti$tle": "t"}, error("invalid-keys-in-value-object", "bad")),
    ({"id": "bad", "specs": nested(51)}, error("too-deep-nesting-in-value-object", "bad")),
    ({"id": "bad", "price": "12"}, error("unable-to-coerce-value", "bad")),
    ({"id": "bad", "price": True}, error("unable-to-coerce-value", "bad")),
    ({"id": "bad", "in_stock": "yes"}, error("unable-to-coerce-value", "bad")),
    ({"id": "bad", "launched": "tomorrow"}, error("unable-to-coerce-value", "bad")),
    ({"id": "bad", "title": 12}, error("unable-to-coerce-value", "bad")),
    ({"id": "bad", "specs": [1]}, error("unable-to-coerce-value", "bad")),
    ({"id": "bad", "tags": "kitchen"}, error("unable-to-coerce-value", "bad")),
    ({"id": "ok"}, error("ids-not-unique", "ok")),  # the good item's id, again
]


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_one_bad_item_refuses_the_request_naming_its_id(
    shop: BrazeEmulator, http: requests.Session, method: str
) -> None:
    for bad, expected in BAD_ITEMS:
        r = send(shop, http, method, {"id": "ok", "title": "fine"}, bad)
        assert r.status_code == 400, (bad, r.text)
        assert errors_of(r) == [expected], bad
    assert shop.catalog_items("products") == {}  # not even the good item
    stats = shop.stats()
    assert (stats["catalog_items_rejected"], stats["catalog_items_accepted"]) == (2 * len(BAD_ITEMS), 0)
    assert stats["status_counts"] == {400: len(BAD_ITEMS)}


def test_a_delete_reads_only_the_ids(shop: BrazeEmulator, http: requests.Session) -> None:
    assert errors_of(send(shop, http, "DELETE", {"id": "a b"}, {"id": 7}, {"nothing": 1})) == [
        error("invalid-ids", "a b"), error("ids-not-strings", 7), error("items-missing-ids"),
    ]  # fmt: skip
    assert send(shop, http, "DELETE", {"id": "a", "colour": "ignored"}).status_code == 202


def test_errors_of_several_items_are_grouped_by_code(shop: BrazeEmulator, http: requests.Session) -> None:
    items = [
        {"id": "a", "colour": "red"},
        {"id": "b", "price": "1"},
        {"id": "c", "colour": "blue", "price": "2"},
    ]
    r = send(shop, http, "POST", *items, {"id": "d", "title": "fine"})

    assert errors_of(r) == [error("invalid-fields", "a", "c"), error("unable-to-coerce-value", "b", "c")]


def test_request_level_errors(shop: BrazeEmulator, http: requests.Session) -> None:
    many = [{"id": f"i{n}"} for n in range(51)]
    r = send(shop, http, "POST", *many)
    assert r.status_code == 400 and errors_of(r) == [
        error("request-includes-too-many-items", parameter="items")
    ]
    assert send(shop, http, "POST", *many[:50]).status_code == 202  # 50 is the limit
    for body in ({}, {"items": {"id": "a"}}, {"items": []}, {"items": ["a"]}):
        r = http.post(f"{shop.url}/catalogs/products/items", json=body, timeout=5)
        assert r.status_code == 400 and errors_of(r) == [error("item-array-invalid", parameter="items")], body
    assert len(shop.catalog_items("products")) == 50


def test_an_unknown_catalog_is_404_catalog_not_found(shop: BrazeEmulator, http: requests.Session) -> None:
    r = send(shop, http, "PATCH", {"id": "a"}, catalog="nope")
    assert r.status_code == 404
    assert errors_of(r) == [error("catalog-not-found", "nope", parameter="catalog_name")]


# -- auth, content type, paths --------------------------------------------------------------------


def test_auth_content_type_and_paths(shop: BrazeEmulator, http: requests.Session) -> None:
    url = f"{shop.url}/catalogs/products/items"
    body = {"items": [{"id": "a"}]}
    unknown = requests.post(url, json=body, headers={"Authorization": "Bearer secret-xyz"}, timeout=5)
    assert unknown.status_code == 401 and unknown.json() == {"message": "Invalid API key: secret-xyz"}
    assert requests.post(url, json=body, timeout=5).status_code == 401
    for method, permission in (("POST", "catalogs.add_items"), ("DELETE", "catalogs.delete_items")):
        r = requests.request(method, url, json=body, headers={"Authorization": f"Bearer {TRACK_ONLY_KEY}"})
        assert r.status_code == 403 and permission in r.json()["message"]
    listing = requests.get(f"{shop.url}/catalogs", headers={"Authorization": f"Bearer {TRACK_ONLY_KEY}"})
    assert listing.status_code == 403 and "catalogs.get" in listing.json()["message"]
    assert http.post(url, data=b'{"items": []}', headers={"Content-Type": "text/plain"}).status_code == 415
    assert (
        http.post(url, data=b'{"items": [NaN]}', headers={"Content-Type": "application/json"}).status_code
        == 400
    )
    not_allowed = http.get(url)
    assert not_allowed.status_code == 405 and not_allowed.headers["Allow"] == "POST, PATCH, PUT, DELETE"
    assert http.post(f"{shop.url}/catalogs", json=body).status_code == 405
    slash = http.post(url + "/", json=body)
    assert slash.status_code == 404 and "no trailing slash" in slash.json()["message"]
    assert shop.catalog_items("products") == {}
    assert shop.stats()["catalog_requests"] == 6  # to the item path with an item method: 405 and 404 aside


# -- GET /catalogs ------------------------------------------------------------------------------------


def test_get_catalogs_lists_every_catalog_with_its_fields(
    shop: BrazeEmulator, http: requests.Session
) -> None:
    shop.create_catalog("empty", {})
    send(shop, http, "POST", {"id": "a"}, {"id": "b"})

    r = http.get(f"{shop.url}/catalogs")

    assert r.status_code == 200 and r.json()["message"] == "success"
    assert r.headers["X-RateLimit-Limit"] == "50"
    listed = {catalog["name"]: catalog for catalog in r.json()["catalogs"]}
    assert listed["products"]["fields"] == [{"name": "id", "type": "string"}] + [
        {"name": name, "type": kind} for name, kind in FIELDS.items()
    ]
    assert listed["products"]["num_items"] == 2 and listed["products"]["updated_at"].endswith("+00:00")
    assert (
        listed["empty"]["fields"] == [{"name": "id", "type": "string"}] and listed["empty"]["num_items"] == 0
    )
    assert shop.stats()["catalog_list_requests"] == 1
    shop.delete_catalog("empty")


# -- rate limits and faults ---------------------------------------------------------------------------


def test_the_item_endpoints_share_one_rate_limit(shop: BrazeEmulator, http: requests.Session) -> None:
    shop.configure(catalog_rate_limit=2, retry_after_header=True, catalog_list_rate_limit=1, rate_limit=1)

    answers = [
        send(shop, http, "POST", {"id": "a"}),
        send(shop, http, "PATCH", {"id": "a", "title": "A"}),
        send(shop, http, "DELETE", {"id": "a"}),
    ]

    assert [r.status_code for r in answers] == [202, 202, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in answers] == ["1", "0", "0"]
    assert answers[2].headers["Retry-After"] and answers[2].json()["message"].startswith("API rate limit")
    assert shop.catalog_items("products") == {"a": {"title": "A"}}  # the refused DELETE applied nothing
    assert track(shop, http, {"external_id": "u1", "plan": "pro"}).status_code == 201  # a bucket of its own
    assert [http.get(f"{shop.url}/catalogs").status_code for _ in range(2)] == [200, 429]
    assert shop.stats()["rate_limited"] == 2


def test_faults_apply_to_the_item_endpoints(shop: BrazeEmulator, http: requests.Session) -> None:
    shop.configure(scripted_statuses=[503, 429])
    assert send(shop, http, "POST", {"id": "a"}).status_code == 503
    limited = send(shop, http, "POST", {"id": "a"})
    assert limited.status_code == 429 and "X-RateLimit-Reset" in limited.headers
    assert shop.catalog_items("products") == {}

    shop.configure(drop_before_apply_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        send(shop, http, "POST", {"id": "a"})
    assert shop.catalog_items("products") == {}

    shop.configure(drop_before_apply_rate=0.0, drop_after_apply_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        send(shop, http, "PUT", {"id": "a", "title": "A"})
    assert shop.catalog_items("products") == {"a": {"title": "A"}}  # applied, though nobody was told

    shop.configure(drop_after_apply_rate=0.0, gateway_timeout_after_apply_rate=1.0)
    assert send(shop, http, "PATCH", {"id": "a", "price": 1}).status_code == 504
    assert shop.catalog_items("products") == {"a": {"title": "A", "price": 1}}

    shop.configure(gateway_timeout_after_apply_rate=0.0, error_rate=1.0, error_status=502, error_body="html")
    assert send(shop, http, "DELETE", {"id": "a"}).status_code == 502
    assert shop.catalog_items("products") == {"a": {"title": "A", "price": 1}}

    assert [(e.method, e.status) for e in shop.requests_log] == [
        ("POST", 503), ("POST", 429), ("POST", 0), ("PUT", 0), ("PATCH", 504), ("DELETE", 502),
    ]  # fmt: skip
    stats = shop.stats()
    assert (stats["dropped_connections"], stats["catalog_items_sent"], stats["catalog_items_accepted"]) == (
        2,
        6,
        2,
    )


def test_a_scripted_2xx_is_applied_and_answered_with_it(shop: BrazeEmulator, http: requests.Session) -> None:
    shop.configure(scripted_statuses=[200])
    r = send(shop, http, "POST", {"id": "a"})
    assert r.status_code == 200 and r.json() == {"message": "success"}
    assert shop.catalog_items("products") == {"a": {}}


# -- the control interface, reset and the command line ----------------------------------------------


def test_the_control_interface_over_http(emu: BrazeEmulator, http: requests.Session) -> None:
    control = f"{emu.url}/_emulator/catalogs"
    created = requests.post(control, json={"name": "menu", "fields": {"dish": "string", "kcal": "number"}})
    assert created.status_code == 201
    assert created.json() == {"name": "menu", "fields": {"id": "string", "dish": "string", "kcal": "number"}}
    assert send(emu, http, "POST", {"id": "soup", "kcal": 120}, catalog="menu").status_code == 202

    items = requests.get(f"{control}/menu/items", timeout=5)
    assert items.status_code == 200 and items.json() == {"items": {"soup": {"kcal": 120}}}
    assert requests.get(control, timeout=5).json()["menu"] == {
        "id": "string",
        "dish": "string",
        "kcal": "number",
    }

    again = requests.post(control, json={"name": "menu", "fields": {"dish": "string"}})  # replaces, emptied
    assert again.status_code == 201 and emu.catalog_items("menu") == {}
    assert emu.catalogs()["menu"] == {"id": "string", "dish": "string"}

    bad_bodies = [
        {"name": "a b"},
        {"name": "menu", "fields": {"kcal": "integer"}},
        {"name": "m", "fields": [1]},
        {"name": "m", "fields": {"id": "number"}},
        {"name": "m", "extra": 1},
    ]
    for bad in bad_bodies:
        r = requests.post(control, json=bad, timeout=5)
        assert r.status_code == 400 and r.json()["message"], bad
    assert requests.get(f"{control}/nope/items", timeout=5).status_code == 404

    assert requests.delete(f"{control}/menu", timeout=5).status_code == 200
    assert "menu" not in emu.catalogs()
    assert requests.delete(f"{control}/menu", timeout=5).status_code == 404
    assert send(emu, http, "POST", {"id": "soup"}, catalog="menu").status_code == 404


def test_the_python_control_interface_refuses_what_braze_would(emu: BrazeEmulator) -> None:
    assert emu.create_catalog("pets", {"name": "string"}) == {"id": "string", "name": "string"}
    with pytest.raises(ValueError, match="'weight'.*'float'"):
        emu.create_catalog("pets", {"weight": "float"})
    with pytest.raises(ValueError, match="catalog name"):
        emu.create_catalog("pets!", {})
    with pytest.raises(KeyError, match="no catalog named 'nope'"):
        emu.catalog_items("nope")
    assert emu.catalog_items("pets") == {}  # the failed replacement left the catalog alone
    emu.delete_catalog("pets")


def test_reset_empties_the_catalogs_and_keeps_them(shop: BrazeEmulator, http: requests.Session) -> None:
    shop.configure(catalog_rate_limit=1)
    send(shop, http, "POST", {"id": "a"})
    assert send(shop, http, "POST", {"id": "b"}).status_code == 429

    assert requests.post(f"{shop.url}/_emulator/reset", timeout=5).status_code == 200

    assert shop.catalog_items("products") == {}
    assert shop.catalogs()["products"]["price"] == "number"
    assert shop.stats()["catalog_requests"] == 0
    assert send(shop, http, "POST", {"id": "b"}).status_code == 202  # a fresh rate window


def test_the_catalog_option_of_the_command_line() -> None:
    args = build_parser().parse_args(
        ["--catalog", "products:title=string, price=number", "--catalog", "bare"]
    )
    assert args.catalogs == [("products", {"title": "string", "price": "number"}), ("bare", {})]
    for bad in ("products:title", "products:title=text", "bad name:title=string"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["--catalog", bad])


def test_the_command_line_serves_its_catalogs() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "dbt_braze.emulator", "--port", "0", "--catalog-rate-limit", "1",
         "--catalog", "products:title=string,price=number"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split()[-1]
        auth = {"Authorization": "Bearer test-key"}
        listed = requests.get(f"{url}/catalogs", headers=auth, timeout=5).json()["catalogs"]
        assert [(c["name"], len(c["fields"])) for c in listed] == [("products", 3)]
        body = {"items": [{"id": "a", "price": 2}]}
        statuses = [requests.post(f"{url}/catalogs/products/items", json=body, headers=auth).status_code
                    for _ in range(2)]  # fmt: skip
        assert statuses == [202, 429]
    finally:
        process.terminate()
        process.wait(timeout=5)
