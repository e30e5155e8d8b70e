"""The HTTP side of the emulator and its Python handle, `BrazeEmulator`.

A stdlib `ThreadingHTTPServer` speaking HTTP/1.1 with keep-alive, one thread
per connection, on loopback by default. The handler only moves bytes: the
whole behaviour lives in app.py. Each response is written with a single
`send` and TCP_NODELAY, so keep-alive clients never wait on Nagle plus
delayed ACK (40 ms per request otherwise).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, cast

from .app import ALL_PERMISSIONS, App
from .faults import EmulatorConfig
from .wire import LoggedRequest, Reply, Request, json_reply

logger = logging.getLogger(__name__)

DEFAULT_API_KEY = "test-key"
# A body over max_body_bytes is read and discarded up to this size so the
# client sees the 413 rather than a reset connection; beyond it we just close.
_DRAIN_LIMIT = 64 * 1024 * 1024
_MAX_LINE = 65536
_MAX_HEADERS = 100
_PHRASES = {status.value: status.phrase for status in HTTPStatus}


class _Headers(dict[str, str]):
    """Request headers, stored lower-cased."""

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "braze-emulator"
    disable_nagle_algorithm = True
    raw_requestline: bytes  # set by handle_one_request before parse_request

    def parse_request(self) -> bool:
        """A lean stand-in for the stdlib's, which runs the email parser on
        every request and costs about as much as a sink-mode request itself.
        Same outcomes for what HTTP/1.x clients send: request line, headers
        (case-insensitive, last one wins), Connection, Expect: 100-continue."""
        self.command = ""
        self.request_version = self.default_request_version
        self.close_connection = True
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if len(words) != 3 or not words[2].startswith("HTTP/1."):
            self.send_error(HTTPStatus.BAD_REQUEST, "Bad request line")
            return False
        self.command, self.path, self.request_version = words
        headers = _Headers()
        for _ in range(_MAX_HEADERS):
            raw = self.rfile.readline(_MAX_LINE + 1)
            if len(raw) > _MAX_LINE:
                self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long")
                return False
            if raw in (b"\r\n", b"\n", b""):
                break
            name, colon, value = raw.decode("iso-8859-1").partition(":")
            if not colon:
                self.send_error(HTTPStatus.BAD_REQUEST, "Malformed header line")
                return False
            headers[name.strip().lower()] = value.strip()
        else:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers")
            return False
        self.headers = cast(Any, headers)
        connection = headers.get("connection", "").lower()
        self.close_connection = connection == "close" or (
            self.request_version == "HTTP/1.0" and connection != "keep-alive"
        )
        if headers.get("expect", "").lower() == "100-continue":
            return self.handle_expect_100()
        return True

    def do_POST(self) -> None:
        self._serve("POST")

    def do_GET(self) -> None:
        self._serve("GET")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        app = cast(_Server, self.server).app
        ok, body = self._read_body(app.config.max_body_bytes)
        if not ok:
            return
        reply = app.handle(
            Request(
                method=method,
                path=self.path.split("?", 1)[0],
                authorization=self.headers.get("Authorization"),
                content_type=self.headers.get("Content-Type"),
                body=body,
            )
        )
        if reply.drop:
            self.close_connection = True  # no answer at all: the outcome is unknown
            return
        self._write(reply)

    def _read_body(self, limit: int) -> tuple[bool, bytes | None]:
        """(False, _) when the request was answered or abandoned here."""
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            self._write(json_reply(411, {"message": "Content-Length is required"}))
            return False, None
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length < 0:
                raise ValueError(length)
        except ValueError:
            self.close_connection = True
            self._write(json_reply(400, {"message": "Invalid Content-Length"}))
            return False, None
        if length > limit:
            if length > _DRAIN_LIMIT:
                self.close_connection = True
            else:
                while length > 0:
                    chunk = self.rfile.read(min(length, 1 << 20))
                    if not chunk:
                        self.close_connection = True
                        return False, None
                    length -= len(chunk)
            return True, None
        data = self.rfile.read(length) if length else b""
        if len(data) < length:
            self.close_connection = True  # the client went away mid-body
            return False, None
        return True, data

    def _write(self, reply: Reply) -> None:
        lines = [
            f"HTTP/1.1 {reply.status} {_PHRASES.get(reply.status, 'Error')}",
            f"Server: {self.server_version}",
            f"Date: {formatdate(usegmt=True)}",
            f"Content-Length: {len(reply.body)}",
        ]
        if reply.content_type:
            lines.append(f"Content-Type: {reply.content_type}")
        lines += [f"{name}: {value}" for name, value in reply.headers]
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head + reply.body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib name)
        logger.debug("%s - " + format, self.address_string(), *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], app: App) -> None:
        self.app = app
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        self.app.stats.bump({"connections_opened": 1})
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Cut open keep-alive connections so their threads end with the server."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return  # the client hung up; nothing to report
        logger.exception("emulator error on a connection from %s", client_address)


class BrazeEmulator:
    """A strict Braze REST API on a real socket, for tests, CI and benchmarks.

    `api_keys` maps each accepted key to its permissions (`users.track`,
    `users.delete`, `users.export.ids`, and for catalogs `catalogs.add_items`,
    `catalogs.update_items`, `catalogs.replace_items`, `catalogs.delete_items`,
    `catalogs.get`); by default the one key `test-key` has them all. Port 0
    picks a free port; read it from `port` or `url` after `start()`. Usable
    as a context manager. `clock` (epoch seconds) times the rate-limit
    windows: a test passes a fake one instead of waiting.
    """

    def __init__(
        self,
        api_keys: Mapping[str, Iterable[str]] | None = None,
        config: EmulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        keys = api_keys if api_keys is not None else {DEFAULT_API_KEY: ALL_PERMISSIONS}
        self._app = App(keys, config or EmulatorConfig(), clock)
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> BrazeEmulator:
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        server = _Server(self._address, self._app)
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"braze-emulator:{server.server_address[1]}",
            daemon=True,
        )
        thread.start()
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> BrazeEmulator:
        if self._server is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not running: call start() first")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = self._address[0]
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    # -- behaviour ------------------------------------------------------------

    @property
    def config(self) -> EmulatorConfig:
        return self._app.config

    def configure(self, **knobs: Any) -> EmulatorConfig:
        """Change `EmulatorConfig` fields at runtime; returns the new config.

        Setting `scripted_statuses` replaces the queue; setting `seed` reseeds
        the RNG; setting a rate knob starts a fresh window.
        """
        return self._app.configure(**knobs)

    def reset(self) -> None:
        """Forget every profile, catalog item, counter, logged request and rate window;
        the catalogs stay, emptied, as the knobs do."""
        self._app.reset()

    # -- the workspace --------------------------------------------------------

    @property
    def profiles(self) -> dict[str, dict[str, Any]]:
        """A deep copy: key -> attributes. The key is the external_id, or
        `braze_id:<id>` for a profile without one (alias-only, seeded)."""
        return self._app.workspace.profiles()

    def profile(self, external_id: str) -> dict[str, Any] | None:
        return self._app.workspace.profile(external_id)

    def braze_id_of(self, external_id: str) -> str | None:
        return self._app.workspace.braze_id_of(external_id)

    def events(self) -> list[dict[str, Any]]:
        """Every event applied to a profile, oldest first, never deduplicated: `braze_id`,
        `external_id` (of the profile, None if it has none), `name`, `time` (as sent),
        `properties`."""
        return self._app.workspace.occurrences("events")

    def purchases(self) -> list[dict[str, Any]]:
        """Every purchase applied to a profile, as `events()`: `braze_id`, `external_id`,
        `product_id`, `currency`, `price`, `quantity`, `time`, `properties`."""
        return self._app.workspace.occurrences("purchases")

    def users(
        self,
        *,
        external_id: str | None = None,
        braze_id: str | None = None,
        email: str | None = None,
        phone: str | None = None,
        user_alias: tuple[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """The profiles that have every identifier given (all of them if none),
        oldest first, each a copy: `braze_id`, `external_id`, `user_alias`
        (`{"alias_name", "alias_label"}` or None), `email`, `phone`,
        `attributes`, `subscription_groups` (`{group_id: state}`), `events`,
        `purchases`. Several profiles may share an e-mail or a phone; a phone
        matches whatever its separators. `user_alias` is `(alias_label, alias_name)`.
        """
        alias = None if user_alias is None else {"alias_label": user_alias[0], "alias_name": user_alias[1]}
        return self._app.workspace.users(
            external_id=external_id, braze_id=braze_id, email=email, phone=phone, user_alias=alias
        )

    def add_user(
        self,
        external_id: str | None = None,
        braze_id: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        *,
        user_alias: tuple[str, str] | None = None,
        subscription_groups: Mapping[str, str] | None = None,
    ) -> str:
        """Seed an existing user; returns its braze_id (generated if not given).

        `user_alias` is `(alias_label, alias_name)`; an `email` or `phone` in
        `attributes` is indexed (seed several users with one e-mail to test
        how Braze picks one); `subscription_groups` maps group ids to
        `subscribed` or `unsubscribed`. Raises ValueError if one of the
        identifiers is already taken or a state is invalid.
        """
        return self._app.workspace.add_user(
            external_id,
            braze_id,
            dict(attributes or {}),
            user_alias,
            dict(subscription_groups or {}),
        )

    # -- catalogs ---------------------------------------------------------------

    def create_catalog(self, name: str, fields: Mapping[str, str] | None = None) -> dict[str, str]:
        """Create a catalog, or replace one of that name (emptied). `fields` maps each
        field name to its type (string, number, boolean, time, object, array); the
        `id` field (a string) is implied. Returns the fields, `id` first. Raises
        ValueError for a name or a type Braze would refuse."""
        return self._app.catalogs.create(name, dict(fields or {}))

    def delete_catalog(self, name: str) -> None:
        """Remove a catalog and its items; KeyError if there is none of that name."""
        self._app.catalogs.drop(name)

    def catalogs(self) -> dict[str, dict[str, str]]:
        """Every catalog: name -> {field: type}, `id` first."""
        return self._app.catalogs.definitions()

    def catalog_items(self, name: str) -> dict[str, dict[str, Any]]:
        """A copy of a catalog's items: id -> {field: value} (the id not repeated, a
        cleared field absent). KeyError if there is no catalog of that name."""
        return self._app.catalogs.items(name)

    def stats(self) -> dict[str, Any]:
        """Counters since start or the last reset(); see counters.py for their meaning."""
        return self._app.stats_snapshot()

    @property
    def requests_log(self) -> list[LoggedRequest]:
        """The last `requests_log_size` API requests: (path, parsed body, status), with
        the HTTP method as `.method`; status 0 means the connection was dropped without
        an answer."""
        return list(self._app.log)
