"""How the objects of a model name their user (contract, "Identifiers"): the identifier
member of an object, the state keys' prefix, and the values Braze would refuse. Shared by
the kinds that address users: `users`, `events` and `purchases`."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from dbt_braze.config import IdField, ModelSync
from dbt_braze.errors import SyncError
from dbt_braze.kinds.base import LocalRejection

JsonValue = Any

# E.164: a `+`, then the country code and number, 7 to 15 digits, the first not 0
# (ITU-T E.164 caps numbers at 15 digits; Niue's and Tokelau's have 7), nothing else:
# no spaces, dashes or brackets. Braze asks for "a valid number", E.164 recommended
# (braze-api-notes.md, "Identifiers other than external_id"); we send only E.164, so that
# one number is never two users (`+1 415...` and `+1415...`).
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
# An e-mail address Braze takes: no whitespace, a valid host (braze-api-notes.md,
# "Values"). The host: two labels or more, each letters, digits and inner hyphens.
_HOST_LABEL = re.compile(r"[^\W_](?:[^\W_]|-)*(?<!-)")
MAX_EMAIL_LENGTH = 254  # RFC 5321's limit on an address in a mail path


@dataclass(frozen=True)
class Addressing:
    """How the objects of a model name their user: the field, and the state keys' prefix."""

    field: IdField
    key_prefix: str = ""
    alias_label: str | None = None

    @classmethod
    def of(cls, model: ModelSync) -> Addressing:
        return cls(model.id_field, model.key_prefix, model.alias_label)

    def value(self, key: str) -> str:
        """The identifier a state key names. A key without this model's prefix was computed
        for another identifier: the pending changes predate the model's current block."""
        if not key.startswith(self.key_prefix):
            raise SyncError(
                f"a pending change is keyed {key!r}, not by {self.field}: the pending changes "
                "were computed before the model's identifier changed",
                hint="run `dbt run` for this model (its on-run-end hook recomputes them), then sync",
            )
        return key[len(self.key_prefix) :]

    def member(self, value: str) -> dict[str, JsonValue]:
        """The object's identifier member: `{"email": "a@b.c"}`, `{"user_alias": {...}}`."""
        if self.field == "user_alias":
            return {"user_alias": {"alias_name": value, "alias_label": self.alias_label}}
        return {self.field: value}

    def opening(self, value: str, *, update_only: bool) -> bytes:
        """What precedes an object's attributes: `{`, the identifier, the update-only flag
        (explicitly false for an alias in upsert: Braze's default for aliases is update-only), `,`."""
        head, tail = self.framing(update_only=update_only)
        # json.dumps' default encoder is cached (other options build one per call); \u escapes are JSON too
        return head + json.dumps(value).encode() + tail

    def framing(self, *, update_only: bool) -> tuple[bytes, bytes]:
        """`opening` without its identifier's JSON string: what goes before it and after it,
        the same for every object of a stream (so built once, not per row)."""
        if self.field == "user_alias":
            head = b'{"user_alias":{"alias_name":'
            member_end = b',"alias_label":' + json.dumps(self.alias_label).encode() + b"}"
        else:
            head, member_end = b'{"' + self.field.encode() + b'":', b""
        if update_only:
            flag = b',"_update_existing_only":true'
        else:
            flag = b',"_update_existing_only":false' if self.field == "user_alias" else b""
        return head, member_end + flag + b","

    @property
    def checked(self) -> bool:
        """Whether `check` can refuse a value (e-mail addresses and phone numbers)."""
        return self.field in ("email", "phone")

    def check(self, value: str) -> None:
        """Raise LocalRejection for an e-mail address or phone number Braze would refuse."""
        if self.field == "phone" and not E164.fullmatch(value):
            raise LocalRejection(
                f"phone {value!r} is not in E.164: a + and 7 to 15 digits, the first not 0, "
                "with no spaces or other signs (e.g. +14155550123)"
            )
        if self.field == "email":
            problem = email_problem(value)
            if problem:
                raise LocalRejection(f"email {value!r} is not an address Braze takes: {problem}")


def email_problem(address: str) -> str | None:
    """Why Braze would refuse this e-mail address, or None."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in address):
        return "it holds whitespace or a control character"
    if len(address) > MAX_EMAIL_LENGTH:
        return f"it is longer than {MAX_EMAIL_LENGTH} characters"
    if address.count("@") != 1:
        return "it needs exactly one @" if "@" in address else "it has no @"
    local, host = address.split("@")
    if not local:
        return "nothing before the @"
    if not host:
        return "no host after the @"
    labels = host.split(".")
    if len(labels) < 2:
        return f"host {host!r} has no dot (a host such as example.com)"
    if not all(_HOST_LABEL.fullmatch(label) for label in labels):
        return f"host {host!r} is not a host name (letters, digits and inner hyphens, between dots)"
    return None
