"""One HTTP POST at a time on a thread's own keep-alive connection.

Two transports with one interface (`post(path, body) -> RawResponse`, raising
`TransportTimeout` or `TransportFailure` when the outcome is unknown, and
`TransportTLSError` when the endpoint's certificate fails verification, which
no retry can cure):

- `HttpClientTransport`, the default: the standard library's http.client. On
  a 2-core machine `requests` spends ~1 ms of CPU per request (bench: 1,000
  requests/s at most with every thread busy, about Braze's whole workspace
  limit and leaving nothing for the sync itself); http.client about a
  fifth of that.
- `RequestsTransport`, when a proxy applies to the endpoint (requests honours
  HTTPS_PROXY and NO_PROXY, http.client does not) or a session factory is
  given (the unit tests mount a fake adapter on it).

Neither follows redirects: Braze never redirects a REST call, and following
one would resend a body to an address nobody configured.
"""

from __future__ import annotations

import http.client
import os
import ssl
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, cast
from urllib.parse import urlsplit

import requests


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


class TransportTLSError(Exception):
    """The server's certificate failed verification: nothing was sent, and retrying will not help."""


class Transport(Protocol):
    def post(self, path: str, body: bytes) -> RawResponse: ...
    def close(self) -> None: ...


class HttpClientTransport:
    """A keep-alive connection of one thread's own, reopened after any failure."""

    def __init__(self, endpoint: str, headers: Mapping[str, str], timeout: tuple[float, float]) -> None:
        parts = urlsplit(endpoint)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port
        self._base_path = parts.path.rstrip("/")
        self._headers = dict(headers)
        self._connect_timeout, self._read_timeout = timeout
        self._connection: http.client.HTTPConnection | None = None

    def post(self, path: str, body: bytes) -> RawResponse:
        try:
            connection = self._connection or self._connect()
            connection.request("POST", self._base_path + path, body, self._headers)
            response = connection.getresponse()
            data = response.read()
        except TimeoutError as exc:
            self.close()
            raise TransportTimeout(type(exc).__name__) from exc
        except ssl.SSLCertVerificationError as exc:
            self.close()
            raise TransportTLSError(exc.verify_message or str(exc)) from exc
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise TransportFailure(f"{type(exc).__name__}: {exc}") from exc
        if response.will_close:
            self.close()
        # HTTPMessage: a case-insensitive mapping, as requests' headers are
        headers = cast(Mapping[str, str], response.headers)
        return RawResponse(response.status, response.reason or "", headers, data)

    def _connect(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection
        if self._https:
            connection = http.client.HTTPSConnection(
                self._host, self._port, timeout=self._connect_timeout, context=_tls_context()
            )
        else:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=self._connect_timeout)
        connection.connect()
        assert connection.sock is not None
        connection.sock.settimeout(self._read_timeout)
        self._connection = connection
        return connection

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


class RequestsTransport:
    def __init__(
        self,
        endpoint: str,
        headers: Mapping[str, str],
        timeout: tuple[float, float],
        session: requests.Session,
    ) -> None:
        self._endpoint = endpoint
        self._timeout = timeout
        self._session = session
        session.headers.update(headers)

    def post(self, path: str, body: bytes) -> RawResponse:
        try:
            response = self._session.post(
                self._endpoint + path, data=body, timeout=self._timeout, allow_redirects=False
            )
        except requests.Timeout as exc:
            raise TransportTimeout(type(exc).__name__) from exc
        except requests.exceptions.SSLError as exc:
            verification = _cert_verification_error(exc)
            if verification is None:  # a handshake cut short: as any dropped connection
                raise TransportFailure(f"{type(exc).__name__}: {exc}") from exc
            raise TransportTLSError(verification.verify_message or str(verification)) from exc
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            raise TransportFailure(f"{type(exc).__name__}: {exc}") from exc
        return RawResponse(response.status_code, response.reason or "", response.headers, response.content)

    def close(self) -> None:
        self._session.close()


def transport_factory(
    endpoint: str,
    headers: Mapping[str, str],
    timeout: tuple[float, float],
    session_factory: Callable[[], requests.Session] | None,
) -> Callable[[], Transport]:
    """What makes each thread's transport: requests when a proxy applies or a session
    factory is given, http.client otherwise."""
    if session_factory is None and not _proxied(endpoint):
        return lambda: HttpClientTransport(endpoint, headers, timeout)
    make_session = session_factory or requests.Session
    return lambda: RequestsTransport(endpoint, headers, timeout, make_session())


def _proxied(endpoint: str) -> bool:
    host = urlsplit(endpoint).hostname or ""
    proxies = urllib.request.getproxies()
    return bool(
        proxies.get(urlsplit(endpoint).scheme) or proxies.get("all")
    ) and not urllib.request.proxy_bypass(host)


def _cert_verification_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate failure that requests and urllib3 wrap (in `args`, `reason`, causes)."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        item = todo.pop()
        if id(item) in seen or not isinstance(item, BaseException):
            continue
        seen.add(id(item))
        if isinstance(item, ssl.SSLCertVerificationError):
            return item
        todo += [*item.args, getattr(item, "reason", None), item.__cause__, item.__context__]
    return None


def _tls_context() -> ssl.SSLContext:
    """Verify as requests does: its CA bundle (certifi, or REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE)."""
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if not bundle:
        try:
            import certifi

            bundle = certifi.where()
        except ImportError:  # the system's store
            bundle = None
    return ssl.create_default_context(cafile=bundle)
