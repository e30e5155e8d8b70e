"""How Braze reads an event or a purchase object of a `/users/track` request
(braze-api-notes.md, "Events and purchases in /users/track").

An event names its user as an attributes object does, and has `name` (a
non-empty string), `time` (ISO 8601) and optional `properties`. A purchase
has `product_id` (a non-empty string of at most 255 characters), `currency`
(an ISO 4217 code), `price` (a number), `quantity` (an integer from 1 to 100,
1 when absent), `time` and optional `properties`. Property names are
non-empty, at most 255 characters, never start with `$` and are never `time`
or `event_name`; string values are at most 255 characters, and arrays and
objects at most 100 KB together.

Braze gives every event it ingests an id of its own, so the same object sent
twice counts twice. A `Change` of an event or purchase carries the record the
workspace stores, and its `arrival`: what two arrivals of one object share
(identifier, fields, properties, the instant of `time`), so the workspace can
count the objects that arrived more than once.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from .validation import MAX_STRING_CHARS, Change, whose

MAX_NESTED_PROPERTY_BYTES = 100 * 1024  # arrays and objects among a properties object's values
MAX_QUANTITY = 100
RESERVED_PROPERTIES = frozenset({"time", "event_name"})
# ISO 4217 alphabetic codes in use since 2020 (withdrawn ones such as HRK, CUC and ZWL
# included: a warehouse still holds them, and Braze's list is not published).
_CURRENCY_CODES = """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN
    BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN
    ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR IQD IRR ISK JMD
    JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP
    MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON
    RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP
    TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD
    XCD XCG XDR XOF XPD XPF XPT XSU XTS XUA XXX YER ZAR ZMW ZWG ZWL"""
CURRENCIES = frozenset(_CURRENCY_CODES.split())


def prepare_event(obj: Any) -> Change | str:
    found = whose(obj)
    if isinstance(found, str):
        return found
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        return "The 'name' field is required and must be a non-empty string."
    return _occurrence(found, obj, {"name": name})


def prepare_purchase(obj: Any) -> Change | str:
    found = whose(obj)
    if isinstance(found, str):
        return found
    product, currency, price = obj.get("product_id"), obj.get("currency"), obj.get("price")
    quantity = obj.get("quantity", 1)
    if not isinstance(product, str) or not 0 < len(product) <= MAX_STRING_CHARS:
        return f"The 'product_id' field is required: a string of 1 to {MAX_STRING_CHARS} characters."
    if currency not in CURRENCIES:
        return "The 'currency' field is required and must be an ISO 4217 currency code, such as USD."
    if not isinstance(price, (int, float)) or isinstance(price, bool):
        return "The 'price' field is required and must be a number."
    if not isinstance(quantity, int) or isinstance(quantity, bool) or not 1 <= quantity <= MAX_QUANTITY:
        return f"The 'quantity' field must be an integer from 1 to {MAX_QUANTITY}."
    fields = {"product_id": product, "currency": currency, "price": price, "quantity": quantity}
    change = _occurrence(found, obj, fields)
    if isinstance(change, Change):
        change.quantity = quantity  # Braze books quantity X as X purchases
    return change


def _occurrence(found: tuple[Any, bool], obj: dict[str, Any], fields: dict[str, Any]) -> Change | str:
    """The Change of an event or purchase whose own `fields` are valid: `time` and
    `properties` are checked here, the same for both."""
    identity, update_only = found
    instant = utc_instant(obj.get("time"))
    if instant is None:
        return "The 'time' field is required and must be an ISO 8601 date and time."
    properties = obj.get("properties")
    problem = _properties_problem(properties)
    if problem:
        return problem
    record = {**fields, "time": obj["time"], "properties": properties or {}}
    arrival = (identity, instant, json.dumps({**fields, "properties": properties or {}}, sort_keys=True))
    return Change(identity, update_only, {}, [], record=record, arrival=arrival)


def utc_instant(value: Any) -> str | None:
    """`time` as a UTC ISO 8601 string, None when it is not ISO 8601. A time without an offset
    is taken as UTC, as Braze takes dates (braze-api-notes.md, "Values")."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc).isoformat()


def _properties_problem(properties: Any) -> str | None:
    if properties is None:
        return None
    if not isinstance(properties, dict):
        return "The 'properties' field must be an object."
    nested = 0
    for name, value in properties.items():
        if not 0 < len(name) <= MAX_STRING_CHARS:
            return f"Property names must be 1 to {MAX_STRING_CHARS} characters long."
        if name.startswith("$"):
            return f"The property name '{name}' must not start with '$'."
        if name in RESERVED_PROPERTIES:
            return f"The property name '{name}' is reserved."
        if isinstance(value, str) and len(value) > MAX_STRING_CHARS:
            return f"The value of the property '{name}' is longer than {MAX_STRING_CHARS} characters."
        if isinstance(value, (list, dict)):
            nested += len(json.dumps(value).encode())
    if nested > MAX_NESTED_PROPERTY_BYTES:
        return f"Arrays and objects in 'properties' are over {MAX_NESTED_PROPERTY_BYTES // 1024} KB together."
    return None
