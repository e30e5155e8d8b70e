"""Pending rows → Braze `/users/track` attributes objects, by the contract's typing rules.

The warehouse hands over normalized text plus a type tag (see
macros/values.sql); this module turns them back into JSON values, refuses
what Braze cannot take (NaN, infinity), and batches objects.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

JsonValue = Any

# braze-api-notes.md: "Batch size: at most 75 objects per request".
MAX_OBJECTS_PER_REQUEST = 75


class LocalRejection(ValueError):
    """A value that must not be sent; the row is recorded as rejected with this reason."""


class AttributeChange(NamedTuple):
    """One pending row, in the column order of the read SQL (macros/sync.sql).

    The engine keeps the warehouse's row tuples as they come (millions per
    sync: building an object per row would cost more than fetching it), so
    code reads fields by the index constants below, which a plain row tuple
    and this NamedTuple share."""

    key: str
    attribute: str
    value_text: str | None
    value_type: str | None
    value_hash: str | None
    is_new: bool = False


ATTRIBUTE, VALUE_TEXT, VALUE_TYPE, VALUE_HASH = 1, 2, 3, 4


class UserChange(NamedTuple):
    """Everything pending for one user: sent as one object, acknowledged together."""

    key: str
    changes: tuple[tuple[Any, ...], ...]  # row tuples laid out as AttributeChange
    is_new: bool = False

    @property
    def data_points(self) -> int:
        """Attributes the object sends: each is billed (the identifier is not)."""
        return len(self.changes)


def _number(text: str) -> int | float:
    try:
        number = Decimal(text.strip())
    except InvalidOperation as exc:
        raise LocalRejection(f"not a number: {text!r}") from exc
    if not number.is_finite():
        raise LocalRejection(f"{text} is not a finite number; Braze accepts no NaN or infinity")
    if "." not in text and "e" not in text.lower():
        return int(number)  # DECIMAL(38,0) and friends: keep every digit
    as_float = float(number)
    if math.isinf(as_float):
        raise LocalRejection(f"{text} is too large for a JSON number")
    return as_float


def to_braze_value(value_text: str | None, value_type: str | None) -> JsonValue:
    """The JSON value Braze receives for one normalized warehouse value.

    null stays null (Braze then removes the attribute); integers stay exact
    (Python ints have no size limit); decimals and floats become JSON numbers;
    dates and timestamps are already ISO text in UTC.
    """
    if value_text is None:
        return None
    if value_type == "integer":
        try:
            return int(value_text)
        except ValueError:
            return _number(value_text)
    if value_type == "number":
        return _number(value_text)
    if value_type == "boolean":
        lowered = value_text.strip().lower()
        if lowered in ("true", "t", "1"):
            return True
        if lowered in ("false", "f", "0"):
            return False
        raise LocalRejection(f"not a boolean: {value_text!r}")
    if value_type == "json":
        try:
            return json.loads(value_text, parse_constant=_refuse_constant, parse_float=_number)
        except ValueError as exc:
            raise LocalRejection(f"not valid JSON: {exc}") from exc
    return value_text


def _refuse_constant(name: str) -> None:
    raise LocalRejection(f"{name} is not valid JSON; Braze accepts no NaN or infinity")


def build_object(id_field: str, change: UserChange, *, update_only: bool) -> dict[str, JsonValue]:
    """One attributes object: identifier first, then every changed attribute."""
    obj: dict[str, JsonValue] = {id_field: str(change.key)}
    if update_only:
        obj["_update_existing_only"] = True
    for row in change.changes:
        text, value_type = row[VALUE_TEXT], row[VALUE_TYPE]
        # strings are most values: skip the dispatch for them
        obj[row[ATTRIBUTE]] = text if value_type == "string" else to_braze_value(text, value_type)
    return obj


def unset_object(id_field: str, key: str, attributes: Iterable[str]) -> dict[str, JsonValue]:
    """Null for every attribute: Braze removes them. Never creates a user."""
    obj: dict[str, JsonValue] = {id_field: str(key), "_update_existing_only": True}
    obj.update({name: None for name in attributes})
    return obj


def data_points(obj: dict[str, JsonValue]) -> int:
    """Attributes billed for one object: every key but the identifier and `_` flags."""
    return sum(1 for k in obj if k not in ("external_id", "braze_id", "user_alias") and not k.startswith("_"))


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    if size < 1:
        raise ValueError("batch size must be at least 1")
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
