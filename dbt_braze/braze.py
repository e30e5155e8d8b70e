"""The Braze HTTP client: `/users/track` batches of attributes, events or purchases,
`/users/delete` and the catalog item endpoints, with retries.

What the sync engine gets back is per-object: which indexes Braze accepted and which it rejected
(and why). Transient trouble (429, 5xx, timeouts, dropped connections) is retried here with capped,
jittered exponential backoff that honours Braze's rate-limit headers; only when the retry budget
of a request is spent does `BrazeUnavailable` escape. Resending is safe because plain attribute
sets are idempotent (a dropped connection means "outcome unknown", not "failed").

Events and purchases are not: Braze counts each arrival, and has no idempotency key
(braze-api-notes.md, "Semantics that bite"), so `track_events_encoded` sends each at most once.
It retries only what says the request was not applied: an answer 429, 500, 502 or 503, or a
connection that could not be made (refused, unresolved, connect timeout, TLS handshake, proxy:
`TransportNotSent`). Whatever leaves the outcome open is not retried, and every object of that
request is `unknown`, with the reason: a timeout or a connection dropped after the body was
written, a 504 (a gateway gave up waiting; Braze may have applied it), any other 5xx, a 2xx that
is not Braze's JSON, an `errors` entry naming no object of the request. A connection the server
closes just as a kept-alive connection is reused lands here too: safe, if needlessly `unknown`.
A 400/413 refuses a request whole, so splitting it is as safe as for attributes. When the retry
budget runs out, or Braze refuses the key or a request, the call does not raise: its result
carries the error, with what earlier requests of the call settled (accepted, rejected, unknown);
every other object was not applied and stays pending. Raising would lose what an earlier half of
a split delivered, and a delivered event resent is a duplicate.

A 400/413 without a per-object `errors` array (body too large, "Max Input Length Exceeded",
invalid JSON) is not retried as is: the batch is halved until the offending objects are isolated,
so one bad row never blocks its 74 neighbours.

An answer counts only if it is Braze's: a JSON object with a `message`. A 2xx that is not (HTML
from a proxy or captive portal, an empty body), or whose `errors` name objects outside the
request, acknowledges nothing: it is retried like a 5xx. A 400 that is not Braze's (a WAF, a
proxy) fails the request: nothing is recorded as rejected, so the objects stay pending.

Catalog items (`catalog_items`) go in requests of at most 50 to `/catalogs/{name}/items`, paced
by a limiter of their own: those endpoints share a limit (16,000 requests per minute) apart from
`/users/track`'s. A catalog write is idempotent (sent twice, it leaves the same item), so it is
retried like an attribute set; a POST resent after it was applied meets `item-already-exists`,
and those items go again as PUT. One bad item makes Braze refuse the whole request with 400,
naming the offending ids in `parameter_values`: the named items are rejected and the others
resent; when no error names an item of the request, it is halved until each bad item is alone.
The same rule holds: only Braze's answers count.

Every fact about Braze used here is in braze-api-notes.md (from braze-inc/braze-docs,
`_docs/_api/`). The API key never reaches a log line, message or exception: Braze echoes it in
some 401 bodies, so auth-failure bodies are never read, and every response (body, reason phrase,
headers) is scrubbed with `redact` as it is read, before anything else looks at it.
"""

from __future__ import annotations

import importlib.metadata
import ipaddress
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from dbt_braze.errors import (
    BrazeAuthError,
    BrazeError,
    BrazeRequestError,
    BrazeTLSError,
    BrazeUnavailable,
    ConfigError,
    MissingSettingError,
    redact,
)
from dbt_braze.ratelimit import (
    CATALOG_REQUESTS_PER_MINUTE,
    MAX_TRACK_OBJECTS,
    RateLimiter,
    RetryPolicy,
    wait_from_headers,
)
from dbt_braze.transport import (
    MAX_POOL_SIZE,
    Headers,
    Pool,
    RawResponse,
    Transport,
    TransportFailure,
    TransportNotSent,
    TransportTimeout,
    TransportTLSError,
)

__all__ = [
    "AT_MOST_ONCE_ARRAYS", "CATALOG_REQUESTS_PER_MINUTE", "MAX_BODY_BYTES", "MAX_CATALOG_ITEMS",
    "MAX_DELETE_IDS", "MAX_TRACK_OBJECTS", "BrazeClient", "CatalogMethod", "CatalogResult",
    "DeleteResult", "RateLimiter", "RetryPolicy", "TrackResult", "redact"
]  # fmt: skip

log = logging.getLogger(__name__)

# Ids per /users/delete request, one identifier type per request (notes, "Rate limits").
MAX_DELETE_IDS = 50
# Items per catalog item request; more are refused with `request-includes-too-many-items`
# (braze-api-notes.md "Catalogs"; Braze docs `catalog_items/asynchronous/*.md`).
MAX_CATALOG_ITEMS = 50
# Request body cap; larger bodies get 413 or 400 (notes, "POST /users/track").
MAX_BODY_BYTES = 4 * 1024 * 1024
# Connect and read timeouts in seconds. Ours: Braze documents none.
DEFAULT_TIMEOUT = (5.0, 60.0)
DEFAULT_RETRY = RetryPolicy()  # 0.5 s doubling to 30 s, 300 s per request: see RetryPolicy
# How much of a response body goes into an exception message, and of a payload into DEBUG logs.
EXCERPT_CHARS = 200
DEBUG_BODY_CHARS = 10_000

