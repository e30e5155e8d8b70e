"""Requests to one Braze endpoint through one urllib3 pool, shared by all of the client's threads.

`Transport.post(path, body) -> RawResponse` (and `request(method, path, body)` for the catalog
endpoints' GET, PATCH, PUT and DELETE) raises `TransportNotSent` when the request never
left (the connection, its TLS handshake or the proxy failed before a byte of it was written: safe
to resend whatever it holds), `TransportTimeout` or `TransportFailure` when the outcome is unknown
(the body may have been written, and applied), and `TransportTLSError` when the endpoint's
certificate fails verification, which no retry can cure. Production and the unit tests run this
same class: the tests hand it a scripted pool (tests/fakes.py) in place of urllib3's.

Telling "never left" from "may have been applied" matters for events, which Braze counts each
time they arrive. urllib3 raises `NewConnectionError`, `NameResolutionError` and
`ConnectTimeoutError` only while opening the socket, and `ProxyError` only before the proxy was
reached; but a failed TLS handshake and a TLS failure in the middle of the answer are the same
`SSLError` (even with the same reason), so only where it was raised tells them apart: inside the
connection's `connect()`, before anything of the request was written. A timeout of the TLS
handshake surfaces as a `ReadTimeoutError` raised there, and is told apart the same way.

Why urllib3: its PoolManager keeps connections alive across threads and its ProxyManager
tunnels through HTTPS_PROXY, and it is cheap on CPU. Measured on the 2-core bench machine, one
POST of 75 objects to the emulator costs about 120 us of the client's CPU through http.client,
225 us through urllib3 and 590 us through requests; the sync sends a few hundred per second.

The environment is read once, when the transport is made, as requests and curl read it:
- proxy: HTTPS_PROXY / HTTP_PROXY / ALL_PROXY unless NO_PROXY names the host
  (`urllib.request.getproxies` and `proxy_bypass`, which also read macOS and Windows settings);
- CA bundle: REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE or SSL_CERT_FILE, else certifi where installed,
  else the system's store.

Nothing here retries (BrazeClient does: it knows what is safe to resend) or follows a redirect:
Braze never redirects a REST call, and following one would resend a body, API key included, to
an address nobody configured.
"""

from __future__ import annotations

import http.client
import os
import ssl
import sys
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ConnectTimeoutError, HTTPError, ProxyError, ProxySchemeUnknown
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from dbt_braze.errors import ConfigError

# Connections kept alive: the most requests the sync can have in flight (settings.py allows a
# concurrency of 1..256, 24 by default). A slot holds nothing until a connection comes back to
# it, so a large pool costs nothing; a smaller one closes the connections it has no room for.
MAX_POOL_SIZE = 256
NO_RETRIES = urllib3.Retry(total=False, redirect=False)  # BrazeClient retries

# The response headers: a case-insensitive mapping that keeps repeated headers.
Headers = urllib3.HTTPHeaderDict


@dataclass(frozen=True)
class RawResponse:
    status: int
    reason: str
    headers: Mapping[str, str]  # case-insensitive get
    body: bytes


class TransportTimeout(Exception):
    """No answer in time: the request may or may not have been applied."""


class TransportFailure(Exception):
    """The connection failed or dropped: the request may or may not have been applied."""


class TransportNotSent(TransportFailure):
    """The connection could not be made (refused, unresolved, connect timeout, TLS handshake,
    proxy): nothing of the request was written, so nothing of it can have been applied."""


class TransportTLSError(Exception):
    """The server's certificate failed verification: nothing was sent, and retrying will not help."""


class Pool(Protocol):
    """What the transport needs of a urllib3 PoolManager (or ProxyManager, or a test's fake)."""

    def urlopen(
        self, method: str, url: str, redirect: bool = True, **kw: Any
    ) -> urllib3.BaseHTTPResponse: ...
    def clear(self) -> None: ...


