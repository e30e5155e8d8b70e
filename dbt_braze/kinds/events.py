"""Kinds `events` and `purchases`: each row of the model, named by its event_id, goes to
`/users/track` at most once, in the request's `events` or `purchases` array.

The warehouse renders each object but its identifier and names what Braze
cannot take (macros/events.sql); this module adds the identifier, refuses
those objects, and sends through `track_events_encoded`, which never retries
a request whose outcome is unclear. The engine records each window of them
`in_flight` before it is sent and each outcome (delivered, rejected, unknown)
once settled, in braze_events_log (the read skips every id the log holds).
`--full-refresh` changes nothing here: an event sent once is never sent again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from dbt_braze.config import ModelSync
from dbt_braze.kinds.addressing import Addressing
from dbt_braze.kinds.base import Answer, BrazeAccess, LocalRejection, Sendable, Stream, check_json_members
from dbt_braze.rows import (
    EVENT_COLUMNS,
    EVENT_ID,
    EVENT_NEEDS_CHECK,
    INVALID_REASON,
    OBJECT_JSON,
    ROW_HASH,
    USER_KEY,
    Read,
    RelationRef,
    Row,
)
from dbt_braze.settings import SyncMode

Array = Literal["events", "purchases"]


@dataclass(frozen=True)
class TrackOnce:
    """`/users/track` event or purchase objects, each sent at most once."""

    array: Array
    exclusive: bool = False

    def batch_size(self, requested: int) -> int:
        return requested

    def send(self, braze: BrazeAccess, batch: list[Sendable]) -> Answer:
        result = braze.track_events_encoded([item.body for item in batch], self.array)
        return Answer(result.accepted, result.rejected, result.requests, result.unknown, result.error)


class Events:
    """Kind `events` or `purchases` (the name is the array the objects go in)."""

    def __init__(self, name: Array) -> None:
        self.name: str = name
        self.array: Array = name
        self.at_most_once = True

    def streams(self, model: ModelSync, relation: RelationRef, mode: SyncMode) -> Iterator[Stream]:
        addressing = Addressing.of(model)
        outcome = "event" if self.name == "events" else "purchase"

        def prepare(row: Row) -> Sendable:
            value = str(row[USER_KEY])
            opening = addressing.opening(value, update_only=model.update_only)
            body = opening + row[OBJECT_JSON].encode() + b"}"
            ack = (str(row[EVENT_ID]), row[ROW_HASH], None)
            sendable = Sendable(body, ack, 1, outcome, at_most_once=True)
            try:
                addressing.check(value)  # an e-mail address or phone number Braze would refuse
                if row[INVALID_REASON]:
                    raise LocalRejection(row[INVALID_REASON])
                if row[EVENT_NEEDS_CHECK]:
                    check_json_members(row[OBJECT_JSON])
            except LocalRejection as exc:
                return sendable._replace(refused=str(exc))
            return sendable

        # --resend-unknown: the rows whose outcome is unknown first, then the new ones as always
        for unknown in (True, False) if mode.resend_unknown else (False,):
            args = {"model_name": model.model_name, "unknown": unknown}
            yield Stream(Read("braze_read_events_sql", EVENT_COLUMNS, args), prepare, TrackOnce(self.array))


EVENTS = Events("events")
PURCHASES = Events("purchases")
