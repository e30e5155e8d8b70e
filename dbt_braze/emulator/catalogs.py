"""Braze catalogs: their fields and items, and the rules of the asynchronous
item endpoints (`POST|PATCH|PUT|DELETE /catalogs/{name}/items`).

The rules are those of braze-api-notes.md "Catalogs" and Braze's pages on
the asynchronous item endpoints. A request is checked whole, outside the
lock, and refused whole: one bad item makes a 400 that applies nothing,
whose `errors` hold one entry per error code naming the offending item ids in
`parameter_values` (the raw id for `ids-not-strings`, nothing for
`items-missing-ids`). Braze checks some of this only while processing the
queued request; the emulator answers every error synchronously, which is
what a client can test against.

Values are checked against the field's type without conversion: a string
field takes a JSON string, a number field a number (never `"12"`), a boolean
field `true`/`false`, a time field an ISO 8601 string, an object field an
object and an array field an array; `null` clears a field of any type (the
field is then absent from the item). PATCH also takes Braze's
`{"$add": [...], "$remove": [...]}` on array fields.

An item is stored as `{field: value}` without its id. The catalog's `id`
field (always `string`) is implied.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .counters import Stats
from .events import utc_instant

# Braze documents each limit (asynchronous catalog item endpoints, troubleshooting tables).
MAX_ITEMS_PER_REQUEST = 50
MAX_ID_CHARS = 250
MAX_VALUE_CHARS = 5000
MAX_NESTING = 50
MAX_NAME_CHARS = 250  # catalog and field names

FIELD_TYPES = ("string", "number", "boolean", "time", "object", "array")
ITEM_METHODS = ("POST", "PATCH", "PUT", "DELETE")

INVALID_REQUEST = "Invalid Request"
MESSAGES = {
    "catalog-not-found": "Could not find catalog",
    "item-array-invalid": "items must be an array of objects",
    "request-includes-too-many-items": f"Your request includes more than {MAX_ITEMS_PER_REQUEST} items",
    "items-missing-ids": "There are items that do not have item IDs",
    "ids-not-strings": "Item IDs must be strings",
    "ids-too-large": f"Item IDs can't be more than {MAX_ID_CHARS} characters",
    "invalid-ids": "Item IDs can only include letters, numbers, hyphens, and underscores",
    "ids-not-unique": "Item IDs must be unique in the request",
    "invalid-keys-in-value-object": "Item object keys can't include '.' or '$'",
    "too-deep-nesting-in-value-object": f"Item objects can't have more than {MAX_NESTING} levels of nesting",
    "invalid-fields": "Some of the fields given do not exist in the catalog",
    "items-too-large": f"Item values can't exceed {MAX_VALUE_CHARS} characters",
    "unable-to-coerce-value": "Item types can't be converted",
    "item-already-exists": "Some of the items already exist in the catalog",
}

_NAME = re.compile(r"[A-Za-z0-9_-]+")
_ARRAY_OPS = frozenset({"$add", "$remove"})
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Refusal:
    """A request Braze refuses whole: the status and its `errors`."""

    status: int
    errors: list[dict[str, Any]]

    def payload(self) -> dict[str, Any]:
        return {"errors": self.errors, "message": INVALID_REQUEST}


def refusal(status: int, code: str, parameter: str, values: list[Any]) -> Refusal:
    error = {"id": code, "message": MESSAGES[code], "parameters": [parameter], "parameter_values": values}
    return Refusal(status, [error])


@dataclass
class ItemChange:
    """One checked item of a request: what to set, clear and edit."""

    item_id: str
    sets: dict[str, Any] = field(default_factory=dict)
    clears: list[str] = field(default_factory=list)
    array_ops: dict[str, tuple[list[Any], list[Any]]] = field(default_factory=dict)  # PATCH $add/$remove


@dataclass
class Catalog:
    name: str
    fields: dict[str, str]  # name -> type, `id` first
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    updated_at: float = 0.0  # epoch seconds of the last change


class _Errors:
    """Error codes in the order first met, each with the values it names (once each)."""

    def __init__(self) -> None:
        self.by_code: dict[str, list[Any]] = {}

    def add(self, code: str, value: Any = None) -> None:
        values = self.by_code.setdefault(code, [])
        if value is not None and value not in values:
            values.append(value)

    def refusal(self) -> Refusal | None:
        if not self.by_code:
            return None
        errors = [
            {"id": code, "message": MESSAGES[code], "parameters": ["id"], "parameter_values": values}
            for code, values in self.by_code.items()
        ]
        return Refusal(400, errors)


def check_items(method: str, items: Any, fields: Mapping[str, str]) -> list[ItemChange] | Refusal:
    """A request's items as changes, or why Braze refuses the whole request."""
    if not isinstance(items, list) or not items or not all(isinstance(item, dict) for item in items):
        return refusal(400, "item-array-invalid", "items", [])
    if len(items) > MAX_ITEMS_PER_REQUEST:
        return refusal(400, "request-includes-too-many-items", "items", [])
    errors = _Errors()
    changes: list[ItemChange] = []
    seen: set[str] = set()
    for item in items:
        change = _check_item(method, item, fields, errors)
        if change is None:
            continue
        if change.item_id in seen:
            errors.add("ids-not-unique", change.item_id)
        seen.add(change.item_id)
        changes.append(change)
    refused = errors.refusal()
    return changes if refused is None else refused