TRACK_PATH = "/users/track"  # no trailing slash: `/users/track/` can fail (notes, "Endpoints")
DELETE_PATH = "/users/delete"
# The key permission each endpoint needs; a key without it gets 403 (notes, "Endpoints and auth").
PERMISSIONS = {
    TRACK_PATH: "users.track",
    DELETE_PATH: "users.delete",
    "/users/export/ids": "users.export.ids",
}
CatalogMethod = Literal["POST", "PATCH", "PUT", "DELETE"]
# The catalog item endpoints, one per method, and `GET /catalogs` (notes, "Catalogs").
CATALOG_PERMISSIONS: dict[str, str] = {
    "POST": "catalogs.add_items",
    "PATCH": "catalogs.update_items",
    "PUT": "catalogs.replace_items",
    "DELETE": "catalogs.delete_items",
}
CATALOGS_PATH = "/catalogs"
CATALOGS_PERMISSION = "catalogs.get"
# Braze's error for a POST of an id the catalog holds (documented for the synchronous create
# endpoint; the emulator answers it for the asynchronous one too, see CATALOG.md).
ITEM_ALREADY_EXISTS = "item-already-exists"
# Pages of `GET /catalogs` followed at most: a workspace holds a few catalogs, and an answer that
# keeps pointing to more pages is not to be followed forever.
MAX_CATALOG_PAGES = 100
# REST endpoints per Braze instance (notes, from Braze docs `_includes/data_centers.md`).
CLUSTER_EXAMPLES = (
    "https://rest.iad-01.braze.com .. https://rest.iad-08.braze.com, "
    "https://rest.us-10.braze.com, https://rest.fra-01.braze.eu, https://rest.fra-02.braze.eu, "
    "https://rest.au-01.braze.com"
)
ENDPOINT_HINT = "BRAZE_REST_ENDPOINT should look like https://rest.iad-01.braze.com"
# The key travels in a header, so plain http:// is allowed only where it never leaves the machine:
# the emulator on a loopback address.
LOOPBACK_NAMES = ("localhost",)
# What the key check sends: a track request that changes nothing. Braze answers 401/403 for a bad
# key or permission, else 400 "Valid data must be provided..." (notes, "POST /users/track").
KEY_CHECK_BODY = b'{"attributes":[]}'

_ID_FIELDS = {"external_id": "external_ids", "braze_id": "braze_ids", "user_alias": "user_aliases"}

# The /users/track arrays whose objects Braze counts each time they arrive, with no idempotency
# key (notes, "Events and purchases in /users/track"): never resent once they may have arrived.
AT_MOST_ONCE_ARRAYS = ("events", "purchases")
TrackArray = Literal["attributes", "events", "purchases"]
# Answers that say Braze did not process the request (contract.md, "Outcome unknown"): retried
# even for events. A 504 is not among them: the gateway gave up waiting, Braze may have applied it.
NOT_APPLIED_STATUSES = frozenset({429, 500, 502, 503})


@dataclass(frozen=True)
class TrackResult:
    """Outcome of one track call; indexes point into the list that was passed.

    `unknown` and `error` are only ever set by `track_events_encoded`: an index is in at most one
    of accepted, rejected and unknown, and one in none of them was not applied (it stays pending;
    `error` says what stopped the call).
    """

    accepted: list[int]
    rejected: dict[int, str]  # index -> Braze's reason, opaque text
    requests: int  # HTTP requests made, retries and splits included
    unknown: dict[int, str] = field(default_factory=dict)  # index -> why the outcome is unknown
    error: BrazeError | None = None


@dataclass(frozen=True)
class DeleteResult:
    deleted: list[str]
    requests: int


@dataclass(frozen=True)
class CatalogResult:
    """Outcome of one `catalog_items` call; indexes point into the parts that were passed.

    An index is in at most one of accepted and rejected; one in neither was not applied (it
    stays pending; `error` says what stopped the call). `replaced` lists the accepted POST
    items that already existed in Braze and were sent as PUT instead.
    """

    accepted: list[int]  # Braze answered 202 for them
    rejected: dict[int, str]  # index -> Braze's reason, "<error id>: <message>"
    requests: int  # HTTP requests made, retries, splits and PUT fallbacks included
    replaced: list[int]
    error: BrazeError | None = None  # what stopped the call (auth, 404, retries spent)


