"""What crosses the seam between the sync engine and the warehouse store: typed reads,
the columns their rows have, and the shapes of acknowledgements.

Neither side imports the other: the engine names a `Read` (a package macro and the
columns its rows must have), the store runs it and checks the cursor's columns once
per stream, and both read rows by the index constants of a layout defined here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

Row = tuple[Any, ...]

# joins cells of braze_rows_sql and the lists the warehouse renders (ack attributes,
# hashes): the ASCII unit separator, which no attribute name contains
ROW_SEPARATOR = "\x1f"


@dataclass(frozen=True)
class RelationRef:
    """A relation by name, as the manifest gives it."""

    database: str | None
    schema: str
    identifier: str


@dataclass(frozen=True)
class Read:
    """A read of the store: the package macro that renders its query, the macro's
    arguments, and the columns its rows have, in order. A `RelationRef` argument is
    handed to the macro as the relation it names (NotBuiltError when it is missing).
    `whole_model`: the read groups the whole model, not just its pending changes, so
    the store lets the warehouse use its memory for it."""

    macro: str
    columns: tuple[str, ...]
    args: Mapping[str, Any] = field(default_factory=dict)
    whole_model: bool = False


# One row of the objects reads (macros/json.sql, braze_read_objects_sql and
# braze_read_full_refresh_objects_sql): a user's object, rendered in the warehouse.
# The engine keeps the rows as the cursor gives them (a million per first sync)
# and reads their cells by these indexes:
#   KEY                the user's identifier
#   IS_NEW             bool
#   DATA_POINTS        attributes the object sends: each is billed (the identifier and the
#                      subscription group states are not)
#   ATTRIBUTES_JSON    the object's members but the identifier: `"email":"a@b.c","score":3`,
#                      then `"subscription_groups":[...]` when it sends group states; '' when
#                      it sends nothing (its only changes are withheld subscribes)
#   ACK_ATTRIBUTES     ROW_SEPARATOR-joined, in the order of ACK_HASHES
#   ACK_HASHES         ROW_SEPARATOR-joined, '' for a removed value
#   INVALID_ATTRIBUTE  `<attribute>: <reason>` for one value Braze cannot hold
#                      (macros/json.sql, braze_invalid_value_sql), else None
#   NEEDS_CHECK        1: holds JSON-typed values, which may nest NaN or infinities
#   SUBSCRIPTION_CHANGES  subscription group states the object sends
#   SUBSCRIBES_WITHHELD   subscribes not sent (`subscriptions: unsubscribe_only`), acknowledged
#                      with the object all the same (macros/subscriptions.sql)
#   BUILT_STAMP        when braze_objects__<model> was built, as text: the sync acknowledges
#                      from that relation by key while it is unchanged, from this row's lists
#                      once a `dbt run` rebuilt it; None when the read was not from it
#                      (--full-refresh)
OBJECT_COLUMNS = (
    "braze_key",
    "is_new",
    "data_points",
    "attributes_json",
    "ack_attributes",
    "ack_hashes",
    "invalid_attribute",
    "needs_check",
    "subscription_changes",
    "subscribes_withheld",
    "built_stamp",
)
(
    KEY,
    IS_NEW,
    DATA_POINTS,
    ATTRIBUTES_JSON,
    ACK_ATTRIBUTES,
    ACK_HASHES,
    INVALID_ATTRIBUTE,
    NEEDS_CHECK,
    SUBSCRIPTION_CHANGES,
    SUBSCRIBES_WITHHELD,
    BUILT_STAMP,
) = range(len(OBJECT_COLUMNS))

# One row of the removed-users read (braze_read_removed_users_sql): a user the model
# no longer has, and the attributes of it the state holds (ROW_SEPARATOR-joined).
REMOVED_USER_COLUMNS = ("braze_key", "ack_attributes")


# One row of the events read (macros/events.sql, braze_read_events_sql): an event or
# purchase of a model of kind events or purchases, rendered in the warehouse:
#   EVENT_ID        the row's event_id, which names it in braze_events_log
#   USER_KEY        the identifier's value
#   ROW_HASH        the hash of every value sent (a later change is counted, never sent)
#   OBJECT_JSON     the object's members but the identifier: `"time":"...","name":"..."`
#   INVALID_REASON  why Braze must not get it, or None
#   EVENT_NEEDS_CHECK  1: holds JSON properties, which may nest NaN or infinities
EVENT_COLUMNS = ("braze_key", "user_key", "row_hash", "object_json", "invalid_reason", "needs_check")
EVENT_ID, USER_KEY, ROW_HASH, OBJECT_JSON, INVALID_REASON, EVENT_NEEDS_CHECK = range(len(EVENT_COLUMNS))

# One row of braze_events_log as the sync records it: (event_id, row_hash, status, reason);
# status in_flight | delivered | rejected | unknown
EventRecord = tuple[str, str | None, str, str | None]

# (key, ROW_SEPARATOR-joined attributes, their joined hashes or None when removed)
UserAck = tuple[str, str, str | None]
UserRejection = tuple[str, str, str | None, str]


class ObjectAcks(NamedTuple):
    """Users of braze_objects__<model> (read at `stamp`) whose objects Braze accepted, in read
    order: each one's (key, ack_attributes, ack_hashes) as read, what the warehouse records
    for them if the relation was rebuilt since."""

    stamp: str
    users: list[UserAck]

    @property
    def keys(self) -> list[str]:
        return [user[0] for user in self.users]


class IdentifierChange(NamedTuple):
    """A model's identifier changed since its state was recorded when `recorded_elsewhere`
    users are held under another identifier (store.Store.identifier_change)."""

    recorded_elsewhere: int  # users the state holds under another identifier: forgotten, never sent
    sent_whole: int  # the model's users the state does not hold: sent whole, as new


LOGS = ("state", "fingerprints")  # the logs a compaction compacts (macros/compaction.sql)


@dataclass(frozen=True)
class LogSizes:
    """A model's rows and keys in each log (keys: user and attribute; user)."""

    state_rows: int
    state_keys: int
    fingerprint_rows: int
    fingerprint_keys: int

    def due(self, ratio: float) -> list[str]:
        """The logs holding more than `ratio` rows per key (none when `ratio` is 0)."""
        if ratio <= 0:
            return []
        due = []
        if self.state_rows > ratio * self.state_keys:
            due.append("state")
        if self.fingerprint_rows > ratio * self.fingerprint_keys:
            due.append("fingerprints")
        return due

    def due_now(self, state_rows: int, fingerprint_rows: int, ratio: float) -> list[str] | None:
        """The logs due now, judged from their rows now against this count taken earlier,
        without counting keys; None when the rows cannot tell (count the keys again).

        Between compactions a log only grows, and each new key brings a row: so from a
        count of `keys` and `rows`, the keys now lie between `keys` and `keys + (rows now
        - rows)`. A log that lost rows since (compacted by other means) tells nothing."""
        if ratio <= 0:
            return []
        logs = (
            ("state", state_rows, self.state_rows, self.state_keys),
            ("fingerprints", fingerprint_rows, self.fingerprint_rows, self.fingerprint_keys),
        )
        due = []
        for log, rows_now, rows, keys in logs:
            if rows_now < rows:
                return None
            if rows_now <= ratio * keys:
                continue  # not due even with no new key
            if rows_now > ratio * (keys + rows_now - rows):
                due.append(log)  # due even if every new row brought a new key
                continue
            return None
        return due

    def as_json(self) -> dict[str, int]:
        return {
            "state_rows": self.state_rows,
            "state_keys": self.state_keys,
            "fingerprint_rows": self.fingerprint_rows,
            "fingerprint_keys": self.fingerprint_keys,
        }

    def as_run_columns(self) -> dict[str, int]:
        """As braze_sync_runs keeps it for the next sync's trigger (macros/sync.sql)."""
        return {f"log_{name}": count for name, count in self.as_json().items()}
