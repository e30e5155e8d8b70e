"""The emulated workspace: its user profiles.

Profiles are indexed by external_id, braze_id, user alias, e-mail and phone.
Every profile has a braze_id (generated, deterministic, 24 hex digits like
Braze's). A request's objects are validated outside the lock (see
validation.py) and applied under it, so a request is applied atomically with
respect to the inspection methods.

E-mail and phone are attributes like any other, indexed as they change,
and several profiles may share one. An object identified by one of them
(braze-api-notes.md, "Identifiers other than external_id") updates the most
recently updated profile that has an external_id, else the most recently
updated one; with no match it creates an email-only (phone-only) profile
unless it is update-only. Its subscription groups, identified by e-mail,
change every profile with that e-mail. Subscription group states are kept
per profile, apart from the attributes.

Every event and purchase applied to a profile is stored, never deduplicated
(Braze has no key to do it with); the arrivals of accepted ones are
remembered, to count those that arrived more than once.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .counters import Stats
from .events import prepare_event, prepare_purchase
from .validation import (
    ARRAY,
    GROUP_STATES,
    INC,
    MERGE,
    UNSET,
    Change,
    DeleteTarget,
    Op,
    alias_key,
    phone_key,
    prepare_attributes,
)

# Fields that /users/export/ids returns at the top level of a user, not
# under "custom_attributes".
STANDARD_FIELDS = frozenset(
    {
        "first_name", "last_name", "email", "phone", "country", "home_city", "language",
        "gender", "dob", "time_zone", "email_subscribe", "push_subscribe", "bio",
        "image_url", "current_location", "email_open_tracking_disabled",
        "email_click_tracking_disabled", "marked_email_as_spam_at", "date_of_first_session",
        "date_of_last_session", "facebook", "twitter",
    }
)  # fmt: skip


@dataclass
class Profile:
    braze_id: str
    external_id: str | None = None
    alias: str | None = None  # "<alias_label>\x1f<alias_name>"
    attributes: dict[str, Any] = field(default_factory=dict)
    subscriptions: dict[str, str] = field(default_factory=dict)  # group id -> state
    events: int = 0
    purchases: int = 0
    updated: int = 0  # when it last changed, in the workspace's sequence of changes

    @property
    def key(self) -> str:
        return self.external_id if self.external_id is not None else f"braze_id:{self.braze_id}"


@dataclass
class TrackOutcome:
    processed: dict[str, int]  # array name -> accepted objects
    errors: list[dict[str, Any]]


_PREPARE = {
    "attributes": prepare_attributes,
    "events": prepare_event,
    "purchases": prepare_purchase,
}


def _preference(profile: Profile) -> tuple[bool, int]:
    """Which of the profiles sharing an e-mail or phone Braze updates: the
    most recently updated one with an external_id, else the most recent."""
    return (profile.external_id is not None, profile.updated)


class Workspace:
    """The profiles of one Braze workspace."""

    def __init__(self, stats: Stats) -> None:
        self._stats = stats
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._changes = itertools.count(1)  # orders profiles by their last change
        self._by_external: dict[str, Profile] = {}
        self._by_braze: dict[str, Profile] = {}
        self._by_alias: dict[str, Profile] = {}
        # e-mail / phone key -> {braze_id: profile}: several profiles may share one
        self._by_email: dict[str, dict[str, Profile]] = {}
        self._by_phone: dict[str, dict[str, Profile]] = {}
        # array name -> every event (purchase) applied, in order; and every arrival seen
        self._occurrences: dict[str, list[dict[str, Any]]] = {"events": [], "purchases": []}
        self._arrivals: set[tuple[Any, ...]] = set()

    def clear(self) -> None:
        with self._lock:
            for index in (self._by_external, self._by_braze, self._by_alias, self._by_email, self._by_phone):
                index.clear()
            for stored in self._occurrences.values():
                stored.clear()
            self._arrivals.clear()

    # -- /users/track ----------------------------------------------------

    def track(self, arrays: dict[str, list[Any]]) -> TrackOutcome:
        errors: list[dict[str, Any]] = []
        accepted: list[tuple[str, Change]] = []
        processed: dict[str, int] = {}
        for name, objects in arrays.items():
            prepare = _PREPARE[name]
            count = 0
            for index, obj in enumerate(objects):
                change = prepare(obj)
                if isinstance(change, str):
                    errors.append({"type": change, "input_array": name, "index": index})
                else:
                    accepted.append((name, change))
                    count += 1
            processed[name] = count
        subscriptions = [state for _, change in accepted for _, state in change.subscriptions]
        deltas = {
            "objects_received": len(errors) + len(accepted),
            "objects_accepted": len(accepted),
            "objects_rejected": len(errors),
            "attributes_accepted": processed.get("attributes", 0),
            "events_accepted": processed.get("events", 0),
            "purchases_accepted": processed.get("purchases", 0),
            "data_points": sum(change.data_points for _, change in accepted),
            "subscription_changes": len(subscriptions),
            "subscription_subscribes": subscriptions.count("subscribed"),
            "values_not_applied": sum(change.not_applied for _, change in accepted),
            "attributes_unset": 0,
            "users_created": 0,
            "users_ignored_update_only": 0,
            "duplicate_events": 0,
            "duplicate_purchases": 0,
        }
        with self._lock:
            by_external = self._by_external
            for name, change in accepted:
                if change.arrival is not None:
                    self._count_arrival(name, change.arrival, deltas)
                kind, value = change.identity
                profile = by_external.get(value) if kind == "external_id" else None
                if profile is None:
                    profile = self._resolve(change, deltas)
                    if profile is None:
                        deltas["users_ignored_update_only"] += 1
                        continue
                self._apply(name, change, profile, deltas)
        self._stats.bump(deltas)
        return TrackOutcome(processed, errors)

    def _count_arrival(self, name: str, arrival: tuple[Any, ...], deltas: dict[str, int]) -> None:
        # Counted on acceptance, even when update-only mode then ignores the object: what
        # matters is that the client sent it again.
        key = (name, *arrival)
        if key in self._arrivals:
            deltas[f"duplicate_{name}"] += 1
        else:
            self._arrivals.add(key)

    def _apply(self, name: str, change: Change, profile: Profile, deltas: dict[str, int]) -> None:
        attrs = profile.attributes
        contact = (attrs.get("email"), attrs.get("phone"))
        if name == "events":
            profile.events += 1
        elif name == "purchases":
            profile.purchases += change.quantity
        if change.record is not None:
            stored = {"braze_id": profile.braze_id, "external_id": profile.external_id, **change.record}
            self._occurrences[name].append(stored)
        attrs.update(change.sets)
        if change.ops:
            _apply_ops(attrs, change.ops, deltas)
        profile.updated = next(self._changes)
        if change.subscriptions:
            kind, value = change.identity
            # braze-api-notes.md: subscription groups updated by e-mail change every
            # profile with that e-mail, not only the one the attributes went to.
            targets = list(self._by_email[value].values()) if kind == "email" else [profile]
            for target in targets:
                target.subscriptions.update(change.subscriptions)
                target.updated = profile.updated
        if (attrs.get("email"), attrs.get("phone")) != contact:
            self._unindex_contacts(profile, *contact)
            self._index_contacts(profile)

    def _resolve(self, change: Change, deltas: dict[str, int]) -> Profile | None:
        kind, value = change.identity
        if kind == "braze_id":
            return self._by_braze.get(value)
        if kind in ("email", "phone"):
            sharing = (self._by_email if kind == "email" else self._by_phone).get(value)
            if sharing:
                return max(sharing.values(), key=_preference)
        else:
            found = (self._by_external if kind == "external_id" else self._by_alias).get(value)
            if found is not None:
                return found
        if change.update_only:
            return None
        deltas["users_created"] += 1
        if kind == "external_id":
            return self._create(external_id=value)
        if kind == "user_alias":
            return self._create(alias=value)
        return self._create(attributes={kind: value})  # an email-only or phone-only profile

    def _create(
        self,
        *,
        external_id: str | None = None,
        braze_id: str | None = None,
        alias: str | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> Profile:
        if braze_id is None:
            braze_id = f"{0x5E0000000000000000000000 + next(self._ids):024x}"
        profile = Profile(braze_id=braze_id, external_id=external_id, alias=alias)
        profile.attributes.update(attributes or {})
        profile.updated = next(self._changes)
        self._by_braze[braze_id] = profile
        if external_id is not None:
            self._by_external[external_id] = profile
        if alias is not None:
            self._by_alias[alias] = profile
        self._index_contacts(profile)
        return profile

    def _index_contacts(self, profile: Profile) -> None:
        email, phone = profile.attributes.get("email"), phone_key(profile.attributes.get("phone"))
        if isinstance(email, str):
            self._by_email.setdefault(email, {})[profile.braze_id] = profile
        if phone is not None:
            self._by_phone.setdefault(phone, {})[profile.braze_id] = profile

    def _unindex_contacts(self, profile: Profile, email: Any, phone: Any) -> None:
        for index, key in ((self._by_email, email), (self._by_phone, phone_key(phone))):
            if not isinstance(key, str) or key not in index:
                continue
            sharing = index[key]
            sharing.pop(profile.braze_id, None)
            if not sharing:
                del index[key]

    # -- /users/delete and /users/export/ids --------------------------------

    def delete(self, targets: Sequence[DeleteTarget]) -> int:
        """Delete the profiles found; returns how many were found."""
        deleted = 0
        with self._lock:
            for target in targets:
                profile = self._deletable(target)
                if profile is None:
                    continue
                del self._by_braze[profile.braze_id]
                if profile.external_id is not None:
                    del self._by_external[profile.external_id]
                if profile.alias is not None:
                    del self._by_alias[profile.alias]
                attrs = profile.attributes
                self._unindex_contacts(profile, attrs.get("email"), attrs.get("phone"))
                deleted += 1
        self._stats.bump({"users_deleted": deleted})
        return deleted

    def _deletable(self, target: DeleteTarget) -> Profile | None:
        kind, value = target.identity
        if kind in ("email", "phone"):
            sharing = (self._by_email if kind == "email" else self._by_phone).get(value, {})
            return _prioritized(list(sharing.values()), target.prioritization)
        index = {"external_id": self._by_external, "braze_id": self._by_braze}.get(kind, self._by_alias)
        return index.get(value)

    def export(
        self, ids: Sequence[str], fields: Sequence[str] | None
    ) -> tuple[list[dict[str, Any]], list[str]]:
        users: list[dict[str, Any]] = []
        invalid: list[str] = []
        wanted = None if fields is None else set(fields)
        with self._lock:
            for user_id in ids:
                profile = self._by_external.get(user_id)
                if profile is None:
                    invalid.append(user_id)
                else:
                    users.append(_export_user(profile, wanted))
        return users, invalid

    # -- seeding and inspection ---------------------------------------------

    def add_user(
        self,
        external_id: str | None,
        braze_id: str | None,
        attributes: dict[str, Any] | None,
        alias: tuple[str, str] | None,
        subscription_groups: dict[str, str] | None = None,
    ) -> str:
        alias_key = None if alias is None else f"{alias[0]}\x1f{alias[1]}"
        bad_states = {state for state in (subscription_groups or {}).values()} - GROUP_STATES
        if bad_states:
            raise ValueError(f"subscription states {sorted(bad_states)!r}: valid are {sorted(GROUP_STATES)}")
        with self._lock:
            if external_id is not None and external_id in self._by_external:
                raise ValueError(f"a user with external_id {external_id!r} already exists")
            if braze_id is not None and braze_id in self._by_braze:
                raise ValueError(f"a user with braze_id {braze_id!r} already exists")
            if alias_key is not None and alias_key in self._by_alias:
                raise ValueError(f"a user with alias {alias!r} already exists")
            profile = self._create(
                external_id=external_id,
                braze_id=braze_id,
                alias=alias_key,
                attributes=copy.deepcopy(attributes or {}),
            )
            profile.subscriptions.update(subscription_groups or {})
            return profile.braze_id

    def profiles(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {p.key: copy.deepcopy(p.attributes) for p in self._by_braze.values()}

    def profile(self, external_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._by_external.get(external_id)
            return None if found is None else copy.deepcopy(found.attributes)

    def occurrences(self, name: str) -> list[dict[str, Any]]:
        """Every event (`name` "events") or purchase ("purchases") applied, oldest first."""
        with self._lock:
            return copy.deepcopy(self._occurrences[name])

    def braze_id_of(self, external_id: str) -> str | None:
        with self._lock:
            found = self._by_external.get(external_id)
            return None if found is None else found.braze_id

    def users(self, **identifiers: Any) -> list[dict[str, Any]]:
        """Every profile that has all the given identifiers (all profiles when
        none is given), in the order they were created; see `_describe`.

        Keys: external_id, braze_id, email, phone (matched without separators),
        user_alias (`{"alias_name", "alias_label"}`).
        """
        unknown = set(identifiers) - {"external_id", "braze_id", "email", "phone", "user_alias"}
        if unknown:
            raise ValueError(f"unknown identifier(s) {sorted(unknown)}")
        wanted = {key: value for key, value in identifiers.items() if value is not None}
        if "phone" in wanted:
            wanted["phone"] = phone_key(wanted["phone"])
        if "user_alias" in wanted:
            wanted["user_alias"] = alias_key(wanted["user_alias"])
        if None in wanted.values():  # a phone or alias of no valid shape matches nobody
            return []
        with self._lock:
            return [
                _describe(profile)
                for profile in self._by_braze.values()
                if all(_identifier(profile, key) == value for key, value in wanted.items())
            ]


def _apply_ops(attrs: dict[str, Any], ops: list[Op], deltas: dict[str, int]) -> None:
    for op, key, value in ops:
        if op == UNSET:
            attrs.pop(key, None)
            deltas["attributes_unset"] += 1
        elif op == MERGE:
            current = attrs.get(key)
            attrs[key] = {**current, **value} if isinstance(current, dict) else value
        elif op == INC:
            current = attrs.get(key)
            numeric = isinstance(current, (int, float)) and not isinstance(current, bool)
            attrs[key] = (current if numeric else 0) + value
        elif op == ARRAY:
            add, remove = value
            current = attrs.get(key)
            items = list(current) if isinstance(current, list) else []
            items += [item for item in add if item not in items]
            attrs[key] = [item for item in items if item not in remove]


def _export_user(profile: Profile, wanted: set[str] | None) -> dict[str, Any]:
    user: dict[str, Any] = {"braze_id": profile.braze_id}
    if profile.external_id is not None:
        user["external_id"] = profile.external_id
    if profile.alias is not None:
        label, name = profile.alias.split("\x1f", 1)
        user["user_aliases"] = [{"alias_name": name, "alias_label": label}]
    custom: dict[str, Any] = {}
    for key, value in profile.attributes.items():
        if key in STANDARD_FIELDS:
            if wanted is None or key in wanted:
                user[key] = copy.deepcopy(value)
        else:
            custom[key] = copy.deepcopy(value)
    if wanted is None or "custom_attributes" in wanted:
        user["custom_attributes"] = custom
    return user


def _prioritized(sharing: list[Profile], prioritization: Sequence[str]) -> Profile | None:
    """The one profile a delete by e-mail or phone means, or None.

    Each rule narrows the candidates in turn (identified / unidentified is a
    preference: it keeps them all when none qualifies); Braze deletes nothing
    when more than one is left.
    """
    for rule in prioritization:
        if rule == "identified":
            sharing = [p for p in sharing if p.external_id is not None] or sharing
        elif rule == "unidentified":
            sharing = [p for p in sharing if p.external_id is None] or sharing
        elif sharing:
            pick = max if rule == "most_recently_updated" else min
            sharing = [pick(sharing, key=lambda p: p.updated)]
    return sharing[0] if len(sharing) == 1 else None


def _identifier(profile: Profile, kind: str) -> str | None:
    if kind == "external_id":
        return profile.external_id
    if kind == "braze_id":
        return profile.braze_id
    if kind == "user_alias":
        return profile.alias
    if kind == "phone":
        return phone_key(profile.attributes.get("phone"))
    email = profile.attributes.get("email")
    return email if isinstance(email, str) else None


def _describe(profile: Profile) -> dict[str, Any]:
    """A profile for the inspection API: identifiers, attributes, groups."""
    alias = None
    if profile.alias is not None:
        label, name = profile.alias.split("\x1f", 1)
        alias = {"alias_name": name, "alias_label": label}
    return {
        "braze_id": profile.braze_id,
        "external_id": profile.external_id,
        "user_alias": alias,
        "email": profile.attributes.get("email"),
        "phone": profile.attributes.get("phone"),
        "attributes": copy.deepcopy(profile.attributes),
        "subscription_groups": dict(profile.subscriptions),
        "events": profile.events,
        "purchases": profile.purchases,
    }
