"""Kind `users`: a user's attributes and subscription group states, keyed by external_id,
braze_id, email, phone or user_alias, through `/users/track`; removed users unset or deleted.

The warehouse renders each user's object, by the contract's typing rules
(macros/values.sql normalizes, macros/json.sql renders, macros/subscriptions.sql
for the groups) and names a value Braze cannot hold (NaN, infinity, a date outside
ISO 8601's years, a string over 255 characters, a value that is no subscription
state); this module refuses those objects, and identifiers Braze would refuse (an
e-mail address it would not take, a phone number not in E.164), completes the
others with their identifier, builds the unset objects and deletions of removed
users, and says which state an accepted object advances. An object with nothing
to send (its only changes are withheld subscribes) is acknowledged without a request.

The state keys users by the kind of identifier and its value
(ModelSync.key_prefix): the identifier sent is the key without its prefix. A
removed user whose key was recorded under another identifier (the model's
identifier changed since) cannot be addressed by the current one: nothing is
sent for it, and its state is forgotten (Forget), once the mass-removal guard
lets the model's removals through.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from dbt_braze.braze import MAX_DELETE_IDS
from dbt_braze.config import SUBSCRIPTION_GROUP_PREFIX, ModelSync
from dbt_braze.kinds.addressing import Addressing
from dbt_braze.kinds.base import (
    UNSENT,
    Answer,
    BrazeAccess,
    LocalRejection,
    Sendable,
    Stream,
    check_json_members,
)
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

# Forgetting touches only the warehouse: large batches, one checkpoint entry each.
FORGET_BATCH = 1_000


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

    addressing: Addressing
    exclusive: bool = True

    def batch_size(self, requested: int) -> int:
        return MAX_DELETE_IDS

    def send(self, braze: BrazeAccess, batch: list[Sendable]) -> Answer:
        ids = [self.addressing.value(item.key) for item in batch]
        result = braze.delete_users(ids, self.addressing.field, self.addressing.alias_label)
        deleted = set(result.deleted)
        return Answer([i for i, value in enumerate(ids) if value in deleted], {}, result.requests)


@dataclass(frozen=True)
class Forget:
    """Nothing sent: the state of removed users recorded under another identifier, which the
    model's cannot address, is forgotten. Irreversible like a deletion, and with no payload
    to show, hence exclusive."""

    exclusive: bool = True

    def batch_size(self, requested: int) -> int:
        return FORGET_BATCH

    def send(self, braze: BrazeAccess, batch: list[Sendable]) -> Answer:
        return Answer(list(range(len(batch))), {}, 0)


class Users:
    name: str = "users"
    at_most_once: bool = False

    def streams(self, model: ModelSync, relation: RelationRef, mode: SyncMode) -> Iterator[Stream]:
        addressing = Addressing.of(model)
        # per row, only the identifier's JSON string is new (a first sync prepares millions)
        head, tail = addressing.framing(update_only=model.update_only)
        prefix, checked = model.key_prefix, addressing.checked

        def prepare(row: Row) -> Sendable:
            key = str(row[KEY])
            value = addressing.value(key) if prefix else key
            sendable = upsert_sendable(row, head + json.dumps(value).encode() + tail)
            if row[INVALID_ATTRIBUTE] or row[NEEDS_CHECK] or checked:
                try:
                    addressing.check(value)
                    check_object(row)
                except LocalRejection as exc:
                    return sendable._replace(refused=str(exc))
            return sendable

        if mode.full_refresh:  # every user's whole object; removed users are left alone
            args = {
                "relation": relation,
                "id_column": model.id_column,
                "mappings": model.mapping_specs(),
                "key_prefix": model.key_prefix,
            }
            read = Read("braze_read_full_refresh_objects_sql", OBJECT_COLUMNS, args, whole_model=True)
            yield Stream(read, prepare, Track())
            return
        pending = Read("braze_read_objects_sql", OBJECT_COLUMNS, {"model_name": model.model_name})
        yield Stream(pending, prepare, Track())
        if model.on_removed == "unset":
            removed = removed_users(model, mapped_only=True, recorded_elsewhere=False)
            yield Stream(removed, lambda row: unset_sendable(addressing, str(row[0]), row[1]), Track())
        elif model.on_removed == "delete":
            removed = removed_users(model, mapped_only=False, recorded_elsewhere=False)
            yield Stream(
                removed, lambda row: removal_sendable(str(row[0]), row[1], "deleted"), Delete(addressing)
            )
        # whatever on_removed says: the current identifier cannot address these users
        elsewhere = removed_users(model, mapped_only=False, recorded_elsewhere=True)
        yield Stream(elsewhere, lambda row: removal_sendable(str(row[0]), row[1], "forgotten"), Forget())


USERS = Users()


def removed_users(model: ModelSync, *, mapped_only: bool, recorded_elsewhere: bool) -> Read:
    """Removed users whose key the model's identifier made (or, `recorded_elsewhere`, not)."""
    args = {
        "model_name": model.model_name,
        "mapped_only": mapped_only,
        "key_prefix": model.key_prefix,
        "recorded_elsewhere": recorded_elsewhere,
    }
    return Read("braze_read_removed_users_sql", REMOVED_USER_COLUMNS, args)


def upsert_sendable(row: Row, opening: bytes) -> Sendable:
    """A row of the objects read as a complete object; `opening` is `{"<id field>":"<value>",`
    and the update-only flag, what precedes the attributes. A row that sends nothing (its
    only changes are withheld subscribes) is UNSENT: acknowledged, never sent."""
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


def unset_sendable(addressing: Addressing, key: str, attributes: str) -> Sendable:
    """A removed user's attributes set to null. Its subscription group states are not
    attributes: they are forgotten with the rest, never sent (a user who comes back has
    them diffed from nothing), and a user with nothing else is UNSENT."""
    names = [
        name for name in attributes.split(ROW_SEPARATOR) if not name.startswith(SUBSCRIPTION_GROUP_PREFIX)
    ]
    if not names:
        return Sendable(b"", (key, attributes, None), 0, UNSENT)
    obj = unset_object(addressing.member(addressing.value(key)), names)
    body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return Sendable(body.encode("utf-8"), (key, attributes, None), len(names), "unset")


def removal_sendable(key: str, attributes: str, outcome: str) -> Sendable:
    """A deletion, or a user forgotten: its state rows are forgotten once done; no data points."""
    return Sendable(b"", (key, attributes, None), 0, outcome)


def check_object(row: Row) -> None:
    """Raise LocalRejection for an object Braze must not get (a value it cannot hold, broken JSON)."""
    if row[INVALID_ATTRIBUTE]:
        raise LocalRejection(row[INVALID_ATTRIBUTE])
    if row[NEEDS_CHECK]:
        check_json_members(row[ATTRIBUTES_JSON])


def unset_object(identifier: dict[str, JsonValue], attributes: Iterable[str]) -> dict[str, JsonValue]:
    """Null for every attribute: Braze removes them. Never creates a user. `identifier` is the
    object's identifier member (Addressing.member)."""
    obj: dict[str, JsonValue] = {**identifier, "_update_existing_only": True}
    obj.update({name: None for name in attributes})
    return obj
