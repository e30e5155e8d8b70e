"""Braze `/users/track` attributes objects: the rows the sync reads, their checks, and batching.

The warehouse renders each user's object, by the contract's typing rules
(macros/values.sql normalizes, macros/json.sql renders) and names a value
Braze cannot hold (NaN, infinity, a date outside ISO 8601's years, a string
over 255 characters); this module refuses those objects, builds the unset
objects of removed users, and batches.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

JsonValue = Any


class LocalRejection(ValueError):
    """A value that must not be sent; the row is recorded as rejected with this reason."""


# One row of the objects read (macros/json.sql): a user's object, rendered in the
# warehouse. The engine keeps the warehouse's row tuples as they come (a million
# per first sync) and reads their fields by these indexes:
#   KEY                the user's identifier
#   IS_NEW             bool
#   DATA_POINTS        attributes the object sends: each is billed (the identifier is not)
#   ATTRIBUTES_JSON    the object's members but the identifier: `"email":"a@b.c","score":3`
#   ACK_ATTRIBUTES     ROW_SEPARATOR-joined, in the order of ACK_HASHES
#   ACK_HASHES         ROW_SEPARATOR-joined, '' for a removed value
#   INVALID_ATTRIBUTE  `<attribute>: <reason>` for one value Braze cannot hold
#                      (macros/json.sql, braze_invalid_value_sql), else None
#   NEEDS_CHECK        1: holds JSON-typed values, which may nest NaN or infinities
#   BUILT_STAMP        when braze_objects__<model> was built, as text: the sync acknowledges
#                      from that relation by key while it is unchanged, from this row's lists
#                      once a `dbt run` rebuilt it; None when the read was not from it
#                      (--full-refresh)
KEY, IS_NEW, DATA_POINTS, ATTRIBUTES_JSON, ACK_ATTRIBUTES, ACK_HASHES, INVALID_ATTRIBUTE, NEEDS_CHECK = range(
    8
)
BUILT_STAMP = 8


class ObjectAcks(NamedTuple):
    """Users of braze_objects__<model> (read at `stamp`) whose objects Braze accepted, in read
    order: each one's (key, ack_attributes, ack_hashes) as read, what the warehouse records
    for them if the relation was rebuilt since."""

    stamp: str
    users: list[tuple[str, str, str | None]]

    @property
    def keys(self) -> list[str]:
        return [user[0] for user in self.users]


def check_object(row: tuple[Any, ...]) -> None:
    """Raise LocalRejection for an object Braze must not get (a value it cannot hold, broken JSON)."""
    if row[INVALID_ATTRIBUTE]:
        raise LocalRejection(row[INVALID_ATTRIBUTE])
    if row[NEEDS_CHECK]:
        try:
            json.loads("{" + row[ATTRIBUTES_JSON] + "}", parse_constant=_refuse_constant, parse_float=_finite)
        except LocalRejection:
            raise
        except ValueError as exc:
            raise LocalRejection(f"not valid JSON: {exc}") from exc


def _finite(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise LocalRejection(f"{text} is too large for a JSON number")
    return number


def _refuse_constant(name: str) -> None:
    raise LocalRejection(f"{name} is not valid JSON; Braze accepts no NaN or infinity")


def unset_object(id_field: str, key: str, attributes: Iterable[str]) -> dict[str, JsonValue]:
    """Null for every attribute: Braze removes them. Never creates a user."""
    obj: dict[str, JsonValue] = {id_field: str(key), "_update_existing_only": True}
    obj.update({name: None for name in attributes})
    return obj


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
