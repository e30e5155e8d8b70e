"""Events and purchases in the Braze emulator, over real loopback sockets: validation as
braze-api-notes.md documents it, storage without deduplication, the count of objects that
arrived more than once, and the faults that leave a client not knowing what was applied."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from emulator_harness import track

from dbt_braze.emulator import BrazeEmulator, EmulatorConfig

TIME = "2026-03-01T10:00:00Z"


def event(**fields: Any) -> dict[str, Any]:
    return {"external_id": "u1", "name": "order_placed", "time": TIME, **fields}


def purchase(**fields: Any) -> dict[str, Any]:
    return {
        "external_id": "u1",
        "product_id": "sku-1",
        "currency": "EUR",
        "price": 9.5,
        "time": TIME,
        **fields,
    }


def without(obj: dict[str, Any], name: str) -> dict[str, Any]:
    return {key: value for key, value in obj.items() if key != name}


# -- accepted and stored -------------------------------------------------------------------------


def test_an_event_is_stored_with_its_profile(emu: BrazeEmulator, http: requests.Session) -> None:
    r = track(emu, http, events=[event(properties={"plan": "pro", "amount": 12.5})])

    assert r.status_code == 201 and r.json() == {"message": "success", "events_processed": 1}
    [stored] = emu.events()
    assert stored == {"braze_id": emu.braze_id_of("u1"), "external_id": "u1", "name": "order_placed",
                      "time": TIME, "properties": {"plan": "pro", "amount": 12.5}}  # fmt: skip
    assert emu.users(external_id="u1")[0]["events"] == 1
    assert emu.stats()["events_accepted"] == 1


def test_a_purchase_is_stored_and_booked_quantity_times(emu: BrazeEmulator, http: requests.Session) -> None:
    r = track(emu, http, purchases=[purchase(), purchase(product_id="sku-2", quantity=3)])

    assert r.json() == {"message": "success", "purchases_processed": 2}
    assert [(p["product_id"], p["currency"], p["price"], p["quantity"]) for p in emu.purchases()] == [
        ("sku-1", "EUR", 9.5, 1),  # quantity 1 when absent
        ("sku-2", "EUR", 9.5, 3),
    ]
    assert emu.users(external_id="u1")[0]["purchases"] == 4  # Braze books quantity X as X purchases


def test_the_inspection_endpoints_list_events_and_purchases(
    emu: BrazeEmulator, http: requests.Session
) -> None:
    track(emu, http, events=[event()], purchases=[purchase()])
    assert requests.get(f"{emu.url}/_emulator/events", timeout=5).json() == emu.events()
    assert requests.get(f"{emu.url}/_emulator/purchases", timeout=5).json() == emu.purchases()
    assert len(emu.events()) == len(emu.purchases()) == 1


# -- refused, object by object -------------------------------------------------------------------

BAD_EVENTS = [
    (without(event(), "name"), "'name'"),
    (event(name=""), "'name'"),
    (event(name=7), "'name'"),
    (without(event(), "time"), "'time'"),
    (event(time="yesterday"), "ISO 8601"),
    (event(time=1772359200), "ISO 8601"),
    (event(properties=["plan"]), "'properties'"),
    (event(properties={"": 1}), "1 to 255 characters"),
    (event(properties={"p" * 256: 1}), "1 to 255 characters"),
    (event(properties={"$revenue": 1}), "'$'"),
    (event(properties={"time": "2026-01-01"}), "reserved"),
    (event(properties={"event_name": "x"}), "reserved"),
    (event(properties={"note": "x" * 256}), "longer than 255"),
    (event(properties={"items": ["x" * 1000] * 103}), "100 KB"),
    (without(event(), "external_id"), "external_id"),
]


@pytest.mark.parametrize(("bad", "reason"), BAD_EVENTS)
def test_an_invalid_event_is_an_error_entry_of_its_own(
    emu: BrazeEmulator, http: requests.Session, bad: dict[str, Any], reason: str
) -> None:
    r = track(emu, http, events=[event(), bad])

    assert r.status_code == 201
    [error] = r.json()["errors"]
    assert (error["input_array"], error["index"]) == ("events", 1)
    assert reason in error["type"]
    assert len(emu.events()) == 1


BAD_PURCHASES = [
    (without(purchase(), "product_id"), "'product_id'"),
    (purchase(product_id=""), "'product_id'"),
    (purchase(product_id="p" * 256), "'product_id'"),
    (without(purchase(), "currency"), "ISO 4217"),
    (purchase(currency="usd"), "ISO 4217"),
    (purchase(currency="ABC"), "ISO 4217"),
    (without(purchase(), "price"), "'price'"),
    (purchase(price="9.50"), "'price'"),
    (purchase(price=True), "'price'"),
    (purchase(quantity=0), "'quantity'"),
    (purchase(quantity=101), "'quantity'"),
    (purchase(quantity=1.5), "'quantity'"),
    (without(purchase(), "time"), "'time'"),
    (purchase(properties={"$color": "red"}), "'$'"),
]


@pytest.mark.parametrize(("bad", "reason"), BAD_PURCHASES)
def test_an_invalid_purchase_is_an_error_entry_of_its_own(
    emu: BrazeEmulator, http: requests.Session, bad: dict[str, Any], reason: str
) -> None:
    r = track(emu, http, purchases=[bad, purchase(quantity=100)])

    assert r.status_code == 201
    [error] = r.json()["errors"]
    assert (error["input_array"], error["index"]) == ("purchases", 0)
    assert reason in error["type"]
    assert [p["quantity"] for p in emu.purchases()] == [100]


def test_a_request_of_invalid_events_only_is_400(emu: BrazeEmulator, http: requests.Session) -> None:
    r = track(emu, http, events=[event(name=""), event(time="")])
    assert r.status_code == 400
    assert [e["index"] for e in r.json()["errors"]] == [0, 1]
    assert emu.events() == []


# -- never deduplicated, duplicates counted ------------------------------------------------------


def test_an_event_sent_twice_is_stored_twice_and_counted(emu: BrazeEmulator, http: requests.Session) -> None:
    track(emu, http, events=[event(properties={"order": 1})])
    track(emu, http, events=[event(properties={"order": 1}), event(properties={"order": 1})])

    assert len(emu.events()) == 3  # Braze gives each arrival an id of its own
    assert emu.stats()["duplicate_events"] == 2


@pytest.mark.parametrize(
    "other",
    [
        event(time="2026-03-01T10:00:01Z", properties={"order": 1}),
        event(name="order_shipped", properties={"order": 1}),
        event(external_id="u2", properties={"order": 1}),
        event(properties={"order": 2}),
        event(),
    ],
)
def test_events_that_differ_are_no_duplicates(
    emu: BrazeEmulator, http: requests.Session, other: dict[str, Any]
) -> None:
    track(emu, http, events=[event(properties={"order": 1}), other])
    assert emu.stats()["duplicate_events"] == 0


def test_the_same_event_in_another_notation_is_a_duplicate(
    emu: BrazeEmulator, http: requests.Session
) -> None:
    same = [
        event(time="2026-03-01T11:00:00+01:00"),  # the same instant
        event(time="2026-03-01T10:00:00"),  # no offset: UTC
        event(properties={}),  # as none
    ]
    track(emu, http, events=[event(), *same])
    assert emu.stats()["duplicate_events"] == 3


def test_a_purchase_sent_twice_is_counted(emu: BrazeEmulator, http: requests.Session) -> None:
    track(emu, http, purchases=[purchase(), purchase(price=10), purchase()])
    stats = emu.stats()
    assert (stats["duplicate_purchases"], stats["duplicate_events"]) == (1, 0)
    assert len(emu.purchases()) == 3


def test_reset_forgets_events_and_what_arrived(emu: BrazeEmulator, http: requests.Session) -> None:
    track(emu, http, events=[event()], purchases=[purchase()])
    emu.reset()
    track(emu, http, events=[event()])
    assert len(emu.events()) == 1 and emu.purchases() == []
    assert emu.stats()["duplicate_events"] == 0


# -- faults that leave the outcome unknown -------------------------------------------------------


def test_a_drop_after_applying_keeps_the_event_and_a_resend_is_a_duplicate(
    emu: BrazeEmulator, http: requests.Session
) -> None:
    emu.configure(drop_after_apply_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        track(emu, http, events=[event()])
    assert len(emu.events()) == 1
    emu.configure(drop_after_apply_rate=0.0)
    track(emu, http, events=[event()])  # what a client that retries it does
    assert emu.stats()["duplicate_events"] == 1


def test_a_drop_before_applying_keeps_nothing(emu: BrazeEmulator, http: requests.Session) -> None:
    emu.configure(drop_before_apply_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        track(emu, http, events=[event()], purchases=[purchase()])
    assert emu.events() == [] and emu.purchases() == []
    assert emu.stats()["dropped_connections"] == 1


@pytest.mark.parametrize("body", ["json", "html"])
def test_a_504_after_applying(emu: BrazeEmulator, http: requests.Session, body: str) -> None:
    emu.configure(gateway_timeout_after_apply_rate=1.0, error_body=body)
    r = track(emu, http, events=[event()])
    assert r.status_code == 504
    assert len(emu.events()) == 1
    assert emu.requests_log[-1].status == 504


def test_a_scripted_504_applies_nothing(emu: BrazeEmulator, http: requests.Session) -> None:
    emu.configure(scripted_statuses=[504])
    assert track(emu, http, events=[event()]).status_code == 504
    assert emu.events() == []


@pytest.mark.parametrize("rate", [-0.1, 1.5, "half"])
def test_the_504_rate_is_a_fraction(rate: object) -> None:
    with pytest.raises(ValueError, match="gateway_timeout_after_apply_rate"):
        EmulatorConfig(gateway_timeout_after_apply_rate=rate)  # type: ignore[arg-type]
