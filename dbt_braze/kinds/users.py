"""Kind `users`: a user's attributes and subscription group states, keyed by external_id or
braze_id, through `/users/track`; removed users unset or deleted.

The warehouse renders each user's object, by the contract's typing rules
(macros/values.sql normalizes, macros/json.sql renders, macros/subscriptions.sql
for the groups) and names a value Braze cannot hold (NaN, infinity, a date outside
ISO 8601's years, a string over 255 characters, a value that is no subscription
state); this module refuses those objects, completes the others with their
identifier, builds the unset objects and deletions of removed users, and says
which state an accepted object advances. An object with nothing to send (its only
changes are withheld subscribes) is acknowledged without a request.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from dbt_braze.braze import MAX_DELETE_IDS
from dbt_braze.config import SUBSCRIPTION_GROUP_PREFIX, ModelSync
from dbt_braze.kinds.base import UNSENT, Answer, BrazeAccess, LocalRejection, Sendable, Stream
from dbt_braze.rows import (
    ACK_ATTRIBUTES,
    ACK_HASHES,
    ATTRIBUTES_JSON,
    BUILT_STAMP,
    DATA_POINTS,
    INVALID_ATTRIBUTE,
    IS_NEW,
    KEY,
    NEEDS_CHECK,
    OBJECT_COLUMNS,
    REMOVED_USER_COLUMNS,
    ROW_SEPARATOR,
    SUBSCRIBES_WITHHELD,
    SUBSCRIPTION_CHANGES,
    Read,
    RelationRef,
    Row,
)
from dbt_braze.settings import SyncMode

JsonValue = Any


@dataclass(frozen=True)
class Track:
    """`/users/track` attributes objects, as many per request as --batch-size says."""

    exclusive: bool = False

    def batch_size(self, requested: int) -> int:
        return requested

    def send(self, braze: BrazeAccess, batch: list[Sendable]) -> Answer:
        result = braze.track_encoded([item.body for item in batch])
        return Answer(result.accepted, result.rejected, result.requests)


@dataclass(frozen=True)
class Delete:
    """`/users/delete` by the model's identifier; a request Braze answers deletes its every id."""

    id_field: str
    exclusive: bool = True

    def batch_size(self, requested: int) -> int:
        return MAX_DELETE_IDS

    def send(self, braze: BrazeAccess, batch: list[Sendable]) -> Answer:
        result = braze.delete_users([item.key for item in batch], self.id_field)
        deleted = set(result.deleted)
        return Answer([i for i, item in enumerate(batch) if item.key in deleted], {}, result.requests)


class Users:
    name = "users"

    def streams(self, model: ModelSync, relation: RelationRef, mode: SyncMode) -> Iterator[Stream]:
        header = b'{"' + model.id_field.encode() + b'":'
        flag = b',"_update_existing_only":true,' if model.update_only else b","

        def prepare(row: Row) -> Sendable:
            sendable = upsert_sendable(row, header + json.dumps(str(row[KEY])).encode() + flag)
            try:
                check_object(row)
            except LocalRejection as exc:
                return sendable._replace(refused=str(exc))
            return sendable

        if mode.full_refresh:  # every user's whole object; removed users are left alone
            read = Read(
                "braze_read_full_refresh_objects_sql",
                OBJECT_COLUMNS,
                {"relation": relation, "id_column": model.id_column, "mappings": model.mapping_specs()},
                whole_model=True,
            )
            yield Stream(read, prepare, Track())
            return
        pending = Read("braze_read_objects_sql", OBJECT_COLUMNS, {"model_name": model.model_name})
        yield Stream(pending, prepare, Track())
        if model.on_removed == "ignore":
            return
        removed = Read(
            "braze_read_removed_users_sql",
            REMOVED_USER_COLUMNS,
            {"model_name": model.model_name, "mapped_only": model.on_removed == "unset"},
        )
        if model.on_removed == "unset":
            yield Stream(removed, lambda row: unset_sendable(model.id_field, str(row[0]), row[1]), Track())
        else:
            yield Stream(removed, lambda row: delete_sendable(str(row[0]), row[1]), Delete(model.id_field))


USERS = Users()


def upsert_sendable(row: Row, opening: bytes) -> Sendable:
    """A row of the objects read as a complete object; `opening` is `{"<id field>":"<key>",`
    and the update-only flag, what precedes the attributes. A row that sends nothing (its
    only changes are withheld subscribes) is UNSENT: acknowledged, never sent."""
    # json.dumps' default encoder is cached (other options build one per call); \u escapes are JSON too
    members = row[ATTRIBUTES_JSON]
    return Sendable(
        opening + members.encode() + b"}",
        (str(row[KEY]), row[ACK_ATTRIBUTES], row[ACK_HASHES]),
        int(row[DATA_POINTS]),
        ("created" if row[IS_NEW] else "updated") if members else UNSENT,
        row[BUILT_STAMP],
        subscription_changes=int(row[SUBSCRIPTION_CHANGES]),
        subscribes_withheld=int(row[SUBSCRIBES_WITHHELD]),
    )


def unset_sendable(id_field: str, key: str, attributes: str) -> Sendable:
    """A removed user's attributes set to null. Its subscription group states are not
    attributes: they are forgotten with the rest, never sent (a user who comes back has
    them diffed from nothing), and a user with nothing else is UNSENT."""
    names = [
        name for name in attributes.split(ROW_SEPARATOR) if not name.startswith(SUBSCRIPTION_GROUP_PREFIX)
    ]
    if not names:
        return Sendable(b"", (key, attributes, None), 0, UNSENT)
    body = json.dumps(unset_object(id_field, key, names), separators=(",", ":"), ensure_ascii=False)
    return Sendable(body.encode("utf-8"), (key, attributes, None), len(names), "unset")


def delete_sendable(key: str, attributes: str) -> Sendable:
    """A deletion: its state rows are forgotten once Braze answers; no data points."""
    return Sendable(b"", (key, attributes, None), 0, "deleted")


def check_object(row: Row) -> None:
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
