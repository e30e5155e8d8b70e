"""What the emulator's pipeline takes and gives, apart from the HTTP plumbing:
a `Request`, a `Reply`, a `LoggedRequest`, and the JSON and headers they carry."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, NamedTuple

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


class _Logged(NamedTuple):
    path: str
    body: Any  # the parsed JSON body, None if it did not parse
    status: int  # 0 when the connection was dropped


class LoggedRequest(_Logged):
    """(path, body, status), with the HTTP `method` as an attribute: code written
    when every API request was a POST unpacks three values, and still can."""

    method: str

    def __new__(cls, path: str, body: Any, status: int, method: str = "POST") -> LoggedRequest:
        entry = super().__new__(cls, path, body, status)
        entry.method = method
        return entry

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, **self._asdict()}


_ENCODER = json.JSONEncoder(separators=(",", ":"))


def json_reply(status: int, payload: Any, headers: list[tuple[str, str]] | None = None) -> Reply:
    body = _ENCODER.encode(payload).encode()
    return Reply(status, body, headers=headers or [])


def error_reply(status: int, style: str) -> Reply:
    phrase = status_phrase(status)
    if style == "html":
        return Reply(status, _HTML_ERROR.format(status, phrase).encode(), "text/html")
    if style == "empty":
        return Reply(status, b"", None)
    return json_reply(status, {"message": phrase})


def status_phrase(status: int) -> str:
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


def bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else header.strip()


def is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    return content_type.split(";", 1)[0].strip().lower() == "application/json"
