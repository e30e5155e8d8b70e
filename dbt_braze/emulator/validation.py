"""How Braze reads one attributes object of a `/users/track` request, whom
any track object names, and whom a `/users/delete` request names (events and
purchases: events.py).

Each track object is checked on its own, outside any lock, and turned into a
`Change`: the user it targets and a list of operations to apply. A refused
object yields the readable reason instead, which becomes the `type` of an
entry in the response's `errors` array (clients must treat it as opaque).

The rules are those of braze-api-notes.md: at most one primary identifier
(`external_id`, `braze_id`, `user_alias`); without one, a top-level `email`
identifies the user, else a top-level `phone` (with both, the e-mail does and
the phone is an ordinary attribute). `external_id` a string of at most 987
bytes; `user_alias` exactly `{alias_name, alias_label}`, non-empty strings.
Standard fields validated (`email`, `phone`, `email_subscribe`,
`push_subscribe`, `gender`, `dob`, `country`); `subscription_groups` a list of
`{subscription_group_id, subscription_state}` that are kept apart from the
attributes and cost no data point; `null` removes an attribute; strings over
255 characters are silently not applied; `{"inc": n}` increments,
`{"add": [...], "remove": [...]}` edits an array, any other object replaces
the stored one unless `_merge_objects` asks for a (shallow) merge.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

MAX_EXTERNAL_ID_BYTES = 987
MAX_STRING_CHARS = 255
MAX_IDS_PER_DELETE = 50  # /users/delete: of the one identifier type of a request
IDENTIFIER_KEYS = frozenset({"external_id", "braze_id", "user_alias"})
SUBSCRIPTION_STATES = frozenset({"opted_in", "subscribed", "unsubscribed"})  # email/push_subscribe
GROUP_STATES = frozenset({"subscribed", "unsubscribed"})  # subscription groups
GENDERS = frozenset({"M", "F", "O", "N", "P"})
PRIORITIZATIONS = frozenset({"identified", "unidentified", "most_recently_updated", "least_recently_updated"})

# (kind, value): kind is "external_id", "braze_id", "user_alias", "email" or
# "phone"; an alias value is "<alias_label>\x1f<alias_name>", a phone value
# the number without separators (see phone_key).
Identity = tuple[str, str]

# Braze's defaults for `_update_existing_only`: an alias only updates unless
# the object says `false`; a braze_id can never create a user whatever it says.
_UPDATE_ONLY_BY_DEFAULT = frozenset({"braze_id", "user_alias"})
# Keys of an attributes object that are not attributes (nor data points),
# by the kind of identifier of the object; `_` flags aside.
_NOT_ATTRIBUTES = {
    kind: IDENTIFIER_KEYS | {"subscription_groups"} | ({kind} if kind in ("email", "phone") else set())
    for kind in ("external_id", "braze_id", "user_alias", "email", "phone")
}

# Operations of a Change (SET ones end up in Change.sets).
SET, UNSET, MERGE, INC, ARRAY = range(5)
Op = tuple[int, str, Any]

NO_IDENTIFIER = (
    "Each object must have one of 'external_id', 'braze_id' or 'user_alias', or else an 'email' or 'phone'."
)
MANY_IDENTIFIERS = (
    "Each object must have exactly one of 'external_id', 'braze_id' or 'user_alias', not several."
)
NOT_AN_OBJECT = "Each element of the array must be a JSON object."
INVALID_EMAIL = "The value provided for the 'email' field is not a valid email."
INVALID_PHONE = "The value provided for the 'phone' field is not a valid phone number (E.164 recommended)."
INVALID_ALIAS = (
    "The 'user_alias' field must be an object of exactly 'alias_name' and 'alias_label', non-empty strings."
)
INVALID_GROUPS = "The 'subscription_groups' field must be an array of objects."
INVALID_GROUP = (
    "Each subscription group must be an object of 'subscription_group_id' and 'subscription_state' only."
)
INVALID_GROUP_ID = "Each subscription group needs a non-empty string 'subscription_group_id'."
INVALID_GROUP_STATE = "Each subscription group needs a 'subscription_state' of subscribed or unsubscribed."

_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
_PHONE = re.compile(r"\+?[0-9]{7,15}")
_PHONE_SEPARATORS = str.maketrans("", "", " -.()")
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
    data_points: int = 0  # attribute keys sent; identifiers, groups and `_` keys excluded
    not_applied: int = 0  # values silently dropped (strings over 255 characters)
    quantity: int = 1  # for events and purchases
    subscriptions: tuple[tuple[str, str], ...] = ()  # (group id, state), in the order sent
    record: dict[str, Any] | None = None  # an event's or purchase's fields, as stored (events.py)
    arrival: tuple[Any, ...] | None = None  # what two arrivals of one event or purchase share


def phone_key(value: Any) -> str | None:
    """The number a phone value matches by: separators dropped; None if not a number."""
    if not isinstance(value, str):
        return None
    compact = value.translate(_PHONE_SEPARATORS)
    return compact if _PHONE.fullmatch(compact) else None


def alias_key(alias: Any) -> str | None:
    """The index key of a well-formed `{alias_name, alias_label}`, else None."""
    if not isinstance(alias, dict) or alias.keys() != {"alias_name", "alias_label"}:
        return None
    name, label = alias["alias_name"], alias["alias_label"]
    if not isinstance(name, str) or not isinstance(label, str) or not name or not label:
        return None
    return f"{label}\x1f{name}"


def identify(obj: dict[str, Any]) -> Identity | str:
    """The identifier of an object, or the reason it has none."""
    ext, bid, alias = obj.get("external_id"), obj.get("braze_id"), obj.get("user_alias")
    present = (ext is not None) + (bid is not None) + (alias is not None)
    if present > 1:
        return MANY_IDENTIFIERS
    if present == 0:
        return _contact_identity(obj)
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
    key = alias_key(alias)
    return INVALID_ALIAS if key is None else ("user_alias", key)


def _contact_identity(obj: dict[str, Any]) -> Identity | str:
    # Braze: with no primary identifier a top-level email identifies, else a phone;
    # when both are present the email is used.
    email, phone = obj.get("email"), obj.get("phone")
    if email is not None:
        return ("email", email) if isinstance(email, str) and _EMAIL.fullmatch(email) else INVALID_EMAIL
    if phone is not None:
        key = phone_key(phone)
        return INVALID_PHONE if key is None else ("phone", key)
    return NO_IDENTIFIER


def _update_only(obj: dict[str, Any], identity: Identity) -> bool | str:
    flag = obj.get("_update_existing_only")
    if flag is None:
        return identity[0] in _UPDATE_ONLY_BY_DEFAULT
    if not isinstance(flag, bool):
        return "The '_update_existing_only' field must be a boolean."
    return flag or identity[0] == "braze_id"


def whose(obj: Any) -> tuple[Any, bool] | str:
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
    found = whose(obj)
    if isinstance(found, str):
        return found
    identity, update_only = found
    merge = obj.get("_merge_objects", False)
    if not isinstance(merge, bool):
        return "The '_merge_objects' field must be a boolean."
    subscriptions: tuple[tuple[str, str], ...] = ()
    if "subscription_groups" in obj:
        groups = _subscription_groups(obj["subscription_groups"])
        if isinstance(groups, str):
            return groups
        subscriptions = groups
    # The hot loop of the emulator: exact type checks (values come from
    # json.loads) and plain sets gathered in a dict applied with one update().
    sets: dict[str, Any] = {}
    ops: list[Op] = []
    data_points = not_applied = 0
    checks = _STANDARD_CHECKS
    skipped = _NOT_ATTRIBUTES[identity[0]]
    for key, value in obj.items():
        if key in skipped or key[:1] == "_":
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
    return Change(identity, update_only, sets, ops, data_points, not_applied, subscriptions=subscriptions)


def _subscription_groups(value: Any) -> tuple[tuple[str, str], ...] | str:
    if not isinstance(value, list):
        return INVALID_GROUPS
    groups = []
    for group in value:
        if not isinstance(group, dict) or not group.keys() <= {"subscription_group_id", "subscription_state"}:
            return INVALID_GROUP
        group_id, state = group.get("subscription_group_id"), group.get("subscription_state")
        if not isinstance(group_id, str) or not group_id:
            return INVALID_GROUP_ID
        if state not in GROUP_STATES:
            return INVALID_GROUP_STATE
        groups.append((group_id, state))
    return tuple(groups)


def _object_op(key: str, value: dict[str, Any], merge: bool) -> Op:
    if len(value) == 1 and "inc" in value:
        amount = value["inc"]
        if isinstance(amount, (int, float)) and not isinstance(amount, bool):
            return (INC, key, amount)
    elif value and value.keys() <= {"add", "remove"} and all(isinstance(v, list) for v in value.values()):
        return (ARRAY, key, (value.get("add", []), value.get("remove", [])))
    return (MERGE if merge else SET, key, value)


def _email(value: Any) -> Any:
    if not isinstance(value, str) or not _EMAIL.fullmatch(value):
        raise _Invalid(INVALID_EMAIL)
    return value


def _phone(value: Any) -> Any:
    # As an attribute a phone is stored as sent; only a non-string is refused.
    if not isinstance(value, str):
        raise _Invalid("The value provided for the 'phone' field must be a string.")
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
    "phone": _phone,
    "email_subscribe": _subscription("email_subscribe"),
    "push_subscribe": _subscription("push_subscribe"),
    "gender": _gender,
    "dob": _dob,
    "country": _country,
}


# -- /users/delete ---------------------------------------------------------

DELETE_KINDS = ("external_ids", "braze_ids", "user_aliases", "email_addresses", "phone_numbers")


@dataclass(frozen=True)
class DeleteTarget:
    """One user named by a delete request; e-mails and phones say which of
    the profiles that share them is meant (see Workspace.delete)."""

    identity: Identity
    prioritization: tuple[str, ...] = ()


def delete_targets(body: dict[str, Any]) -> list[DeleteTarget] | str:
    """The users a /users/delete body names, or why Braze answers it 400."""
    kinds = [kind for kind in DELETE_KINDS if body.get(kind) is not None]
    if len(kinds) != 1:
        return f"Provide exactly one of {', '.join(repr(k) for k in DELETE_KINDS)}."
    kind = kinds[0]
    entries = body[kind]
    if not isinstance(entries, list) or not entries:
        return f"'{kind}' must be a non-empty array."
    if len(entries) > MAX_IDS_PER_DELETE:
        return f"'{kind}' accepts at most {MAX_IDS_PER_DELETE} ids per request, got {len(entries)}."
    targets = []
    for entry in entries:
        target = _delete_target(kind, entry)
        if isinstance(target, str):
            return target
        targets.append(target)
    return targets


def _delete_target(kind: str, entry: Any) -> DeleteTarget | str:
    if kind in ("external_ids", "braze_ids"):
        if not isinstance(entry, str) or not entry:
            return f"'{kind}' must be an array of non-empty strings."
        return DeleteTarget(("external_id" if kind == "external_ids" else "braze_id", entry))
    if kind == "user_aliases":
        key = alias_key(entry)
        return INVALID_ALIAS if key is None else DeleteTarget(("user_alias", key))
    field = "email" if kind == "email_addresses" else "phone"
    if not isinstance(entry, dict) or entry.keys() != {field, "prioritization"}:
        return f"Each element of '{kind}' must be an object of '{field}' and 'prioritization'."
    value = entry[field]
    if field == "email":
        key = value if isinstance(value, str) and _EMAIL.fullmatch(value) else None
    else:
        key = phone_key(value)
    if key is None:
        return INVALID_EMAIL if field == "email" else INVALID_PHONE
    order = entry["prioritization"]
    if (
        not isinstance(order, list)
        or not order
        or not all(isinstance(rule, str) and rule in PRIORITIZATIONS for rule in order)
        or len(set(order)) != len(order)
        or {"identified", "unidentified"} <= set(order)
    ):
        return (
            "'prioritization' must be an ordered array of distinct values among "
            f"{', '.join(sorted(PRIORITIZATIONS))}, with at most one of identified and unidentified."
        )
    return DeleteTarget((field, key), tuple(order))