class Transport:
    """Requests to `endpoint` + path with fixed headers and timeouts; safe to share between threads."""

    def __init__(
        self,
        endpoint: str,
        headers: Mapping[str, str],
        timeout: tuple[float, float],
        *,
        pool_size: int = MAX_POOL_SIZE,
        pool: Pool | None = None,
    ) -> None:
        self._endpoint = endpoint.rstrip("/")
        self._headers = dict(headers)
        self._timeout = urllib3.Timeout(connect=timeout[0], read=timeout[1])
        self._pool = pool if pool is not None else make_pool(self._endpoint, pool_size)

    def post(self, path: str, body: bytes) -> RawResponse:
        return self.request("POST", path, body)

    def request(self, method: str, path: str, body: bytes | None) -> RawResponse:
        """One `method` request (`body` None: none, as for GET); failures as `post` says."""
        # An exception the caller is handling becomes the context of ours: it is not about this
        # request, so it is never looked into.
        handled = sys.exc_info()[1]
        try:
            response = self._pool.urlopen(
                method,
                self._endpoint + path,
                body=body,
                headers=self._headers,
                timeout=self._timeout,
                retries=NO_RETRIES,
                redirect=False,
            )
        except (HTTPError, OSError, http.client.HTTPException) as exc:
            causes = list(_wrapped(exc, handled))
            verification = next((c for c in causes if isinstance(c, ssl.SSLCertVerificationError)), None)
            if verification is not None:
                raise TransportTLSError(verification.verify_message or str(verification)) from exc
            # NewConnectionError and NameResolutionError are ConnectTimeoutErrors by descent
            if isinstance(exc, (ConnectTimeoutError, ProxyError)) or _raised_while_connecting(causes):
                raise TransportNotSent(f"{type(exc).__name__}: {exc}") from exc
            if isinstance(exc, Urllib3Timeout):
                raise TransportTimeout(type(exc).__name__) from exc
            raise TransportFailure(f"{type(exc).__name__}: {exc}") from exc
        return RawResponse(response.status, response.reason or "", response.headers, response.data or b"")

    def close(self) -> None:
        self._pool.clear()


def make_pool(endpoint: str, pool_size: int = MAX_POOL_SIZE) -> urllib3.PoolManager:
    """A PoolManager for `endpoint`, or a ProxyManager when the environment names a proxy for it."""
    https = urlsplit(endpoint).scheme == "https"
    options: dict[str, Any] = {"maxsize": pool_size, "block": False}
    if https:
        options["ssl_context"] = tls_context()
    proxy = proxy_for(endpoint)
    if proxy is None:
        return urllib3.PoolManager(**options)
    if "://" not in proxy:
        proxy = "http://" + proxy  # `HTTPS_PROXY=proxy:3128`, as curl and requests read it
    parts = urlsplit(proxy)
    if parts.username is not None:
        auth = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        options["proxy_headers"] = urllib3.make_headers(proxy_basic_auth=auth)
    if parts.scheme == "https":
        options["proxy_ssl_context"] = tls_context()
    try:
        return urllib3.ProxyManager(proxy, **options)
    except ProxySchemeUnknown:
        # the scheme alone: the URL may hold a password
        raise ConfigError(
            f"the proxy for {endpoint} is a {parts.scheme}:// URL, which dbt-braze cannot use",
            hint="set HTTPS_PROXY to an http:// or https:// proxy, or name the host in NO_PROXY",
        ) from None


def proxy_for(endpoint: str) -> str | None:
    """The proxy URL the environment sets for `endpoint`, None when none applies."""
    parts = urlsplit(endpoint)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxy


def tls_context() -> ssl.SSLContext:
    """Verify against REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE or SSL_CERT_FILE (a file or a directory,
    as requests reads them), else certifi where installed, else the system's store."""
    bundle = next(
        (
            os.environ[name]
            for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")
            if os.environ.get(name)
        ),
        None,
    )
    if bundle is None:
        try:
            import certifi

            bundle = certifi.where()
        except ImportError:
            return ssl.create_default_context()
    if os.path.isdir(bundle):
        return ssl.create_default_context(capath=bundle)
    return ssl.create_default_context(cafile=bundle)


# The code of the methods that open a connection (socket, proxy tunnel, TLS handshake): a failure
# raised inside one of them happened before a byte of the request was written.
_CONNECT_CODE = frozenset({HTTPConnection.connect.__code__, HTTPSConnection.connect.__code__})


def _raised_while_connecting(causes: list[BaseException]) -> bool:
    """Whether one of `causes` (a failure and what it wraps) was raised inside a connection's
    `connect()`."""
    for item in causes:
        trace = item.__traceback__
        while trace is not None:
            if trace.tb_frame.f_code in _CONNECT_CODE:
                return True
            trace = trace.tb_next
    return False


def _wrapped(exc: BaseException, outside: BaseException | None) -> Iterator[BaseException]:
    """`exc` and every exception urllib3 wrapped in it (in `args`, `reason`, causes), short of
    `outside` and what it holds."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        item = todo.pop()
        if id(item) in seen or not isinstance(item, BaseException) or item is outside:
            continue
        seen.add(id(item))
        yield item
        todo += [*item.args, getattr(item, "reason", None), item.__cause__, item.__context__]
