"""What a client did: the counters of `BrazeEmulator.stats()` and the users
of the track requests in flight.

Counters (`BrazeEmulator.stats()`), since start or the last reset:

    requests / track_requests   API requests (any path but /_emulator/) / to /users/track
    status_counts               {status: n}; a dropped connection has no status
    objects_sent                objects in every well-formed track request, whatever
                                became of it (faults, 429s and retries included): what
                                the client sent
    objects_received            objects of track requests that reached validation (not
                                those refused whole by auth, limits or injected faults),
                                = objects_accepted + objects_rejected
    attributes|events|purchases_accepted   accepted objects per array
    data_points                 keys of accepted attributes objects, identifiers,
                                `subscription_groups` and `_` keys excluded, counted even
                                when update-only mode ignored the object: Braze bills what
                                was sent
    subscription_changes        subscription group states in accepted attributes objects
                                (never data points), counted like data points
    subscription_subscribes     those of them that subscribe
    attributes_unset            nulls applied (an unmappable `country` included)
    values_not_applied          strings over 255 characters silently dropped
    users_created / users_deleted / users_ignored_update_only
    duplicate_events / duplicate_purchases   accepted events (purchases) that had arrived
                                before: same identifier, fields, properties and instant of
                                `time`; a client that sends each at most once keeps them at 0
    dropped_connections, rate_limited (every 429, scripted ones included)
    max_concurrent_requests     API requests in progress at once, at most
    same_user_overlaps          track requests that arrived while another in-flight
                                track request touched one of their users
    scripted_statuses_remaining
    catalog_requests            requests to /catalogs/{name}/items (any method allowed
                                there, any outcome); catalog_post|patch|put|delete_requests
                                per method; catalog_list_requests to GET /catalogs
    catalog_items_sent          items of every well-formed item request, faults included
    catalog_items_rejected      items of requests refused whole by Braze's rules (400, 404)
    catalog_items_accepted      items of requests applied (answered 202, or dropped after)
    catalog_items_created|updated|replaced|deleted   what they did: created by POST or
                                PUT, updated by PATCH, replaced by PUT, deleted
    catalog_items_patched_missing / catalog_items_deleted_missing   PATCH (DELETE) items
                                whose id the catalog lacks: accepted and ignored

An object ignored because its user does not exist in update-only mode is
*accepted*: Braze queues it and counts it in `attributes_processed`.

Sink mode stores nothing, so `count_sink` counts its data points and
subscription changes from the raw objects.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any

from .validation import IDENTIFIER_KEYS, Identity, identify

COUNTER_NAMES = (
    "requests",
    "track_requests",
    "empty_track_requests",
    "objects_sent",
    "objects_received",
    "objects_accepted",
    "objects_rejected",
    "attributes_accepted",
    "events_accepted",
    "purchases_accepted",
    "data_points",
    "subscription_changes",
    "subscription_subscribes",
    "attributes_unset",
    "values_not_applied",
    "users_created",
    "users_ignored_update_only",
    "users_deleted",
    "duplicate_events",
    "duplicate_purchases",
    "dropped_connections",
    "connections_opened",
    "rate_limited",
    "same_user_overlaps",
    "catalog_requests",
    "catalog_post_requests",
    "catalog_patch_requests",
    "catalog_put_requests",
    "catalog_delete_requests",
    "catalog_list_requests",
    "catalog_items_sent",
    "catalog_items_rejected",
    "catalog_items_accepted",
    "catalog_items_created",
    "catalog_items_updated",
    "catalog_items_replaced",
    "catalog_items_deleted",
    "catalog_items_patched_missing",
    "catalog_items_deleted_missing",
)


class Stats:
    """Thread-safe counters; `bump` takes all of a request's deltas at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._statuses: dict[int, int] = {}
        self._concurrent = 0
        self._max_concurrent = 0
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self._counts = dict.fromkeys(COUNTER_NAMES, 0)
            self._statuses = {}
            self._max_concurrent = self._concurrent

    def bump(self, deltas: dict[str, int]) -> None:
        with self._lock:
            counts = self._counts
            for name, delta in deltas.items():
                counts[name] += delta

    def request_started(self, *, track: bool) -> None:
        with self._lock:
            self._counts["requests"] += 1
            if track:
                self._counts["track_requests"] += 1
            self._concurrent += 1
            if self._concurrent > self._max_concurrent:
                self._max_concurrent = self._concurrent

    def request_finished(self, status: int | None) -> None:
        """`status` None means the connection was dropped without an answer."""
        with self._lock:
            self._concurrent -= 1
            if status is None:
                self._counts["dropped_connections"] += 1
            else:
                self._statuses[status] = self._statuses.get(status, 0) + 1
                if status == 429:
                    self._counts["rate_limited"] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            result: dict[str, Any] = dict(self._counts)
            result["status_counts"] = dict(sorted(self._statuses.items()))
            result["max_concurrent_requests"] = self._max_concurrent
        return result


class InFlight:
    """Which users in-flight track requests touch, to catch same-user overlaps.

    Users are compared by the identifier the request used: an external_id in
    one request and the same user's braze_id in another are not matched.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users: dict[Identity, int] = {}

    def enter(self, users: set[Identity]) -> bool:
        """Register a request's users; True if another request holds one of them."""
        with self._lock:
            held = self._users
            overlap = not held.keys().isdisjoint(users)
            for user in users:
                held[user] = held.get(user, 0) + 1
        return overlap

    def leave(self, users: set[Identity]) -> None:
        with self._lock:
            held = self._users
            for user in users:
                if held[user] <= 1:
                    del held[user]
                else:
                    held[user] -= 1


def users_of(arrays: Iterable[Sequence[Any]]) -> set[Identity]:
    """The identifiers of a track request (cheap; malformed objects skipped)."""
    users: set[Identity] = set()
    for array in arrays:
        for obj in array:
            if not isinstance(obj, dict):
                continue
            ext = obj.get("external_id")
            if isinstance(ext, str):  # the common case, without the full check
                users.add(("external_id", ext))
                continue
            identity = identify(obj)
            if not isinstance(identity, str):
                users.add(identity)
    return users


def count_sink(attributes: Sequence[Any]) -> dict[str, int]:
    """Sink mode: the data points and subscription changes of the attributes
    objects, without validation.

    Only the documented `_` flags, the identifiers and `subscription_groups`
    are discounted, which is exact for any request a client should send.
    """
    points = changes = subscribes = 0
    for obj in attributes:
        if type(obj) is not dict:
            continue
        not_billed = obj.keys() & _NOT_BILLED
        points += len(obj) - len(not_billed)
        if ("email" in obj or "phone" in obj) and not not_billed & IDENTIFIER_KEYS:
            points -= 1  # the e-mail (or else the phone) identifies the user
        groups = obj.get("subscription_groups")
        if type(groups) is list:
            changes += len(groups)
            subscribes += sum(type(g) is dict and g.get("subscription_state") == "subscribed" for g in groups)
    return {"data_points": points, "subscription_changes": changes, "subscription_subscribes": subscribes}


_NOT_BILLED = IDENTIFIER_KEYS | {"_update_existing_only", "_merge_objects", "subscription_groups"}
