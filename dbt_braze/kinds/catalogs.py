"""Kind `catalog`: the items of a Braze catalog kept equal to a model, through
`/catalogs/{catalog}/items`, sending only what changed.

The warehouse diffs the model as it diffs users' attributes (macros/catalogs.sql):
the item id is the key (after `catalog:`), each mapped field an attribute. It
renders each pending item's members and names a value Braze cannot hold (NaN,
infinity, over 5,000 characters); this module adds the id, refuses those items
and ids Braze would refuse, and picks the method: new items are created with
every field (POST), changed ones get their changed fields (PATCH), removed ones
are deleted with `on_removed: delete` (DELETE), and `--full-refresh` replaces
every item whole (PUT). A POST that meets an item created outside dbt-braze
goes again as PUT (the client's fallback); the report counts those items apart.

Catalog writes are not data points: the report counts items and requests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from dbt_braze.braze import MAX_CATALOG_ITEMS, CatalogMethod
from dbt_braze.config import ModelSync
from dbt_braze.kinds.base import Answer, BrazeAccess, LocalRejection, Sendable, Stream, check_json_members
from dbt_braze.kinds.users import Forget, removed_users
from dbt_braze.rows import (
    ACK_ATTRIBUTES,
    ACK_HASHES,
    ATTRIBUTES_JSON,
    BUILT_STAMP,
    INVALID_ATTRIBUTE,
    KEY,
    NEEDS_CHECK,
    OBJECT_COLUMNS,
    Read,
    RelationRef,
    Row,
)
from dbt_braze.settings import SyncMode

# An item id Braze takes: at most 250 letters, digits, `-` and `_` (braze-api-notes.md, "Catalogs")
ITEM_ID = re.compile(r"[A-Za-z0-9_-]{1,250}")
MAX_ITEM_ID_LENGTH = 250
# Keys Braze refuses inside an object value (braze-api-notes.md, "Keys without `.` or `$`")
_REFUSED_KEY = re.compile(r"[.$]")
# What each method's accepted items count as in the report (ModelReport.count_accepted)
OUTCOMES: dict[CatalogMethod, str] = {
    "POST": "item_created",
    "PATCH": "item_updated",
    "PUT": "item_replaced",
    "DELETE": "item_deleted",
}


@dataclass(frozen=True)
class CatalogWrite:
    """One method of `/catalogs/{catalog}/items`, 50 items per request whatever --batch-size
    says. Deletions are irreversible: sent one request at a time, never shown as samples."""

    catalog: str
    method: CatalogMethod

    @property
    def exclusive(self) -> bool:
        return self.method == "DELETE"

    def batch_size(self, requested: int) -> int:
        return MAX_CATALOG_ITEMS

    def send(self, braze: BrazeAccess, batch: list[Sendable]) -> Answer:
        result = braze.catalog_items(self.catalog, self.method, [item.body for item in batch])
        return Answer(
            result.accepted, result.rejected, result.requests, error=result.error, replaced=result.replaced
        )


def item_opening(item_id: str) -> bytes:
    """`{"id":"<item id>"`: what every item object starts with."""
    return b'{"id":' + json.dumps(item_id).encode()


def id_problem(item_id: str) -> str | None:
    """Why Braze would refuse this item id, or None."""
    if ITEM_ID.fullmatch(item_id):
        return None
    if len(item_id) > MAX_ITEM_ID_LENGTH:
        return f"item id of {len(item_id)} characters; Braze takes at most {MAX_ITEM_ID_LENGTH}"
    return f"item id {json.dumps(item_id)} has characters other than letters, digits, - and _"


def check_keys(members: str) -> None:
    """Raise LocalRejection for an object value holding a key with `.` or `$` (Braze refuses them)."""

    def refuse(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        for name, _ in pairs:
            if _REFUSED_KEY.search(name):
                raise LocalRejection(f"key {json.dumps(name)} holds `.` or `$`, which Braze refuses")
        return dict(pairs)

    json.loads("{" + members + "}", object_pairs_hook=refuse)


class Catalogs:
    name: str = "catalog"
    at_most_once: bool = False

    def streams(self, model: ModelSync, relation: RelationRef, mode: SyncMode) -> Iterator[Stream]:
        assert model.catalog is not None  # config.py sets it for every catalog model
        catalog, prefix = model.catalog, model.key_prefix

        def prepare(row: Row, outcome: str) -> Sendable:
            key = str(row[KEY])
            item_id = key.removeprefix(prefix)
            members = row[ATTRIBUTES_JSON]
            body = item_opening(item_id) + (b"," + members.encode() if members else b"") + b"}"
            sendable = Sendable(
                body, (key, row[ACK_ATTRIBUTES], row[ACK_HASHES]), 0, outcome, row[BUILT_STAMP]
            )
            try:
                problem = id_problem(item_id) or row[INVALID_ATTRIBUTE]
                if problem:
                    raise LocalRejection(problem)
                if row[NEEDS_CHECK]:
                    check_json_members(members)
                    check_keys(members)
            except LocalRejection as exc:
                return sendable._replace(refused=str(exc))
            return sendable

        def writes(method: CatalogMethod, read: Read) -> Stream:
            outcome = OUTCOMES[method]
            return Stream(read, lambda row: prepare(row, outcome), CatalogWrite(catalog, method))

        if mode.full_refresh:  # every item whole; removed items are left alone
            args = {
                "relation": relation,
                "id_column": model.id_column,
                "mappings": model.mapping_specs(),
                "key_prefix": prefix,
            }
            yield writes(
                "PUT", Read("braze_read_catalog_full_refresh_sql", OBJECT_COLUMNS, args, whole_model=True)
            )
            return
        pending: tuple[tuple[CatalogMethod, bool], ...] = (("POST", True), ("PATCH", False))
        for method, is_new in pending:
            args = {"model_name": model.model_name, "is_new": is_new}
            yield writes(method, Read("braze_read_objects_sql", OBJECT_COLUMNS, args))
        if model.on_removed == "delete":
            removed = removed_users(model, mapped_only=False, recorded_elsewhere=False)
            yield Stream(removed, lambda row: deletion(prefix, row), CatalogWrite(catalog, "DELETE"))
        # keys recorded under another kind (the model was not a catalog before): never sent
        elsewhere = removed_users(model, mapped_only=False, recorded_elsewhere=True)
        yield Stream(elsewhere, forgotten, Forget())


def forgotten(row: Row) -> Sendable:
    """A key of another kind in the model's state: nothing is sent, its state is forgotten."""
    return Sendable(b"", (str(row[0]), row[1], None), 0, "forgotten")


def deletion(prefix: str, row: Row) -> Sendable:
    """A removed item: deleted by its id; its state is forgotten once Braze accepted."""
    key = str(row[0])
    body = item_opening(key.removeprefix(prefix)) + b"}"
    return Sendable(body, (key, row[1], None), 0, OUTCOMES["DELETE"])


CATALOGS = Catalogs()