def _check_item(
    method: str, item: dict[str, Any], fields: Mapping[str, str], errors: _Errors
) -> ItemChange | None:
    item_id = item.get("id")
    if item_id is None:
        errors.add("items-missing-ids")
        return None
    if not isinstance(item_id, str):
        errors.add("ids-not-strings", item_id)
        return None
    if len(item_id) > MAX_ID_CHARS:
        errors.add("ids-too-large", item_id)
    elif not _NAME.fullmatch(item_id):
        errors.add("invalid-ids", item_id)
    change = ItemChange(item_id)
    if method == "DELETE":
        return change  # Braze reads only the ids of a delete
    for key, value in item.items():
        if key == "id":
            continue
        code = _value_problem(method, key, value, fields)
        if code is not None:
            errors.add(code, item_id)
        elif value is None:
            change.clears.append(key)
        elif fields[key] == "array" and isinstance(value, dict):
            change.array_ops[key] = (value.get("$add", []), value.get("$remove", []))
        else:
            change.sets[key] = value
    return change


def _value_problem(method: str, key: str, value: Any, fields: Mapping[str, str]) -> str | None:
    """The error code of one field of an item, or None."""
    if "." in key or "$" in key:
        return "invalid-keys-in-value-object"
    kind = fields.get(key)
    if kind is None:
        return "invalid-fields"
    if value is None:
        return None
    if kind == "array" and method == "PATCH" and _is_array_op(value):
        # {"$add": [...], "$remove": [...]}: its `$` keys are operators, its lists the values
        for values in value.values():
            problem = _nested_problem(values, 1) or _size_problem(values)
            if problem:
                return problem
        return None
    problem = _nested_problem(value, 0) or _size_problem(value)
    if problem:
        return problem
    return None if _TYPE_CHECKS[kind](value) else "unable-to-coerce-value"


def _size_problem(value: Any) -> str | None:
    # A string counts its characters; an object or array its compact JSON.
    if isinstance(value, str):
        size = len(value)
    elif isinstance(value, (dict, list)):
        size = len(_ENCODER.encode(value))
    else:
        return None
    return "items-too-large" if size > MAX_VALUE_CHARS else None


def _is_array_op(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and bool(value)
        and value.keys() <= _ARRAY_OPS
        and all(isinstance(v, list) for v in value.values())
    )


def _nested_problem(value: Any, depth: int) -> str | None:
    """Keys with `.` or `$` inside a value, or more than MAX_NESTING levels."""
    if not isinstance(value, (dict, list)):
        return None
    if depth >= MAX_NESTING:
        return "too-deep-nesting-in-value-object"
    if isinstance(value, dict):
        for key, nested in value.items():
            if "." in key or "$" in key:
                return "invalid-keys-in-value-object"
            problem = _nested_problem(nested, depth + 1)
            if problem:
                return problem
        return None
    for nested in value:
        problem = _nested_problem(nested, depth + 1)
        if problem:
            return problem
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "string": lambda value: isinstance(value, str),
    "number": _is_number,
    "boolean": lambda value: isinstance(value, bool),
    "time": lambda value: utc_instant(value) is not None,
    "object": lambda value: isinstance(value, dict),
    "array": lambda value: isinstance(value, list),
}


