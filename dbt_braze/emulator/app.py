"""The request pipeline of the emulator, independent of the HTTP plumbing.

`App.handle` takes a `Request` (method, path, two headers, raw body) and
returns a `Reply`; server.py only moves bytes. An API request goes through:

    404 unknown path (a trailing slash included) -> 405 method not allowed
    -> 401 missing/unknown key (echoing the key, as Braze does)
    -> 403 key lacks the endpoint's permission -> 415 not application/json
    -> 413 body over max_body_bytes -> 400 invalid JSON (NaN/Infinity included)
    -> 400 track request with no object -> scripted status
    -> rate limit (track; catalog items; GET /catalogs) -> random error_status
    -> request-level checks (400; 404 catalog-not-found) -> drop before apply -> apply
    -> drop after apply -> 504 after apply -> answer

`GET /catalogs` has no body: it skips the 415 to 400 steps and the apply.

Latency is slept once per request; for a track request it is slept while
the request's users are registered as in flight, so that two overlapping
requests for one user are seen as such (`same_user_overlaps`).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple, cast

from .catalogs import ITEM_METHODS, Catalogs, Refusal, check_items, refusal
from .counters import InFlight, Stats, count_sink, users_of
from .faults import EmulatorConfig, FaultInjector, RateDecision, RateWindow
from .state import TrackOutcome, Workspace
from .validation import delete_targets
from .wire import (
    LoggedRequest,
    Reply,
    Request,
    bearer,
    error_reply,
    is_json,
    json_reply,
    parse_json,
    status_phrase,
)

logger = logging.getLogger(__name__)

ENDPOINTS = {
    "/users/track": "users.track",
    "/users/delete": "users.delete",
    "/users/export/ids": "users.export.ids",
}
CATALOG_ITEM_PERMISSIONS = {
    "POST": "catalogs.add_items",
    "PATCH": "catalogs.update_items",
    "PUT": "catalogs.replace_items",
    "DELETE": "catalogs.delete_items",
}
CATALOG_LIST_PERMISSION = "catalogs.get"
ALL_PERMISSIONS = frozenset(
    [*ENDPOINTS.values(), *CATALOG_ITEM_PERMISSIONS.values(), CATALOG_LIST_PERMISSION]
)
MAX_IDS_PER_REQUEST = 50  # /users/export/ids (/users/delete: validation.MAX_IDS_PER_DELETE)

NO_VALID_DATA = "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields."
TOO_MANY_OBJECTS = "Max Input Length Exceeded"
RATE_LIMITED = "API rate limit exceeded. Retry after the time in X-RateLimit-Reset."
TRACK_ARRAYS = ("attributes", "events", "purchases")
_RATE_KNOBS = {
    "rate_limit",
    "rate_window_seconds",
    "catalog_rate_limit",
    "catalog_list_rate_limit",
    "catalog_rate_window_seconds",
}
_CONTROL_POSTS = {"/_emulator/config", "/_emulator/users", "/_emulator/users/find"}
_CATALOG_ITEMS_PATH = re.compile(r"/catalogs/([^/]+)/items")
_CONTROL_CATALOG_PATH = re.compile(r"/_emulator/catalogs/([^/]+)(/items)?")


class _Route(NamedTuple):
    permission: str
    catalog: str | None = None  # the catalog of an item request


class _Limit(NamedTuple):
    """A rate-limit bucket and the knobs that size it."""

    window: RateWindow
    limit: int | None
    seconds: float


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
        self.catalogs = Catalogs(self.stats, clock)
        self.inflight = InFlight()
        self.limiter = RateWindow(clock)  # /users/track
        self.catalog_limiter = RateWindow(clock)  # the four catalog item endpoints, together
        self.catalog_list_limiter = RateWindow(clock)  # GET /catalogs
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
                self._reset_limiters()
            if "requests_log_size" in knobs:
                self.log = deque(self.log, maxlen=new.requests_log_size)
            self.config = new
        return new

    def reset(self) -> None:
        self.workspace.clear()
        self.catalogs.empty_all()
        self.stats.clear()
        self._reset_limiters()
        self.log.clear()

    def _reset_limiters(self) -> None:
        for window in (self.limiter, self.catalog_limiter, self.catalog_list_limiter):
            window.reset()

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
                self.log.append(LoggedRequest(req.path, body, 0 if reply.drop else reply.status, req.method))
        return reply

    def _api(self, req: Request, cfg: EmulatorConfig, ctx: _Ctx) -> tuple[Reply, Any]:
        route = _route(req.method, req.path)
        if isinstance(route, Reply):
            return route, None
        permission = route.permission
        if route.catalog is not None:
            self.stats.bump({"catalog_requests": 1, f"catalog_{req.method.lower()}_requests": 1})
        elif permission == CATALOG_LIST_PERMISSION:
            self.stats.bump({"catalog_list_requests": 1})
        key = bearer(req.authorization)
        if key is None:
            return json_reply(401, {"message": "Missing API key"}), None
        permissions = self._keys.get(key)
        if permissions is None:
            return self._invalid_key(key, cfg), None
        if permission not in permissions:
            message = f"This API key does not have the '{permission}' permission."
            return json_reply(403, {"message": message}), None
        if permission == CATALOG_LIST_PERMISSION:
            return self._list_catalogs(cfg, key), None
        if not is_json(req.content_type):
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
        if route.catalog is not None:
            return self._catalog_items(route.catalog, req.method, body, cfg, key), body
        scripted = self.faults.next_scripted()
        if scripted is not None and not 200 <= scripted < 300:
            return self._fault(scripted, cfg, key, None, self._track_limit(cfg)), body
        if self.faults.roll(cfg.error_rate):
            return error_reply(cfg.error_status, cfg.error_body), body
        if permission == "users.delete":
            return self._delete(body), body
        return self._export(body), body

    def _invalid_key(self, key: str, cfg: EmulatorConfig) -> Reply:
        # Real Braze echoes the key; clients must never print 401 bodies verbatim.
        message = f"Invalid API key: {key}" if cfg.echo_key_in_401 else "Invalid API key"
        return json_reply(401, {"message": message})

    def _track_limit(self, cfg: EmulatorConfig) -> _Limit:
        return _Limit(self.limiter, cfg.rate_limit, cfg.rate_window_seconds)

    def _catalog_limit(self, cfg: EmulatorConfig) -> _Limit:
        return _Limit(self.catalog_limiter, cfg.catalog_rate_limit, cfg.catalog_rate_window_seconds)

    def _admit(
        self, cfg: EmulatorConfig, key: str, limit: _Limit
    ) -> tuple[Reply | None, list[tuple[str, str]], int | None]:
        """Scripted statuses, the rate limit and random errors, in that order: the answer
        that stops the request here (nothing applied), or None with the rate-limit headers
        and the scripted 2xx status the answer must take."""
        scripted = self.faults.next_scripted()
        if scripted is not None and not 200 <= scripted < 300:
            return self._fault(scripted, cfg, key, None, limit), [], None
        headers: list[tuple[str, str]] = []
        if limit.limit is not None:
            rate = limit.window.hit(limit.limit, limit.seconds)
            if not rate.allowed:
                return self._fault(429, cfg, key, rate, limit), [], None
            headers = rate.headers(cfg)
        if self.faults.roll(cfg.error_rate):
            reply = error_reply(cfg.error_status, cfg.error_body)
            reply.headers = headers
            return reply, headers, None
        return None, headers, scripted

    def _after_apply(self, cfg: EmulatorConfig, headers: list[tuple[str, str]]) -> Reply | None:
        """A drop or a 504 once the request was applied: the client cannot know it was."""
        if self.faults.roll(cfg.drop_after_apply_rate):
            return Reply(0, drop=True)
        if self.faults.roll(cfg.gateway_timeout_after_apply_rate):
            reply = error_reply(504, cfg.error_body)
            reply.headers = headers
            return reply
        return None

    def _fault(
        self, status: int, cfg: EmulatorConfig, key: str, rate: RateDecision | None, limit: _Limit
    ) -> Reply:
        """The answer to a scripted or rate-limit status; nothing is applied."""
        if status == 429:
            if rate is None and limit.limit is not None:
                rate = limit.window.peek(limit.limit, limit.seconds)
            headers = rate.headers(cfg) if rate is not None else []
            if rate is None and cfg.retry_after_header:
                headers = [("X-Ratelimit-Retry-After", "1"), ("Retry-After", "1")]
            return json_reply(429, {"message": RATE_LIMITED}, headers)
        if status == 401:
            return self._invalid_key(key, cfg)
        if status >= 500:
            return error_reply(status, cfg.error_body)
        return json_reply(status, {"message": status_phrase(status)})

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
        stop, headers, scripted = self._admit(cfg, key, self._track_limit(cfg))
        if stop is not None:
            return stop
        sizes = [len(objects) for objects in arrays.values()]
        if sum(sizes) == 0:
            return json_reply(400, {"message": NO_VALID_DATA}, headers)
        limit = cfg.max_objects_per_request
        if (max(sizes) if cfg.objects_limit_per_array else sum(sizes)) > limit:
            return json_reply(400, {"message": TOO_MANY_OBJECTS}, headers)
        if self.faults.roll(cfg.drop_before_apply_rate):
            return Reply(0, drop=True)
        result = self._sink(arrays) if cfg.sink_mode else self.workspace.track(arrays)
        unknown_outcome = self._after_apply(cfg, headers)
        if unknown_outcome is not None:
            return unknown_outcome
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

    # -- catalogs -------------------------------------------------------------

    def _catalog_items(
        self, catalog: str, method: str, body: dict[str, Any], cfg: EmulatorConfig, key: str
    ) -> Reply:
        items = body.get("items")
        sent = len(items) if isinstance(items, list) else 0
        self.stats.bump({"catalog_items_sent": sent})
        stop, headers, scripted = self._admit(cfg, key, self._catalog_limit(cfg))
        if stop is not None:
            return stop
        fields = self.catalogs.fields_of(catalog)
        if fields is None:
            checked: Any = refusal(404, "catalog-not-found", "catalog_name", [catalog])
        else:
            checked = check_items(method, items, fields)
        if not isinstance(checked, Refusal):
            if self.faults.roll(cfg.drop_before_apply_rate):
                return Reply(0, drop=True)
            checked = self.catalogs.apply(catalog, method, checked)
        if checked is not None:  # refused whole: nothing applied
            self.stats.bump({"catalog_items_rejected": sent})
            return json_reply(checked.status, checked.payload(), headers)
        unknown_outcome = self._after_apply(cfg, headers)
        if unknown_outcome is not None:
            return unknown_outcome
        return json_reply(scripted or 202, {"message": "success"}, headers)

    def _list_catalogs(self, cfg: EmulatorConfig, key: str) -> Reply:
        limit = _Limit(
            self.catalog_list_limiter, cfg.catalog_list_rate_limit, cfg.catalog_rate_window_seconds
        )
        stop, headers, scripted = self._admit(cfg, key, limit)
        if stop is not None:
            return stop
        # Braze pages the list (50 a page, `next_cursor`); the emulator answers one page.
        return json_reply(
            scripted or 200, {"catalogs": self.catalogs.listing(), "message": "success"}, headers
        )

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
        if route[1] == "/_emulator/catalogs" or route[1].startswith("/_emulator/catalogs/"):
            return self._catalog_control(*route, req.body)
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
            return json_reply(200, [entry.as_dict() for entry in list(self.log)])
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

    def _catalog_control(self, method: str, path: str, raw: bytes | None) -> Reply:
        """`/_emulator/catalogs`: create (POST) and list (GET) catalogs; under
        `/_emulator/catalogs/{name}`: DELETE one, GET its `/items`."""
        named = _CONTROL_CATALOG_PATH.fullmatch(path)
        try:
            if (method, path) == ("GET", "/_emulator/catalogs"):
                return json_reply(200, self.catalogs.definitions())
            if (method, path) == ("POST", "/_emulator/catalogs"):
                body = parse_json(raw or b"{}")
                if not isinstance(body, dict) or not body.keys() <= {"name", "fields"}:
                    raise ValueError('the body must be {"name": ..., "fields": {field: type}}')
                fields = self.catalogs.create(body.get("name"), body.get("fields"))
                return json_reply(201, {"name": body["name"], "fields": fields})
            if named and named[2] and method == "GET":
                return json_reply(200, {"items": self.catalogs.items(named[1])})
            if named and not named[2] and method == "DELETE":
                self.catalogs.drop(named[1])
                return json_reply(200, {"message": "deleted"})
        except KeyError as exc:
            return json_reply(404, {"message": str(exc.args[0])})
        except (ValueError, RecursionError) as exc:
            return json_reply(400, {"message": str(exc)})
        return json_reply(404, {"message": f"Not Found: {method} {path}"})


def _route(method: str, path: str) -> _Route | Reply:
    """The permission (and catalog) an API path and method need, or the 404 or 405."""
    permission = ENDPOINTS.get(path)
    if permission is not None:
        return _Route(permission) if method == "POST" else _not_allowed("POST")
    if path == "/catalogs":
        return _Route(CATALOG_LIST_PERMISSION) if method == "GET" else _not_allowed("GET")
    items = _CATALOG_ITEMS_PATH.fullmatch(path)
    if items is not None:
        permission = CATALOG_ITEM_PERMISSIONS.get(method)
        return _Route(permission, items[1]) if permission else _not_allowed(", ".join(ITEM_METHODS))
    trimmed = path.rstrip("/")
    known = trimmed in ENDPOINTS or trimmed == "/catalogs" or _CATALOG_ITEMS_PATH.fullmatch(trimmed)
    hint = " (no trailing slash)" if known and trimmed != path else ""
    return json_reply(404, {"message": f"Not Found: {path}{hint}"})


def _not_allowed(allowed: str) -> Reply:
    return json_reply(405, {"message": "Method Not Allowed"}, [("Allow", allowed)])


def _id_list_problem(name: str, ids: Any) -> str | None:
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        return f"'{name}' must be a non-empty array of non-empty strings."
    if len(ids) > MAX_IDS_PER_REQUEST:
        return f"'{name}' accepts at most {MAX_IDS_PER_REQUEST} ids per request, got {len(ids)}."
    return None
