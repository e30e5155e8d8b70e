"""The request pipeline of the emulator, independent of the HTTP plumbing.

`App.handle` takes a `Request` (method, path, two headers, raw body) and
returns a `Reply`; server.py only moves bytes. An API request goes through:

    404 unknown path (a trailing slash included) -> 405 not POST
    -> 401 missing/unknown key (echoing the key, as Braze does)
    -> 403 key lacks the endpoint's permission -> 415 not application/json
    -> 413 body over max_body_bytes -> 400 invalid JSON (NaN/Infinity included)
    -> 400 track request with no object -> scripted status -> rate limit (track only) -> random error_status
    -> request-level checks (400) -> drop before apply -> apply
    -> drop after apply -> 504 after apply -> answer

Latency is slept once per request; for a track request it is slept while
the request's users are registered as in flight, so that two overlapping
requests for one user are seen as such (`same_user_overlaps`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, NamedTuple, cast

from .counters import InFlight, Stats, count_sink, users_of
from .faults import EmulatorConfig, FaultInjector, RateDecision, RateWindow
from .state import TrackOutcome, Workspace
from .validation import delete_targets

logger = logging.getLogger(__name__)

ENDPOINTS = {
    "/users/track": "users.track",
    "/users/delete": "users.delete",
    "/users/export/ids": "users.export.ids",
}
ALL_PERMISSIONS = frozenset(ENDPOINTS.values())
MAX_IDS_PER_REQUEST = 50  # /users/export/ids (/users/delete: validation.MAX_IDS_PER_DELETE)

NO_VALID_DATA = "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields."
TOO_MANY_OBJECTS = "Max Input Length Exceeded"
RATE_LIMITED = "API rate limit exceeded. Retry after the time in X-RateLimit-Reset."
TRACK_ARRAYS = ("attributes", "events", "purchases")
_RATE_KNOBS = {"rate_limit", "rate_window_seconds"}
_CONTROL_POSTS = {"/_emulator/config", "/_emulator/users", "/_emulator/users/find"}
_HTML_ERROR = "<html><head><title>{0} {1}</title></head><body><h1>{0} {1}</h1></body></html>"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    authorization: str | None
    content_type: str | None
    body: bytes | None  # None: larger than max_body_bytes, not kept


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    drop: bool = False  # close the connection without answering


class LoggedRequest(NamedTuple):
    path: str
    body: Any  # the parsed JSON body, None if it did not parse
    status: int  # 0 when the connection was dropped


_ENCODER = json.JSONEncoder(separators=(",", ":"))


def json_reply(status: int, payload: Any, headers: list[tuple[str, str]] | None = None) -> Reply:
    body = _ENCODER.encode(payload).encode()
    return Reply(status, body, headers=headers or [])


def error_reply(status: int, style: str) -> Reply:
    phrase = _phrase(status)
    if style == "html":
        return Reply(status, _HTML_ERROR.format(status, phrase).encode(), "text/html")
    if style == "empty":
        return Reply(status, b"", None)
    return json_reply(status, {"message": phrase})


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _refuse_constant(token: str) -> Any:
    raise ValueError(f"{token} is not valid JSON")


# NaN and Infinity are not JSON, though Python's json reads them by default.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def parse_json(raw: bytes) -> Any:
    """Raises ValueError (UnicodeDecodeError included) or RecursionError."""
    return _DECODER.decode(raw.decode("utf-8"))


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else header.strip()


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    return content_type.split(";", 1)[0].strip().lower() == "application/json"


class _Ctx:
    """Per-request latency, slept at most once."""

    __slots__ = ("delay",)

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def sleep(self) -> None:
        if self.delay > 0:
            time.sleep(self.delay)
            self.delay = 0.0


class App:
    def __init__(
        self,
        api_keys: Mapping[str, Iterable[str]],
        config: EmulatorConfig,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`clock` (epoch seconds) times the rate-limit window and its headers."""
        self._keys = {key: frozenset(perms) for key, perms in api_keys.items()}
        unknown = {p for perms in self._keys.values() for p in perms} - ALL_PERMISSIONS
        if unknown:
            raise ValueError(f"unknown permission(s) {sorted(unknown)}; valid: {sorted(ALL_PERMISSIONS)}")
        self.config = config
        self._config_lock = threading.Lock()
        self.stats = Stats()
        self.workspace = Workspace(self.stats)
        self.inflight = InFlight()
        self.limiter = RateWindow(clock)
        self.faults = FaultInjector(config)
        self.log: deque[LoggedRequest] = deque(maxlen=config.requests_log_size)

    def configure(self, **knobs: Any) -> EmulatorConfig:
        unknown = set(knobs) - EmulatorConfig.knob_names()
        if unknown:
            raise ValueError(
                f"unknown emulator knob(s) {sorted(unknown)}; valid: {sorted(EmulatorConfig.knob_names())}"
            )
        with self._config_lock:
            new = dataclasses.replace(self.config, **knobs)
            self.faults.reconfigure(new, set(knobs))
            if _RATE_KNOBS & set(knobs):
                self.limiter.reset()
            if "requests_log_size" in knobs:
                self.log = deque(self.log, maxlen=new.requests_log_size)
            self.config = new
        return new

    def reset(self) -> None:
        self.workspace.clear()
        self.stats.clear()
        self.limiter.reset()
        self.log.clear()

    def stats_snapshot(self) -> dict[str, Any]:
        result = self.stats.snapshot()
        result["scripted_statuses_remaining"] = self.faults.scripted_remaining()
        return result

    # -- the API ------------------------------------------------------------

    def handle(self, req: Request) -> Reply:
        if req.path.startswith("/_emulator/"):
            return self._inspect(req)
        cfg = self.config
        ctx = _Ctx(self.faults.delay_seconds(cfg))
        self.stats.request_started(track=req.path == "/users/track")
        body: Any = None
        reply = Reply(500)
        try:
            reply, body = self._api(req, cfg, ctx)
            ctx.sleep()
        except Exception:
            logger.exception("emulator bug while handling %s %s", req.method, req.path)
            reply = json_reply(500, {"message": "emulator internal error"})
        finally:
            self.stats.request_finished(None if reply.drop else reply.status)
            if self.log.maxlen:
                self.log.append(LoggedRequest(req.path, body, 0 if reply.drop else reply.status))
        return reply

    def _api(self, req: Request, cfg: EmulatorConfig, ctx: _Ctx) -> tuple[Reply, Any]:
        permission = ENDPOINTS.get(req.path)
        if permission is None:
            hint = " (no trailing slash)" if req.path.rstrip("/") in ENDPOINTS else ""
            return json_reply(404, {"message": f"Not Found: {req.path}{hint}"}), None
        if req.method != "POST":
            return json_reply(405, {"message": "Method Not Allowed"}, [("Allow", "POST")]), None
        key = _bearer(req.authorization)
        if key is None:
            return json_reply(401, {"message": "Missing API key"}), None
        permissions = self._keys.get(key)
        if permissions is None:
            return self._invalid_key(key, cfg), None
        if permission not in permissions:
            message = f"This API key does not have the '{permission}' permission."
            return json_reply(403, {"message": message}), None
        if not _is_json(req.content_type):
            return json_reply(415, {"message": "Content-Type must be application/json"}), None
        if req.body is None:
            message = f"Request body too large: the limit is {cfg.max_body_bytes} bytes."
            return json_reply(413, {"message": message}), None
        try:
            body = parse_json(req.body)
        except (ValueError, RecursionError):
            return json_reply(400, {"message": "Invalid JSON in request body."}), None
        if not isinstance(body, dict):
            return json_reply(400, {"message": "The request body must be a JSON object."}), body
        if permission == "users.track":
            return self._track(body, cfg, ctx, key), body
        scripted = self.faults.next_scripted()
        if scripted is not None and not 200 <= scripted < 300:
            return self._fault(scripted, cfg, key, None), body
        if self.faults.roll(cfg.error_rate):
            return error_reply(cfg.error_status, cfg.error_body), body
        if permission == "users.delete":
            return self._delete(body), body
        return self._export(body), body

    def _invalid_key(self, key: str, cfg: EmulatorConfig) -> Reply:
        # Real Braze echoes the key; clients must never print 401 bodies verbatim.
        message = f"Invalid API key: {key}" if cfg.echo_key_in_401 else "Invalid API key"
        return json_reply(401, {"message": message})

    def _fault(self, status: int, cfg: EmulatorConfig, key: str, rate: RateDecision | None) -> Reply:
        """The answer to a scripted or rate-limit status; nothing is applied."""
        if status == 429:
            if rate is None and cfg.rate_limit is not None:
                rate = self.limiter.peek(cfg.rate_limit, cfg.rate_window_seconds)
            headers = rate.headers(cfg) if rate is not None else []
            if rate is None and cfg.retry_after_header:
                headers = [("X-Ratelimit-Retry-After", "1"), ("Retry-After", "1")]
            return json_reply(429, {"message": RATE_LIMITED}, headers)
        if status == 401:
            return self._invalid_key(key, cfg)
        if status >= 500:
            return error_reply(status, cfg.error_body)
        return json_reply(status, {"message": _phrase(status)})

    def _track(self, body: dict[str, Any], cfg: EmulatorConfig, ctx: _Ctx, key: str) -> Reply:
        arrays: dict[str, list[Any]] = {}
        for name in TRACK_ARRAYS:
            value = body.get(name)
            if value is None:
                continue
            if not isinstance(value, list):
                return json_reply(400, {"message": f"'{name}' must be an array."})
            arrays[name] = value
        if not any(arrays.values()):
            # What Braze answers a request that changes nothing, the key check of a sync: answered
            # before any fault, so a check never consumes a scripted status or a random draw, and
            # counted apart, so that `requests` still says whether a sync sent anything.
            self.stats.bump({"requests": -1, "track_requests": -1, "empty_track_requests": 1})
            return json_reply(400, {"message": NO_VALID_DATA})
        self.stats.bump({"objects_sent": sum(len(objects) for objects in arrays.values())})
        users = users_of(arrays.values())
        if self.inflight.enter(users):
            self.stats.bump({"same_user_overlaps": 1})
        try:
            ctx.sleep()
            return self._track_in_flight(arrays, cfg, key)
        finally:
            self.inflight.leave(users)

    def _track_in_flight(self, arrays: dict[str, list[Any]], cfg: EmulatorConfig, key: str) -> Reply:
        scripted = self.faults.next_scripted()
        if scripted is not None and not 200 <= scripted < 300:
            return self._fault(scripted, cfg, key, None)
        headers: list[tuple[str, str]] = []
        if cfg.rate_limit is not None:
            rate = self.limiter.hit(cfg.rate_limit, cfg.rate_window_seconds)
            if not rate.allowed:
                return self._fault(429, cfg, key, rate)
            headers = rate.headers(cfg)
        if self.faults.roll(cfg.error_rate):
            reply = error_reply(cfg.error_status, cfg.error_body)
            reply.headers = headers
            return reply
        sizes = [len(objects) for objects in arrays.values()]
        if sum(sizes) == 0:
            return json_reply(400, {"message": NO_VALID_DATA}, headers)
        limit = cfg.max_objects_per_request
        if (max(sizes) if cfg.objects_limit_per_array else sum(sizes)) > limit:
            return json_reply(400, {"message": TOO_MANY_OBJECTS}, headers)
        if self.faults.roll(cfg.drop_before_apply_rate):
            return Reply(0, drop=True)
        result = self._sink(arrays) if cfg.sink_mode else self.workspace.track(arrays)
        if self.faults.roll(cfg.drop_after_apply_rate):
            return Reply(0, drop=True)
        if self.faults.roll(cfg.gateway_timeout_after_apply_rate):
            reply = error_reply(504, cfg.error_body)
            reply.headers = headers
            return reply
        accepted = sum(result.processed.values())
        if result.errors and accepted == 0:
            return json_reply(400, {"message": NO_VALID_DATA, "errors": result.errors}, headers)
        if scripted == 202:
            return json_reply(202, {"message": "queued"}, headers)
        payload: dict[str, Any] = {"message": "success"}
        for name, count in result.processed.items():
            payload[f"{name}_processed"] = count
        if result.errors:
            payload["errors"] = result.errors
        return json_reply(scripted or 201, payload, headers)

    def _sink(self, arrays: dict[str, list[Any]]) -> TrackOutcome:
        processed = {name: len(objects) for name, objects in arrays.items()}
        total = sum(processed.values())
        self.stats.bump(
            {
                "objects_received": total,
                "objects_accepted": total,
                "attributes_accepted": processed.get("attributes", 0),
                "events_accepted": processed.get("events", 0),
                "purchases_accepted": processed.get("purchases", 0),
                **count_sink(arrays.get("attributes", ())),
            }
        )
        return TrackOutcome(processed, [])

    def _delete(self, body: dict[str, Any]) -> Reply:
        targets = delete_targets(body)
        if isinstance(targets, str):
            return json_reply(400, {"message": targets})
        self.workspace.delete(targets)
        # Braze answers with the number of ids queued for deletion, found or not.
        return json_reply(201, {"deleted": len(targets), "message": "success"})

    def _export(self, body: dict[str, Any]) -> Reply:
        ids = body.get("external_ids")
        problem = _id_list_problem("external_ids", ids)
        fields = body.get("fields_to_export")
        if (
            not problem
            and fields is not None
            and (not isinstance(fields, list) or not all(isinstance(f, str) for f in fields))
        ):
            problem = "'fields_to_export' must be an array of strings."
        if problem:
            return json_reply(400, {"message": problem})
        users, invalid = self.workspace.export(cast("list[str]", ids), fields)
        return json_reply(201, {"users": users, "invalid_user_ids": invalid, "message": "success"})

    # -- inspection (no auth) -------------------------------------------------

    def _inspect(self, req: Request) -> Reply:
        route = (req.method, req.path.rstrip("/"))
        if route == ("GET", "/_emulator/profiles"):
            return json_reply(200, self.workspace.profiles())
        if route == ("GET", "/_emulator/users"):
            return json_reply(200, self.workspace.users())
        if route in (("GET", "/_emulator/events"), ("GET", "/_emulator/purchases")):
            return json_reply(200, self.workspace.occurrences(route[1].rsplit("/", 1)[1]))
        if route == ("GET", "/_emulator/stats"):
            return json_reply(200, self.stats_snapshot())
        if route == ("GET", "/_emulator/config"):
            return json_reply(200, self.config.as_dict())
        if route == ("GET", "/_emulator/requests"):
            return json_reply(200, [entry._asdict() for entry in list(self.log)])
        if route == ("POST", "/_emulator/reset"):
            self.reset()
            return json_reply(200, {"message": "reset"})
        if route[0] != "POST" or route[1] not in _CONTROL_POSTS:
            return json_reply(404, {"message": f"Not Found: {req.method} {req.path}"})
        try:
            body = parse_json(req.body or b"{}")
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            if route[1] == "/_emulator/config":
                return json_reply(200, self.configure(**body).as_dict())
            if route[1] == "/_emulator/users/find":
                return json_reply(200, self.workspace.users(**body))
            alias = body.get("user_alias")
            braze_id = self.workspace.add_user(
                body.get("external_id"),
                body.get("braze_id"),
                body.get("attributes"),
                None if alias is None else (alias["alias_label"], alias["alias_name"]),
                body.get("subscription_groups"),
            )
            return json_reply(201, {"braze_id": braze_id})
        except (ValueError, TypeError, KeyError) as exc:
            return json_reply(400, {"message": str(exc)})


def _id_list_problem(name: str, ids: Any) -> str | None:
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        return f"'{name}' must be a non-empty array of non-empty strings."
    if len(ids) > MAX_IDS_PER_REQUEST:
        return f"'{name}' accepts at most {MAX_IDS_PER_REQUEST} ids per request, got {len(ids)}."
    return None