def catalog_fields(name: Any, fields: Any) -> dict[str, str]:
    """A new catalog's fields, `id` first; ValueError naming what is wrong."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or len(name) > MAX_NAME_CHARS:
        raise ValueError(
            f"catalog name {name!r}: use 1 to {MAX_NAME_CHARS} letters, digits, hyphens and underscores"
        )
    if fields is None:
        fields = {}
    if not isinstance(fields, dict):
        raise ValueError(f"catalog {name!r}: fields must be an object of field name -> type")
    result = {"id": "string"}
    for field_name, kind in fields.items():
        if not _NAME.fullmatch(field_name) or len(field_name) > MAX_NAME_CHARS:
            raise ValueError(
                f"catalog {name!r}, field {field_name!r}: use 1 to {MAX_NAME_CHARS} letters, digits, "
                "hyphens and underscores"
            )
        if kind not in FIELD_TYPES:
            raise ValueError(f"catalog {name!r}, field {field_name!r}: type {kind!r}; valid: {FIELD_TYPES}")
        if field_name == "id" and kind != "string":
            raise ValueError(f"catalog {name!r}: the 'id' field is always a string")
        result[field_name] = kind
    return result


class Catalogs:
    """Every catalog of the workspace; a request is applied atomically under one lock."""

    def __init__(self, stats: Stats, clock: Callable[[], float]) -> None:
        self._stats = stats
        self._clock = clock
        self._lock = threading.Lock()
        self._catalogs: dict[str, Catalog] = {}

    # -- setup and inspection (the control interface) ---------------------------

    def create(self, name: Any, fields: Any) -> dict[str, str]:
        """Create the catalog, or replace it (emptied); returns its fields."""
        checked = catalog_fields(name, fields)
        with self._lock:
            self._catalogs[name] = Catalog(name, checked, updated_at=self._clock())
        return dict(checked)

    def drop(self, name: str) -> None:
        with self._lock:
            if self._catalogs.pop(name, None) is None:
                raise KeyError(f"no catalog named {name!r}")

    def empty_all(self) -> None:
        """What a reset does: every catalog loses its items and keeps its fields."""
        with self._lock:
            for catalog in self._catalogs.values():
                catalog.items.clear()

    def fields_of(self, name: str) -> dict[str, str] | None:
        with self._lock:
            catalog = self._catalogs.get(name)
            return None if catalog is None else dict(catalog.fields)

    def definitions(self) -> dict[str, dict[str, str]]:
        with self._lock:
            return {name: dict(catalog.fields) for name, catalog in self._catalogs.items()}

    def items(self, name: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            catalog = self._catalogs.get(name)
            if catalog is None:
                raise KeyError(f"no catalog named {name!r}")
            return copy.deepcopy(catalog.items)

    def listing(self) -> list[dict[str, Any]]:
        """The catalogs as `GET /catalogs` describes them."""
        with self._lock:
            return [
                {
                    "name": catalog.name,
                    "description": "",
                    "fields": [{"name": name, "type": kind} for name, kind in catalog.fields.items()],
                    "num_items": len(catalog.items),
                    "updated_at": _iso(catalog.updated_at),
                }
                for catalog in self._catalogs.values()
            ]

    # -- the item endpoints ---------------------------------------------------

    def apply(self, name: str, method: str, changes: list[ItemChange]) -> Refusal | None:
        """Apply a checked request, or refuse it (nothing applied): the catalog is
        gone, or a POST names items that exist."""
        deltas: Counter[str] = Counter()
        with self._lock:
            catalog = self._catalogs.get(name)
            if catalog is None:
                return refusal(404, "catalog-not-found", "catalog_name", [name])
            items = catalog.items
            if method == "POST":
                existing = [change.item_id for change in changes if change.item_id in items]
                if existing:
                    return refusal(400, "item-already-exists", "id", existing)
            for change in changes:
                _APPLY[method](items, change, deltas)
            catalog.updated_at = self._clock()
        deltas["catalog_items_accepted"] = len(changes)
        self._stats.bump(dict(deltas))
        return None


def _post(items: dict[str, dict[str, Any]], change: ItemChange, deltas: Counter[str]) -> None:
    items[change.item_id] = change.sets
    deltas["catalog_items_created"] += 1


def _put(items: dict[str, dict[str, Any]], change: ItemChange, deltas: Counter[str]) -> None:
    deltas["catalog_items_replaced" if change.item_id in items else "catalog_items_created"] += 1
    items[change.item_id] = change.sets  # fields not given are absent: a replacement


def _patch(items: dict[str, dict[str, Any]], change: ItemChange, deltas: Counter[str]) -> None:
    item = items.get(change.item_id)
    if item is None:
        # Braze accepts the request (202) and its asynchronous processing skips the item.
        deltas["catalog_items_patched_missing"] += 1
        return
    item.update(change.sets)
    for key in change.clears:
        item.pop(key, None)
    for key, (add, remove) in change.array_ops.items():
        current = item.get(key)
        values = list(current) if isinstance(current, list) else []
        values += [value for value in add if value not in values]
        item[key] = [value for value in values if value not in remove]
    deltas["catalog_items_updated"] += 1


def _delete(items: dict[str, dict[str, Any]], change: ItemChange, deltas: Counter[str]) -> None:
    found = items.pop(change.item_id, None) is not None
    deltas["catalog_items_deleted" if found else "catalog_items_deleted_missing"] += 1


_APPLY: dict[str, Callable[[dict[str, dict[str, Any]], ItemChange, Counter[str]], None]] = {
    "POST": _post,
    "PUT": _put,
    "PATCH": _patch,
    "DELETE": _delete,
}


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds")
