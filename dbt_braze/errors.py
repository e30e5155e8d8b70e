"""The one exception tree of dbt-braze.

    DbtBrazeError                 base; carries the CLI exit code
    ├── ConfigError               exit 2: the user must change something first
    │   ├── MetaValidationError   invalid `braze` meta blocks (every problem at once)
    │   ├── MissingSettingError   a required environment variable or option is absent
    │   └── NotBuiltError         no manifest or no pending-changes relation: run `dbt run`
    └── SyncError                 exit 1: the sync could not finish; what was not
        │                         delivered stays pending
        ├── BrazeError            Braze answered in a way we cannot get past
        │   ├── BrazeAuthError    401/403: wrong key, wrong cluster or missing permission
        │   ├── BrazeUnavailable  transient failures outlasted the retry budget
        │   ├── BrazeTLSError     the endpoint's certificate failed verification (never retried)
        │   └── BrazeRequestError another 4xx we cannot split our way out of
        ├── WarehouseError        the warehouse refused a read or a write
        └── LockedError           another sync of the same model is running

Transient conditions (429, 5xx, timeouts, dropped connections) never escape
the HTTP client as exceptions: it retries them, and only when the retry
budget is spent does it raise `BrazeUnavailable`.

Messages say what went wrong, where, and how to fix it. They never contain the
Braze API key: Braze echoes the key in some 401 bodies, so response bodies of
auth failures are never quoted.
"""

from __future__ import annotations

import json

EXIT_OK = 0
EXIT_SYNC_FAILED = 1
EXIT_USAGE = 2


class DbtBrazeError(Exception):
    """Base class; `exit_code` is what the CLI exits with."""

    exit_code = EXIT_SYNC_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class ConfigError(DbtBrazeError):
    exit_code = EXIT_USAGE


class MetaValidationError(ConfigError):
    """One or more `braze` blocks are invalid; `problems` lists every one."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            f"invalid braze configuration ({len(self.problems)} problem(s)):\n{lines}",
            hint="fix the schema.yml meta blocks above, then run `dbt-braze validate`",
        )


class MissingSettingError(ConfigError):
    pass


class NotBuiltError(ConfigError):
    pass


class SyncError(DbtBrazeError):
    exit_code = EXIT_SYNC_FAILED


class BrazeError(SyncError):
    pass


class BrazeAuthError(BrazeError):
    def __init__(self, message: str, *, status: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class BrazeUnavailable(BrazeError):
    pass


class BrazeTLSError(BrazeError):
    pass


class BrazeRequestError(BrazeError):
    def __init__(self, message: str, *, status: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class WarehouseError(SyncError):
    pass


class LockedError(SyncError):
    pass


# Real REST keys are 36-character UUIDs. Masking a very short "key" would
# garble every message (each "k" of a one-letter key) while hiding nothing.
MIN_REDACTED_LENGTH = 6


def redact(text: str, secret: str) -> str:
    """`text` with every occurrence of `secret` masked (also in its JSON-escaped form).

    The one redaction helper: the Braze client applies it to every part of a response as it
    arrives (`BrazeClient._read`), and the CLI to everything it writes to stdout and stderr.
    """
    if len(secret) < MIN_REDACTED_LENGTH:
        return text
    text = text.replace(secret, "***")
    escaped = json.dumps(secret)[1:-1]
    return text.replace(escaped, "***") if escaped != secret else text
