"""How Braze reads one object of a `/users/track` request.

Each object is checked on its own, outside any lock, and turned into a
`Change`: the user it targets and a list of operations to apply. A refused
object yields the readable reason instead, which becomes the `type` of an
entry in the response's `errors` array (clients must treat it as opaque).

The rules are those of braze-api-notes.md: exactly one primary identifier;
`external_id` a string of at most 987 bytes; standard fields validated
(`email`, `email_subscribe`, `push_subscribe`, `gender`, `dob`, `country`);
`null` removes an attribute; strings over 255 characters are silently not
applied; `{"inc": n}` increments, `{"add": [...], "remove": [...]}` edits an
array, any other object replaces the stored one unless `_merge_objects` asks
for a (shallow) merge. An object with no primary identifier is refused even
when it carries `email` or `phone`: the emulator does not identify by those.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

MAX_EXTERNAL_ID_BYTES = 987
MAX_STRING_CHARS = 255
IDENTIFIER_KEYS = frozenset({"external_id", "braze_id", "user_alias"})
SUBSCRIPTION_STATES = frozenset({"opted_in", "subscribed", "unsubscribed"})
GENDERS = frozenset({"M", "F", "O", "N", "P"})

# (kind, value): kind is "external_id", "braze_id" or "user_alias"; an alias
# value is "<alias_label>\x1f<alias_name>".
Identity = tuple[str, str]

# Operations of a Change (SET ones end up in Change.sets).
SET, UNSET, MERGE, INC, ARRAY = range(5)
Op = tuple[int, str, Any]

NO_IDENTIFIER = "Each object must have exactly one of 'external_id', 'braze_id' or 'user_alias'."
MANY_IDENTIFIERS = (
    "Each object must have exactly one of 'external_id', 'braze_id' or 'user_alias', not several."
)
NOT_AN_OBJECT = "Each element of the array must be a JSON object."

_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
_DOB = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


class _Invalid(Exception):
    pass


@dataclass(slots=True)
class Change:
    """One accepted attributes, event or purchase object, ready to apply."""

    identity: Identity
    update_only: bool
    sets: dict[str, Any]  # plain assignments
    ops: list[Op]  # everything else: UNSET, MERGE, INC, ARRAY
    data_points: int = 0  # attribute keys sent, identifiers and `_` keys excluded
    not_applied: int = 0  # values silently dropped (strings over 255 characters)
    quantity: int = 1  # for events and purchases


def identify(obj: dict[str, Any]) -> Identity | str:
    """The one primary identifier of an object, or the reason it has none."""
    ext, bid, alias = obj.get("external_id"), obj.get("braze_id"), obj.get("user_alias")
    present = (ext is not None) + (bid is not None) + (alias is not None)
    if present != 1:
        return NO_IDENTIFIER if present == 0 else MANY_IDENTIFIERS
    if ext is not None:
        if not isinstance(ext, str) or not ext:
            return "The 'external_id' field must be a non-empty string."
        if len(ext) * 4 > MAX_EXTERNAL_ID_BYTES and len(ext.encode()) > MAX_EXTERNAL_ID_BYTES:
            return f"The 'external_id' field must be at most {MAX_EXTERNAL_ID_BYTES} bytes."
        return ("external_id", ext)
    if bid is not None:
        if not isinstance(bid, str) or not bid:
            return "The 'braze_id' field must be a non-empty string."
        return ("braze_id", bid)
    if (
        isinstance(alias, dict)
        and isinstance(alias.get("alias_name"), str)
        and isinstance(alias.get("alias_label"), str)
    ):
        return ("user_alias", f"{alias['alias_label']}\x1f{alias['alias_name']}")
    return "The 'user_alias' field must be an object with string 'alias_name' and 'alias_label'."


def _update_only(obj: dict[str, Any], identity: Identity) -> bool | str:
    # Braze: upsert by default for external_id; user_alias defaults to update-only;
    # a braze_id can never create a user whatever the flag says.
    flag = obj.get("_update_existing_only")
    if flag is None:
        return identity[0] != "external_id"
    if not isinstance(flag, bool):
        return "The '_update_existing_only' field must be a boolean."
    return flag or identity[0] == "braze_id"


def _whose(obj: Any) -> tuple[Any, bool] | str:
    """(identity, update-only) of any track object, or why it is refused."""
    if not isinstance(obj, dict):
        return NOT_AN_OBJECT
    identity = identify(obj)
    if isinstance(identity, str):
        return identity
    update_only = _update_only(obj, identity)
    if isinstance(update_only, str):
        return update_only
    return identity, update_only


def prepare_attributes(obj: Any) -> Change | str:
    whose = _whose(obj)
    if isinstance(whose, str):
        return whose
    identity, update_only = whose
    merge = obj.get("_merge_objects", False)
    if not isinstance(merge, bool):
        return "The '_merge_objects' field must be a boolean."
    # The hot loop of the emulator: exact type checks (values come from
    # json.loads) and plain sets gathered in a dict applied with one update().
    sets: dict[str, Any] = {}
    ops: list[Op] = []
    data_points = not_applied = 0
    checks = _STANDARD_CHECKS
    for key, value in obj.items():
        if key in IDENTIFIER_KEYS or key[:1] == "_":
            continue
        data_points += 1
        if value is not None and key in checks:
            try:
                value = checks[key](value)
            except _Invalid as exc:
                return str(exc)
        kind = type(value)
        if kind is str:
            if len(value) > MAX_STRING_CHARS:
                not_applied += 1
            else:
                sets[key] = value
        elif value is None:
            ops.append((UNSET, key, None))
        elif kind is dict:
            op = _object_op(key, value, merge)
            if op[0] == SET:
                sets[key] = value
            else:
                ops.append(op)
        else:
            sets[key] = value
    return Change(identity, update_only, sets, ops, data_points, not_applied)


def _object_op(key: str, value: dict[str, Any], merge: bool) -> Op:
    if len(value) == 1 and "inc" in value:
        amount = value["inc"]
        if isinstance(amount, (int, float)) and not isinstance(amount, bool):
            return (INC, key, amount)
    elif value and value.keys() <= {"add", "remove"} and all(isinstance(v, list) for v in value.values()):
        return (ARRAY, key, (value.get("add", []), value.get("remove", [])))
    return (MERGE if merge else SET, key, value)


def prepare_event(obj: Any) -> Change | str:
    return _prepare_occurrence(obj, _EVENT_FIELDS)


def prepare_purchase(obj: Any) -> Change | str:
    change = _prepare_occurrence(obj, _PURCHASE_FIELDS)
    if isinstance(change, Change):
        quantity = obj.get("quantity", 1)
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
            return "The 'quantity' field must be a positive integer."
        change.quantity = quantity
    return change


_EVENT_FIELDS: dict[str, tuple[type, ...]] = {"name": (str,), "time": (str,)}
_PURCHASE_FIELDS: dict[str, tuple[type, ...]] = {
    "product_id": (str,),
    "currency": (str,),
    "price": (int, float),
    "time": (str,),
}


def _prepare_occurrence(obj: Any, required: dict[str, tuple[type, ...]]) -> Change | str:
    whose = _whose(obj)
    if isinstance(whose, str):
        return whose
    identity, update_only = whose
    for name, types in required.items():
        value = obj.get(name)
        if not isinstance(value, types) or isinstance(value, bool) or value == "":
            return f"The '{name}' field is required and must be a {types[0].__name__}."
    return Change(identity, update_only, {}, [])


def _email(value: Any) -> Any:
    if not isinstance(value, str) or not _EMAIL.fullmatch(value):
        raise _Invalid("The value provided for the 'email' field is not a valid email.")
    return value


def _subscription(field: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value not in SUBSCRIPTION_STATES:
            raise _Invalid(
                f"The value provided for the '{field}' field is not valid: "
                "expected opted_in, subscribed or unsubscribed."
            )
        return value

    return check


def _gender(value: Any) -> Any:
    if not isinstance(value, str) or value.upper() not in GENDERS:
        raise _Invalid("The value provided for the 'gender' field is not valid: expected M, F, O, N or P.")
    return value.upper()


def _dob(value: Any) -> Any:
    match = _DOB.fullmatch(value) if isinstance(value, str) else None
    try:
        if match is None:
            raise ValueError(value)
        date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise _Invalid("The value provided for the 'dob' field is not a valid date (YYYY-MM-DD).") from None
    return value


def _country(value: Any) -> Any:
    # Braze stores an unmappable country as null rather than refusing the object.
    if isinstance(value, str) and len(value) == 2 and value.isascii() and value.isalpha():
        return value.upper()
    return None


_STANDARD_CHECKS: dict[str, Callable[[Any], Any]] = {
    "email": _email,
    "email_subscribe": _subscription("email_subscribe"),
    "push_subscribe": _subscription("push_subscribe"),
    "gender": _gender,
    "dob": _dob,
    "country": _country,
}