def _redact_json(value: Any, secret: str) -> Any:
    """A parsed JSON value with the secret masked in every string, keys included."""
    if isinstance(value, str):
        return redact(value, secret)
    if isinstance(value, list):
        return [_redact_json(item, secret) for item in value]
    if isinstance(value, dict):
        return {redact(str(k), secret): _redact_json(v, secret) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class _Reply:
    """A non-transient response, read once (bodies may be HTML or empty: never assume JSON)."""

    status: int
    reason: str
    headers: Mapping[str, str]
    text: str
    data: dict[str, Any] | None
    attempts: int

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def from_braze(self) -> bool:
        """Braze answers every API call with a JSON object holding a `message` (notes, "POST
        /users/track"); HTML from a proxy, an empty body or other JSON is somebody else's."""
        return self.data is not None and isinstance(self.data.get("message"), str)


@dataclass(frozen=True)
class _Transient:
    """A failed attempt: what went wrong, how long to wait before another, and whether the
    request may have been applied (then an event must not be sent again)."""

    why: str
    wait: float
    maybe_applied: bool


class _OutcomeUnknown(Exception):
    """An at-most-once request may have been applied: it is not retried."""

    def __init__(self, why: str, attempts: int) -> None:
        super().__init__(why)
        self.reason = f"outcome unknown ({why}): Braze may have applied the request, so it was not resent"
        self.attempts = attempts


@dataclass(frozen=True)
class _Route:
    """Where a request goes, the key permission it needs and the limiter that paces it."""

    method: str
    path: str
    permission: str
    limiter: RateLimiter


@dataclass
class _CatalogTally:
    parts: list[bytes]
    accepted: list[int] = field(default_factory=list)
    rejected: dict[int, str] = field(default_factory=dict)
    replaced: list[int] = field(default_factory=list)
    requests: int = 0
    ids: dict[int, str | None] = field(default_factory=dict)

    def item_id(self, index: int) -> str | None:
        """The id of item `index`, read from its part only when an error must be matched to it."""
        if index not in self.ids:
            self.ids[index] = _item_id(self.parts[index])
        return self.ids[index]

    def result(self, error: BrazeError | None = None) -> CatalogResult:
        return CatalogResult(
            sorted(self.accepted),
            dict(sorted(self.rejected.items())),
            self.requests,
            sorted(self.replaced),
            error,
        )


@dataclass
class _Tally:
    accepted: list[int] = field(default_factory=list)
    rejected: dict[int, str] = field(default_factory=dict)
    unknown: dict[int, str] = field(default_factory=dict)
    requests: int = 0

    def result(self, error: BrazeError | None = None) -> TrackResult:
        return TrackResult(
            sorted(self.accepted),
            dict(sorted(self.rejected.items())),
            self.requests,
            dict(sorted(self.unknown.items())),
            error,
        )


class BrazeClient:
    """Talks to one Braze REST endpoint with one API key; safe to share between threads.

    Its threads share one urllib3 pool of keep-alive connections (dbt_braze.transport), made
    from the environment (proxy, CA bundle) with `pool_size` connections unless `pool` is given:
    the unit tests pass a scripted one. `sleep` and `clock` (monotonic) time the retries;
    `wall_clock` (epoch) reads `X-RateLimit-Reset` and HTTP-date `Retry-After` values.

    `limiter` paces /users/track and /users/delete; `catalog_limiter` the catalog item endpoints,
    whose limit is their own (CATALOG_REQUESTS_PER_MINUTE by default). `GET /catalogs` is paced
    by neither: a sync reads it once, and a 429 there holds only its own requests.
    """

    def __init__(
        self,
        endpoint: str,
        api_key: str,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY,
        limiter: RateLimiter | None = None,
        catalog_limiter: RateLimiter | None = None,
        max_objects: int = MAX_TRACK_OBJECTS,
        pool: Pool | None = None,
        pool_size: int = MAX_POOL_SIZE,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._endpoint = _normalise_endpoint(endpoint)
        self._api_key = _check_api_key(api_key)
        if not 1 <= max_objects <= MAX_TRACK_OBJECTS:
            raise ValueError(f"max_objects must be 1..{MAX_TRACK_OBJECTS}, got {max_objects}")
        self._timeout = timeout
        self._retry = retry
        self._limiter = limiter if limiter is not None else RateLimiter(None, clock=clock, sleep=sleep)
        self._catalog_limiter = (
            catalog_limiter
            if catalog_limiter is not None
            else RateLimiter(CATALOG_REQUESTS_PER_MINUTE / 60, clock=clock, sleep=sleep)
        )
        self._track_route = _Route("POST", TRACK_PATH, PERMISSIONS[TRACK_PATH], self._limiter)
        self._delete_route = _Route("POST", DELETE_PATH, PERMISSIONS[DELETE_PATH], self._limiter)
        self._catalogs_route = _Route(
            "GET", CATALOGS_PATH, CATALOGS_PERMISSION, RateLimiter(None, clock=clock, sleep=sleep)
        )
        self._max_objects = max_objects
        self._sleep = sleep
        self._clock = clock
        self._wall_clock = wall_clock
        self._headers = {
            "Authorization": f"Bearer {self._api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"dbt-braze/{_version()}",
        }
        self._transport = Transport(self._endpoint, self._headers, timeout, pool_size=pool_size, pool=pool)
        self._closed = False
        self._warned_split = False
        self._check_lock = threading.Lock()
        self._check_outcome: bool | BrazeError | None = None

    @property
    def endpoint(self) -> str:
        return self._endpoint

    def __enter__(self) -> BrazeClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every connection. The client cannot be used afterwards."""
        self._closed = True
        self._transport.close()

    # -- /users/track -------------------------------------------------------------------------

    def track_attributes(self, objects: list[dict[str, Any]]) -> TrackResult:
        """Send up to `max_objects` attribute objects in one request (more if Braze needs a split).

        Raises ValueError for more than `max_objects` objects (the caller batches) or an object
        that is not valid JSON (NaN, Infinity, unserialisable types): that is a payload bug, and
        nothing is sent.
        """
        return self.track_encoded([_encode_object(i, obj) for i, obj in enumerate(objects)])

    def track_encoded(self, parts: list[bytes]) -> TrackResult:
        """`track_attributes` for objects already encoded as JSON (the sync's objects are
        rendered by the warehouse, macros/json.sql): each part is one object."""
        tally = _Tally()
        self._track_all("attributes", parts, tally)
        return tally.result()

    def track_events_encoded(self, parts: list[bytes], array: Literal["events", "purchases"]) -> TrackResult:
        """Send up to `max_objects` encoded event or purchase objects in the `array` of one
        request (more if Braze needs a split), each at most once (see the module's docstring).

        The result gives each index accepted, rejected (Braze's reason) or unknown (why); an
        index in none of them was not applied. A Braze error (retry budget spent, key or request
        refused) does not raise: it is the result's `error`, and the caller raises it once it has
        recorded what was settled. Raises ValueError, as `track_attributes` does, for too many
        objects or another array: nothing is sent.
        """
        if array not in AT_MOST_ONCE_ARRAYS:
            raise ValueError(f"array must be one of {AT_MOST_ONCE_ARRAYS}, got {array!r}")
        tally = _Tally()
        try:
            self._track_all(array, parts, tally)
        except BrazeError as exc:
            return tally.result(exc)
        return tally.result()

    def _track_all(self, array: TrackArray, parts: list[bytes], tally: _Tally) -> None:
        if len(parts) > self._max_objects:
            raise ValueError(f"{len(parts)} objects > max_objects={self._max_objects}")
        if parts:
            self._track(array, list(range(len(parts))), parts, tally)

    def _track(self, array: TrackArray, indexes: list[int], parts: list[bytes], tally: _Tally) -> None:
        body = b'{"' + array.encode() + b'":[' + b",".join(parts[i] for i in indexes) + b"]}"
        if len(body) > MAX_BODY_BYTES:
            if len(indexes) == 1:
                tally.rejected[indexes[0]] = (
                    f"object is {len(body)} bytes; Braze refuses request bodies over {MAX_BODY_BYTES} bytes"
                )
                return
            log.debug(
                "%d objects make %d bytes, over %d: splitting",
                len(indexes),
                len(body),
                MAX_BODY_BYTES,
            )
            self._split(array, indexes, parts, tally)
            return

        count = len(indexes)
        try:
            reply = self._send(
                self._track_route,
                body,
                f"{count} {array} objects",
                unknown=lambda r: _unknown_outcome(r, count, array),
                once=array in AT_MOST_ONCE_ARRAYS,
            )
        except _OutcomeUnknown as exc:
            tally.requests += exc.attempts
            tally.unknown.update(dict.fromkeys(indexes, exc.reason))
            return
        tally.requests += reply.attempts
        reasons = _object_errors(reply.data, count, array)
        if reply.ok:
            for local, index in enumerate(indexes):
                if local in reasons:
                    tally.rejected[index] = reasons[local]
                else:
                    tally.accepted.append(index)
            return
        if reply.status not in (400, 413):
            raise self._request_error(self._track_route, reply)
        from_braze = reply.from_braze and not _errors_outside(reply.data, count, array)
        if not from_braze and (reply.status == 400 or len(indexes) == 1):
            # A WAF or proxy refused the request, not Braze: nothing says an object is at fault,
            # so nothing is recorded as rejected and every object stays pending. (A 413 is about
            # the body's size whoever measured it: halving it is safe, recording is not.)
            raise self._not_braze_error(self._track_route, reply)

        message = self._message(reply)
        if reply.status == 400 and reasons:
            # Braze answers 400 only when no object was valid: the unnamed ones are refused too.
            for local, index in enumerate(indexes):
                tally.rejected[index] = reasons.get(local, message)
            return
        if len(indexes) == 1:
            tally.rejected[indexes[0]] = message
            return
        if not self._warned_split:
            self._warned_split = True
            log.warning(
                "Braze refused a batch of %d objects with %d (%s); splitting it to isolate the "
                "objects at fault. If this repeats for every batch, lower the batch size.",
                len(indexes),
                reply.status,
                message,
            )
        self._split(array, indexes, parts, tally)

    def _split(self, array: TrackArray, indexes: list[int], parts: list[bytes], tally: _Tally) -> None:
        # Only for a request Braze refused whole, or never got: nothing of it was applied.
        middle = len(indexes) // 2
        self._track(array, indexes[:middle], parts, tally)
        self._track(array, indexes[middle:], parts, tally)

    # -- the key check ------------------------------------------------------------------------

    def check_access(self) -> None:
        """Prove the key and the endpoint with a track request that changes nothing.

        Braze answers 401/403 for a bad key or a missing permission (raised as BrazeAuthError),
        else a JSON 400 "Valid data must be provided..." or a 2xx: the key works. Transient
        answers are retried like any request; any other answer raises BrazeRequestError, and an
        answer that is not Braze's JSON fails at once (a proxy or a wrong URL does not go away).
        Checked once per client: later calls repeat the first outcome.
        """
        with self._check_lock:
            if self._check_outcome is None:
                try:
                    self._check_access()
                    self._check_outcome = True
                except BrazeError as exc:
                    self._check_outcome = exc
            if isinstance(self._check_outcome, BrazeError):
                raise self._check_outcome

    def _check_access(self) -> None:
        reply = self._send(self._track_route, KEY_CHECK_BODY, "key check")
        if reply.from_braze and (reply.ok or reply.status == 400):
            return
        if reply.from_braze or reply.status == 404 or 300 <= reply.status < 400:
            raise self._request_error(self._track_route, reply)
        raise self._not_braze_error(self._track_route, reply)

    # -- /users/delete ------------------------------------------------------------------------

    def delete_users(
        self,
        ids: list[str],
        id_field: Literal["external_id", "braze_id", "user_alias"],
        alias_label: str | None = None,
    ) -> DeleteResult:
        """Delete users, at most MAX_DELETE_IDS per request. Irreversible.

        `ids` are external ids, Braze ids or, with `user_alias`, alias names, all of the one
        `alias_label`. Deleting by e-mail or phone is not offered: several profiles may share
        one, so a deletion by it can reach another profile (contract, "Identifiers").

        A chunk Braze answers with 2xx counts as deleted whole (ids of users that did not exist
        are gone all the same). An exception on a later chunk loses the earlier chunks' result;
        deleting again is harmless, so a caller that needs exact bookkeeping passes <= 50 ids.
        """
        key = _ID_FIELDS.get(id_field)
        if key is None:
            raise ValueError(f"id_field must be one of {sorted(_ID_FIELDS)}, got {id_field!r}")
        if (id_field == "user_alias") != bool(alias_label):
            raise ValueError("alias_label is required with id_field user_alias, and only with it")
        deleted: list[str] = []
        requests_made = 0
        for start in range(0, len(ids), MAX_DELETE_IDS):
            chunk = list(ids[start : start + MAX_DELETE_IDS])
            named: list[Any] = (
                [{"alias_name": name, "alias_label": alias_label} for name in chunk] if alias_label else chunk
            )
            body = json.dumps({key: named}, separators=(",", ":"), ensure_ascii=False)
            reply = self._send(
                self._delete_route, body.encode("utf-8"), f"{len(chunk)} {key}", unknown=_unknown_outcome
            )
            requests_made += reply.attempts
            if not reply.ok:
                raise self._request_error(self._delete_route, reply)
            count = reply.data.get("deleted") if reply.data else None
            log.debug("Braze deleted %s of %d users (the rest did not exist)", count, len(chunk))
            deleted.extend(chunk)
        return DeleteResult(deleted, requests_made)

    # -- catalogs -----------------------------------------------------------------------------

    def catalog_items(self, catalog: str, method: CatalogMethod, parts: list[bytes]) -> CatalogResult:
        """Create (POST), update (PATCH), replace (PUT) or delete (DELETE) items of `catalog`.

        `parts`: each one item object encoded as JSON, id included (`b'{"id":"sku-1","price":3.5}'`;
        for DELETE `b'{"id":"sku-1"}'`), sent as they are in requests of at most
        MAX_CATALOG_ITEMS. The result gives each index accepted or rejected (Braze's reason); a
        POST item that already existed goes again as PUT and is listed in `replaced` too. A
        Braze error (retry budget spent, key refused, no such catalog) does not raise: it is the
        result's `error`, and what earlier requests settled stands. Thread-safe: the engine sends
        several batches at once. Raises ValueError for another method or an empty catalog name.
        """
        if method not in CATALOG_PERMISSIONS:
            raise ValueError(f"method must be one of {sorted(CATALOG_PERMISSIONS)}, got {method!r}")
        if not catalog:
            raise ValueError("the catalog name is empty")
        tally = _CatalogTally(parts)
        try:
            for start in range(0, len(parts), MAX_CATALOG_ITEMS):
                indexes = list(range(start, min(start + MAX_CATALOG_ITEMS, len(parts))))
                self._catalog_request(catalog, method, indexes, tally, replacing=False)
        except BrazeError as exc:
            return tally.result(exc)
        return tally.result()

    def _catalog_request(
        self, catalog: str, method: str, indexes: list[int], tally: _CatalogTally, *, replacing: bool
    ) -> None:
        """Send the items `indexes` in one request, and settle each of them (or raise)."""
        route = _Route(
            method,
            f"/catalogs/{quote(catalog, safe='')}/items",
            CATALOG_PERMISSIONS[method],
            self._catalog_limiter,
        )
        body = b'{"items":[' + b",".join(tally.parts[i] for i in indexes) + b"]}"
        reply = self._send(
            route, body, f"{len(indexes)} items of catalog {catalog}", unknown=_unknown_outcome
        )
        tally.requests += reply.attempts
        if reply.ok:  # Braze's JSON: `unknown` retried anything else
            tally.accepted.extend(indexes)
            if replacing:
                tally.replaced.extend(indexes)
            return
        if reply.status == 404:
            raise self._catalog_missing(catalog, route, reply)
        if reply.status not in (400, 413):
            raise self._request_error(route, reply)
        if not reply.from_braze and (reply.status == 400 or len(indexes) == 1):
            # A WAF or proxy refused the request, not Braze: no item is at fault (see _track).
            raise self._not_braze_error(route, reply)

        errors = _catalog_errors(reply.data) if reply.from_braze else []
        named, existing = self._named_items(errors, method, indexes, tally)
        if named or existing:
            # Braze applied nothing of the request: settle the named items, send the rest again.
            tally.rejected.update(named)
            rest = [i for i in indexes if i not in named and i not in existing]
            again = [i for i in indexes if i in existing and i not in named]
            if rest:
                self._catalog_request(catalog, method, rest, tally, replacing=replacing)
            if again:
                log.info(
                    "%d items of catalog %s already existed in Braze: replacing them", len(again), catalog
                )
                self._catalog_request(catalog, "PUT", again, tally, replacing=True)
            return
        reason = "; ".join(f"{code}: {message}" for code, message, _ in errors) or self._message(reply)
        if len(indexes) == 1:
            tally.rejected[indexes[0]] = self._clip(reason, EXCERPT_CHARS)
            return
        if not self._warned_split:
            self._warned_split = True
            log.warning(
                "Braze refused %d items of catalog %s with %d (%s) without naming them; splitting "
                "the request to isolate the items at fault.",
                len(indexes),
                catalog,
                reply.status,
                self._clip(reason, EXCERPT_CHARS),
            )
        middle = len(indexes) // 2
        self._catalog_request(catalog, method, indexes[:middle], tally, replacing=replacing)
        self._catalog_request(catalog, method, indexes[middle:], tally, replacing=replacing)

    def _named_items(
        self, errors: list[tuple[str, str, list[str]]], method: str, indexes: list[int], tally: _CatalogTally
    ) -> tuple[dict[int, str], set[int]]:
        """The items of the request Braze's `errors` name by id: index -> reason for the refused
        ones, and the POST items refused only because they already exist."""
        by_id: dict[str, list[int]] = {}
        for index in indexes:
            item_id = tally.item_id(index)
            if item_id is not None:
                by_id.setdefault(item_id, []).append(index)
        named: dict[int, str] = {}
        existing: set[int] = set()
        for code, message, values in errors:
            hits = [index for value in dict.fromkeys(values) for index in by_id.get(value, ())]
            if code == ITEM_ALREADY_EXISTS and method == "POST":
                existing.update(hits)
                continue
            reason = self._clip(f"{code}: {message}", EXCERPT_CHARS)
            for index in hits:
                named[index] = f"{named[index]}; {reason}" if index in named else reason
        return named, existing

    def catalog_fields(self, catalog: str) -> dict[str, str] | None:
        """{field name: type} of `catalog`, `id` included, from `GET /catalogs`; None when the
        workspace has no catalog of that name. Follows the next page while the answer gives one
        (a `Link` header with rel="next", or a `next_cursor`). Raises BrazeError."""
        route = self._catalogs_route
        seen: set[str] = set()
        for _page in range(MAX_CATALOG_PAGES):
            reply = self._send(route, None, "list catalogs", unknown=_unknown_catalogs)
            if not reply.ok:
                if reply.from_braze or reply.status == 404 or 300 <= reply.status < 400:
                    raise self._request_error(route, reply)
                raise self._not_braze_error(route, reply)
            data = reply.data or {}
            for entry in data.get("catalogs") or ():
                if isinstance(entry, dict) and entry.get("name") == catalog:
                    return _catalog_field_types(entry.get("fields"))
            following = self._next_page(reply)
            if following is None:
                return None
            if following in seen:
                break
            seen.add(following)
            route = replace(route, path=following)
        raise BrazeRequestError(
            f"GET /catalogs at {self._endpoint} kept pointing to further pages "
            f"({len(seen)} followed): stopped",
            status=reply.status,
            hint="report it with the log at DEBUG level",
        )

    def _next_page(self, reply: _Reply) -> str | None:
        """The path of the next page of `GET /catalogs`, or None on the last one. Only a page on
        the configured endpoint is followed: elsewhere, the key would go along."""
        link = _next_link(reply.headers.get("Link", ""))
        if link is None:
            cursor = (reply.data or {}).get("next_cursor")
            return (
                f"{CATALOGS_PATH}?cursor={quote(cursor, safe='')}"
                if isinstance(cursor, str) and cursor
                else None
            )
        if link.startswith(self._endpoint + "/"):
            link = link[len(self._endpoint) :]
        if not link.startswith("/") or link.startswith("//"):
            raise BrazeRequestError(
                f"GET /catalogs at {self._endpoint} gave its next page at another address "
                f"({self._clip(link, EXCERPT_CHARS)}): not followed, the API key would go along",
                status=reply.status,
                hint=f"{ENDPOINT_HINT} ({CLUSTER_EXAMPLES})",
            )
        return link

    # -- one request, with retries ------------------------------------------------------------

    def _send(
        self,
        route: _Route,
        body: bytes | None,
        what: str,
        unknown: Callable[[_Reply], str | None] | None = None,
        *,
        once: bool = False,
    ) -> _Reply:
        """Send until Braze gives a non-transient answer; 401/403 raise, other replies return.

        `unknown` says why a 2xx acknowledges nothing (not Braze's answer): such a reply is
        retried like a 5xx, which is safe because plain attribute sets and deletions are
        idempotent, and so are catalog writes. With `once` (events, purchases) only what was not
        applied is retried; after an attempt that may have been applied, `_OutcomeUnknown` is
        raised instead.
        """
        if self._closed:
            raise RuntimeError("BrazeClient is closed")
        transport = self._transport
        method, path = route.method, route.path
        started = self._clock()
        attempts = 0
        while True:
            route.limiter.acquire()
            attempts += 1
            if log.isEnabledFor(logging.DEBUG):
                payload = self._clip((body or b"").decode("utf-8", "replace"), DEBUG_BODY_CHARS)
                log.debug("%s %s (%s, attempt %d): %s", method, path, what, attempts, payload)
            outcome = self._attempt(transport, route, body, attempts - 1, unknown)
            if isinstance(outcome, _Reply):
                return replace(outcome, attempts=attempts)
            if once and outcome.maybe_applied:
                log.warning("%s %s (%s): %s; outcome unknown, not resent", method, path, what, outcome.why)
                raise _OutcomeUnknown(outcome.why, attempts)
            last, wait = outcome.why, outcome.wait
            elapsed = self._clock() - started
            if elapsed + wait > self._retry.max_elapsed:
                raise BrazeUnavailable(
                    f"Braze unreachable after {attempts} attempts over {elapsed:.0f}s "
                    f"(last: {last}) at {self._endpoint}{path}",
                    hint="nothing undelivered is lost: it stays pending for the next sync. "
                    "Run it again later; if Braze keeps answering 429, lower the sync's "
                    "request rate (other apps share the workspace's limit).",
                )
            level = logging.INFO if last.startswith("429") else logging.WARNING
            log.log(level, "%s %s: %s; retry %d in %.1fs", method, path, last, attempts, wait)
            self._sleep(wait)

    def _attempt(
        self,
        transport: Transport,
        route: _Route,
        body: bytes | None,
        failures: int,
        unknown: Callable[[_Reply], str | None] | None,
    ) -> _Reply | _Transient:
        """One HTTP request: the reply, or what went wrong when it is transient."""
        backoff = self._retry.backoff(failures)
        try:
            response = transport.request(route.method, route.path, body)
        except TransportTimeout as exc:
            return _Transient(f"timeout ({exc})", backoff, maybe_applied=True)
        except TransportTLSError as exc:
            # Not transient: retrying cannot make a certificate valid.
            raise BrazeTLSError(
                f"the TLS certificate of {self._endpoint} failed verification: "
                f"{self._clip(str(exc), EXCERPT_CHARS)}",
                hint="check BRAZE_REST_ENDPOINT; behind a proxy that inspects TLS, point "
                "REQUESTS_CA_BUNDLE at its CA bundle. Nothing was sent.",
            ) from None
        except TransportFailure as exc:
            maybe_applied = not isinstance(exc, TransportNotSent)
            return _Transient(self._clip(str(exc), EXCERPT_CHARS), backoff, maybe_applied)
        status = response.status
        if status in (401, 403):
            raise self._auth_error(route, status)  # never look at the body: it may echo the key
        reply = self._read(response)
        if status != 429 and status < 500:
            why = unknown(reply) if unknown is not None and reply.ok else None
            if why:
                return _Transient(why, backoff, maybe_applied=True)
            if reply.ok:
                route.limiter.on_success()
            return reply
        hinted = wait_from_headers(reply.headers, now=self._wall_clock(), rate_limited=status == 429)
        wait = min(self._retry.max_delay, hinted) if hinted else backoff
        if status == 429:
            route.limiter.on_rate_limited(wait)
        maybe_applied = status not in NOT_APPLIED_STATUSES
        return _Transient(f"{status} {reply.reason}".strip(), wait, maybe_applied)

    def _read(self, response: RawResponse) -> _Reply:
        """The response with the key masked in its body, reason phrase and headers: whatever
        part echoes it, nothing downstream (messages, rejection reasons, logs) can see it."""
        key = self._api_key
        raw = response.body.decode("utf-8", "replace")
        try:
            parsed = _redact_json(json.loads(raw), key) if raw.strip() else None
        except (ValueError, RecursionError):  # not JSON, or nested beyond reason
            parsed = None
        data = parsed if isinstance(parsed, dict) else None
        # JSON is written out again from what was parsed: a key behind \u escapes is masked too
        text = redact(raw, key) if parsed is None else json.dumps(parsed, ensure_ascii=False)
        headers = Headers([(name, redact(value, key)) for name, value in response.headers.items()])
        log.debug("Braze answered %d: %s", response.status, self._clip(text, DEBUG_BODY_CHARS))
        return _Reply(response.status, redact(response.reason, key), headers, text, data, attempts=1)

    # -- messages -----------------------------------------------------------------------------

    def _clip(self, text: str, limit: int) -> str:
        """`text` scrubbed of the key, whitespace collapsed, cut to `limit` characters."""
        flat = " ".join(redact(text, self._api_key).split())
        return flat if len(flat) <= limit else flat[: limit - 3] + "..."

    def _message(self, reply: _Reply) -> str:
        """Braze's `message` field, else a body excerpt, else the status line."""
        message = reply.data.get("message") if reply.data else None
        if isinstance(message, str) and message.strip():
            return self._clip(message, EXCERPT_CHARS)
        return self._clip(reply.text, EXCERPT_CHARS) or f"{reply.status} {reply.reason}".strip()

    def _auth_error(self, route: _Route, status: int) -> BrazeAuthError:
        if status == 401:
            return BrazeAuthError(
                f"Braze refused the API key (401) at {self._endpoint}",
                status=401,
                hint="check BRAZE_API_KEY, and that BRAZE_REST_ENDPOINT is your workspace's "
                "cluster: a key from another cluster is refused with 401. REST endpoints: "
                f"{CLUSTER_EXAMPLES}; yours is shown in the Braze dashboard under "
                "Settings > APIs and Identifiers.",
            )
        permission = route.permission
        return BrazeAuthError(
            f"Braze refused {route.method} {route.path} (403) at {self._endpoint}: the API key lacks the "
            f"`{permission}` permission",
            status=403,
            hint=f"in the Braze dashboard (Settings > APIs and Identifiers), give the key the "
            f"`{permission}` permission, or use a key that has it",
        )

    def _request_error(self, route: _Route, reply: _Reply) -> BrazeRequestError:
        where = f"{route.method} {route.path} at {self._endpoint}"
        if 300 <= reply.status < 400:
            location = self._clip(reply.headers.get("Location", "?"), EXCERPT_CHARS)
            return BrazeRequestError(
                f"Braze redirected {where} ({reply.status}) to {location}",
                status=reply.status,
                hint=f"{ENDPOINT_HINT}: use your cluster's REST endpoint ({CLUSTER_EXAMPLES})",
            )
        hint = (
            f"{ENDPOINT_HINT}: the REST endpoint of your cluster, not the dashboard URL"
            if reply.status == 404
            else "dbt-braze built a request Braze does not accept: please report it with the "
            "log at DEBUG level"
        )
        return BrazeRequestError(
            f"Braze refused {where} with {reply.status} {reply.reason}: {self._message(reply)}",
            status=reply.status,
            hint=hint,
        )

    def _not_braze_error(self, route: _Route, reply: _Reply) -> BrazeRequestError:
        """Something that is not Braze refused the request (a WAF, a proxy, a wrong URL): its
        answer says nothing about our objects, so none is recorded as rejected."""
        excerpt = self._clip(reply.text, EXCERPT_CHARS) or "an empty body"
        return BrazeRequestError(
            f"{route.method} {route.path} at {self._endpoint} was answered "
            + f"{reply.status} {reply.reason}".rstrip()
            + f" but not with Braze's JSON ({excerpt}): nothing was recorded as rejected",
            status=reply.status,
            hint=f"{ENDPOINT_HINT} ({CLUSTER_EXAMPLES}); a proxy, firewall or captive portal "
            "between this machine and Braze may have answered instead. What was not delivered "
            "stays pending.",
        )

    def _catalog_missing(self, catalog: str, route: _Route, reply: _Reply) -> BrazeRequestError:
        return BrazeRequestError(
            f"Braze has no catalog named {catalog!r}: {route.method} {route.path} at "
            f"{self._endpoint} was answered {reply.status} ({self._message(reply)})",
            status=reply.status,
            hint=f"create the catalog {catalog!r} in Braze (Data Settings > Catalogs) with the "
            "fields the model maps, or fix `catalog:` in the model's braze meta block; if Braze's "
            f"answer is not `catalog-not-found`, check BRAZE_REST_ENDPOINT ({ENDPOINT_HINT})",
        )


def _unknown_catalogs(reply: _Reply) -> str | None:
    """Why a 2xx of `GET /catalogs` tells nothing, or None when it holds Braze's list."""
    why = _unknown_outcome(reply)
    if why is None and not isinstance((reply.data or {}).get("catalogs"), list):
        return f"{reply.status} {reply.reason} without a `catalogs` list".strip()
    return why


def _unknown_outcome(reply: _Reply, count: int | None = None, array: str = "attributes") -> str | None:
    """Why a 2xx acknowledges nothing, or None when it is Braze's answer. `count`: the objects
    sent in `array`, when Braze's `errors` may name them."""
    status = f"{reply.status} {reply.reason}".strip()
    if not reply.from_braze:
        return f"{status} whose body is not Braze's JSON (a proxy, a captive portal, a wrong URL?)"
    if count is not None and _errors_outside(reply.data, count, array):
        return f"{status} whose errors name objects outside the request"
    return None


def _errors_outside(data: dict[str, Any] | None, count: int, array: str) -> bool:
    """Whether Braze's `errors` (null or absent is fine) holds an entry that names no object of
    the request: the answer is then not about this request, and acknowledges nothing."""
    errors = data.get("errors") if data else None
    if errors is None:
        return False
    if not isinstance(errors, list):
        return True
    return any(
        not isinstance(entry, dict)
        or entry.get("input_array", array) != array
        or _error_index(entry.get("index"), count) is None
        for entry in errors
    )


def _error_index(index: object, count: int) -> int | None:
    if isinstance(index, str) and index.isdigit():
        index = int(index)
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < count:
        return None
    return index


def _object_errors(data: dict[str, Any] | None, count: int, array: str) -> dict[int, str]:
    """Local index -> reason from Braze's `errors` array for the objects of `array` that were
    sent; tolerates null, absent or malformed."""
    errors = data.get("errors") if data else None
    if not isinstance(errors, list):
        return {}
    reasons: dict[int, str] = {}
    for entry in errors:
        if not isinstance(entry, dict) or entry.get("input_array", array) != array:
            continue
        index = _error_index(entry.get("index"), count)
        if index is None:
            log.debug("ignoring Braze error entry without a usable index: %r", entry)
            continue
        reason = str(entry.get("type") or "rejected by Braze")
        reasons[index] = f"{reasons[index]}; {reason}" if index in reasons else reason
    return reasons


def _catalog_errors(data: dict[str, Any] | None) -> list[tuple[str, str, list[str]]]:
    """(error id, message, parameter values) of each entry of a catalog 400's `errors`;
    tolerates null, absent or malformed."""
    errors = data.get("errors") if data else None
    if not isinstance(errors, list):
        return []
    found = []
    for entry in errors:
        if not isinstance(entry, dict):
            continue
        values = entry.get("parameter_values")
        values = [v for v in values if isinstance(v, str)] if isinstance(values, list) else []
        found.append(
            (str(entry.get("id") or "error"), str(entry.get("message") or "rejected by Braze"), values)
        )
    return found


def _item_id(part: bytes) -> str | None:
    """The `id` of one encoded item, None when it has no string id (Braze names it by none)."""
    try:
        item = json.loads(part)
    except (ValueError, RecursionError):
        return None
    item_id = item.get("id") if isinstance(item, dict) else None
    return item_id if isinstance(item_id, str) else None


def _catalog_field_types(fields: object) -> dict[str, str]:
    """{name: type} from a catalog's `fields` list (`[{"name": "id", "type": "string"}, ..]`)."""
    if not isinstance(fields, list):
        return {}
    return {
        f["name"]: f["type"]
        for f in fields
        if isinstance(f, dict) and isinstance(f.get("name"), str) and isinstance(f.get("type"), str)
    }


def _next_link(header: str) -> str | None:
    """The target of the rel="next" entry of a `Link` header (`<url>; rel="next", ...`)."""
    for entry in header.split(","):
        target, *params = (piece.strip() for piece in entry.split(";"))
        rels: list[str] = []
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "rel":
                rels += value.strip().strip('"').split()  # rel="prev next" names two
        if "next" in rels and target.startswith("<") and target.endswith(">"):
            return target[1:-1].strip()
    return None


def _encode_object(index: int, obj: dict[str, Any]) -> bytes:
    # allow_nan=False: NaN and Infinity are not JSON, and Braze must never see them (notes,
    # "Values"). UTF-8 rather than \u escapes keeps bodies small.
    try:
        return json.dumps(obj, allow_nan=False, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"attributes[{index}] cannot be sent as JSON: {exc}") from exc


def _normalise_endpoint(endpoint: str) -> str:
    url = (endpoint or "").strip().rstrip("/")
    parts = urlsplit(url)
    rule = "it must be an https:// URL (http:// only on a loopback host, e.g. the emulator)"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"invalid Braze REST endpoint {endpoint!r}: {rule}",
            hint=f"{ENDPOINT_HINT} (one of {CLUSTER_EXAMPLES})",
        )
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise ConfigError(
            f"refusing Braze REST endpoint {endpoint!r}: plain http:// would send the API key "
            f"in clear to {parts.hostname}; {rule}",
            hint=f"use https:// ({ENDPOINT_HINT})",
        )
    return url


def _loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or `localhost`: addresses that never leave the machine."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_api_key(api_key: str) -> str:
    key = (api_key or "").strip()
    if not key:
        raise MissingSettingError("the Braze API key is empty", hint="set BRAZE_API_KEY")
    if any(ch.isspace() or not ch.isprintable() for ch in key):
        # http.client would quote the whole header, key included, in its ValueError message.
        raise ConfigError(
            "the Braze API key contains whitespace or control characters",
            hint="copy BRAZE_API_KEY again from the Braze dashboard, without line breaks",
        )
    return key


def _version() -> str:
    try:
        return importlib.metadata.version("dbt-braze")
    except importlib.metadata.PackageNotFoundError:
        return "0"
