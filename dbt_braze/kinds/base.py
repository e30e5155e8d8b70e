"""The shapes every kind shares: what it gives the engine and what it gets back."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from dbt_braze.config import ModelSync
from dbt_braze.rows import Read, RelationRef, Row, UserAck
from dbt_braze.settings import SyncMode


class LocalRejection(ValueError):
    """A value that must not be sent; the row is recorded as rejected with this reason."""


def check_json_members(members: str) -> None:
    """Raise LocalRejection when an object's members (`"a":1,"b":[NaN]`) are not JSON that
    Braze takes: JSON-typed values may nest NaN or infinities, which no JSON holds."""
    try:
        json.loads("{" + members + "}", parse_constant=_refuse_constant, parse_float=_finite)
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


# The outcome of a Sendable that has nothing to send: acknowledged at once, without a
# request (its only changes are withheld subscribes, or subscription group states forgotten
# with a removed user).
UNSENT = "unsent"


class Sendable(NamedTuple):
    """One row's share of a request, ready to send, and what to acknowledge once Braze accepts it."""

    body: bytes
    ack: UserAck
    data_points: int
    outcome: str  # how the report counts it once accepted (ModelReport.count_accepted), or UNSENT
    stamp: str | None = None  # the BUILT_STAMP of a row read from braze_objects__<model>
    refused: str | None = None  # why it must not be sent: recorded as rejected, never sent
    # an event or purchase: recorded in_flight before it is sent, never sent twice; `ack` is
    # then (event_id, row hash, None)
    at_most_once: bool = False
    subscription_changes: int = 0  # group states it sends: no data points
    subscribes_withheld: int = 0  # subscribes it does not send (subscriptions: unsubscribe_only)

    @property
    def key(self) -> str:
        return self.ack[0]


@dataclass(frozen=True)
class Answer:
    """What Braze made of one batch: indexes into the batch, and the requests it took."""

    accepted: list[int]
    rejected: dict[int, str]  # index -> Braze's reason
    requests: int
    unknown: dict[int, str] = field(default_factory=dict)  # index -> why the outcome is unknown
    # what stopped the request (BrazeError), raised once what it settled is recorded
    error: Exception | None = None


class BrazeAccess(Protocol):
    """What the kinds and the engine call on Braze (dbt_braze.braze.BrazeClient)."""

    def check_access(self) -> None: ...
    def track_encoded(self, parts: list[bytes]) -> Any: ...
    def track_events_encoded(self, parts: list[bytes], array: Any) -> Any: ...
    def delete_users(self, ids: list[str], id_field: Any, alias_label: str | None = None) -> Any: ...
    def catalog_items(self, catalog: str, method: Any, parts: list[bytes]) -> Any: ...
    def catalog_fields(self, catalog: str) -> dict[str, str] | None: ...


class Delivery(Protocol):
    """An endpoint and how a batch of Sendables goes to it."""

    @property
    def exclusive(self) -> bool:
        """Irreversible (deletions): sent one request at a time, once everything sent
        before has settled, and never shown as a sample payload."""
        ...

    def batch_size(self, requested: int) -> int:
        """Sendables per request, given the --batch-size asked for."""
        ...

    def send(self, braze: BrazeAccess, batch: list[Sendable]) -> Answer: ...


@dataclass(frozen=True)
class Stream:
    """One read of a kind, and how each of its rows goes to Braze (`prepare`)."""

    read: Read
    prepare: Callable[[Row], Sendable]
    delivery: Delivery


class Kind(Protocol):
    name: str
    at_most_once: bool  # events and purchases: each row sent once at most (contract, "Outcome unknown")

    def streams(self, model: ModelSync, relation: RelationRef, mode: SyncMode) -> Iterator[Stream]:
        """The reads of a sync of `model`, in the order they are sent."""
        ...
