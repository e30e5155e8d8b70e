"""What can go wrong between a client and Braze, on demand.

`EmulatorConfig` holds every knob; its defaults are a well-behaved Braze
workspace on a standard contract. `FaultInjector` turns the knobs into
decisions (scripted statuses, random 5xx, dropped connections, latency) from
one seeded RNG, so a test that sets `seed` gets the same sequence of faults
on every run as long as its requests arrive in the same order.
`RateWindow` is the fixed window Braze documents for `/users/track`; it reads
the time from an injectable clock (epoch seconds), so tests need not wait.

Random draws are made only for knobs that are switched on: adding a fault
with rate 0 never shifts the sequence of the others.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields

# Braze documents these; each is a default knob value, not a hard limit.
DEFAULT_MAX_OBJECTS = 75  # api_limits.md: 75 attributes+events+purchases per request
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024  # api_limits.md: 4 MB per request
DEFAULT_RATE_LIMIT = 3000  # /users/track: 3,000 requests ...
DEFAULT_RATE_WINDOW_SECONDS = 3.0  # ... per 3 seconds, per workspace
DEFAULT_CATALOG_RATE_LIMIT = 16000  # asynchronous catalog item endpoints, shared: 16,000 ...
DEFAULT_CATALOG_LIST_RATE_LIMIT = 50  # GET /catalogs: 50 ...
DEFAULT_CATALOG_RATE_WINDOW_SECONDS = 60.0  # ... requests per minute

ERROR_BODY_STYLES = ("json", "html", "empty")
RESET_STYLES = ("epoch", "delta")


@dataclass(frozen=True)
class EmulatorConfig:
    """Every behaviour knob of the emulator; defaults = a well-behaved Braze.

    Rates are fractions in [0, 1]; times are milliseconds unless the name says
    seconds. Scope: `rate_limit`, the object limit and `sink_mode` concern
    `/users/track` only; the drops and the 504s after applying concern
    `/users/track` and the catalog item endpoints; `catalog_rate_limit` the
    catalog item endpoints (one bucket for the four methods),
    `catalog_list_rate_limit` `GET /catalogs`, both per
    `catalog_rate_window_seconds`; `scripted_statuses`, `error_rate` and
    latency concern every API endpoint (never `/_emulator/`).

    `scripted_statuses` is consumed by the next authenticated, well-formed API
    requests, one status each: non-2xx ones are answered without applying
    anything (a 429 with rate-limit headers, 5xx with `error_body`), 2xx ones
    are processed normally and answered with that status (202 with Braze's
    maintenance body `{"message": "queued"}`).

    `drop_*_apply_rate` close the connection without any answer, before or
    after the profiles were updated: the client sees a connection error and
    cannot know the outcome. `gateway_timeout_after_apply_rate` answers 504
    (with `error_body`) after applying, as a gateway that gave up waiting on
    Braze: the outcome is just as unknown. `sink_mode` authenticates, counts
    objects and data points and answers 201, storing nothing and validating
    nothing.
    `echo_key_in_401` reproduces Braze's `Invalid API key: <key>` body.
    """

    max_objects_per_request: int = DEFAULT_MAX_OBJECTS
    objects_limit_per_array: bool = False  # legacy contracts: the limit applies per array
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    rate_limit: int | None = DEFAULT_RATE_LIMIT  # None = unlimited, no rate-limit headers
    rate_window_seconds: float = DEFAULT_RATE_WINDOW_SECONDS
    catalog_rate_limit: int | None = DEFAULT_CATALOG_RATE_LIMIT  # None = unlimited
    catalog_list_rate_limit: int | None = DEFAULT_CATALOG_LIST_RATE_LIMIT  # None = unlimited
    catalog_rate_window_seconds: float = DEFAULT_CATALOG_RATE_WINDOW_SECONDS
    rate_limit_reset_style: str = "epoch"  # "epoch" (standard) or "delta" (MAU contracts)
    retry_after_header: bool = False  # on 429 also send X-Ratelimit-Retry-After and Retry-After
    error_rate: float = 0.0
    error_status: int = 503
    error_body: str = "json"  # "json" | "html" | "empty"
    drop_before_apply_rate: float = 0.0
    drop_after_apply_rate: float = 0.0
    gateway_timeout_after_apply_rate: float = 0.0
    latency_ms: float = 0.0
    latency_spike_rate: float = 0.0
    latency_spike_ms: float = 0.0
    scripted_statuses: Sequence[int] = field(default_factory=tuple)
    seed: int | None = None
    sink_mode: bool = False
    echo_key_in_401: bool = True
    requests_log_size: int = 200

    def __post_init__(self) -> None:
        object.__setattr__(self, "scripted_statuses", tuple(self.scripted_statuses))
        problems = list(_problems(self))
        if problems:
            raise ValueError("invalid emulator config: " + "; ".join(problems))

    @classmethod
    def knob_names(cls) -> frozenset[str]:
        return frozenset(f.name for f in fields(cls))

    def as_dict(self) -> dict[str, object]:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["scripted_statuses"] = list(self.scripted_statuses)
        return values


def _problems(cfg: EmulatorConfig) -> list[str]:
    problems: list[str] = []
    for name in (
        "error_rate",
        "drop_before_apply_rate",
        "drop_after_apply_rate",
        "gateway_timeout_after_apply_rate",
        "latency_spike_rate",
    ):
        value = getattr(cfg, name)
        if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            problems.append(f"{name}={value!r} must be a fraction between 0 and 1")
    for name in ("latency_ms", "latency_spike_ms"):
        value = getattr(cfg, name)
        if not isinstance(value, (int, float)) or value < 0:
            problems.append(f"{name}={value!r} must be a number >= 0")
    for name in ("max_objects_per_request", "max_body_bytes", "requests_log_size"):
        value = getattr(cfg, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            problems.append(f"{name}={value!r} must be an integer >= 0")
    for name in ("rate_limit", "catalog_rate_limit", "catalog_list_rate_limit"):
        value = getattr(cfg, name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            problems.append(f"{name}={value!r} must be an integer >= 0 or None")
    for name in ("rate_window_seconds", "catalog_rate_window_seconds"):
        value = getattr(cfg, name)
        if not isinstance(value, (int, float)) or value <= 0:
            problems.append(f"{name}={value!r} must be > 0")
    if cfg.rate_limit_reset_style not in RESET_STYLES:
        problems.append(
            f"rate_limit_reset_style={cfg.rate_limit_reset_style!r} must be one of {RESET_STYLES}"
        )
    if cfg.error_body not in ERROR_BODY_STYLES:
        problems.append(f"error_body={cfg.error_body!r} must be one of {ERROR_BODY_STYLES}")
    if not _is_status(cfg.error_status) or cfg.error_status < 400:
        problems.append(f"error_status={cfg.error_status!r} must be an HTTP error status")
    bad = [s for s in cfg.scripted_statuses if not _is_status(s)]
    if bad:
        problems.append(f"scripted_statuses {bad!r} must be HTTP statuses between 200 and 599")
    return problems


def _is_status(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 200 <= value <= 599


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    window_end: float  # epoch seconds
    now: float

    def headers(self, cfg: EmulatorConfig) -> list[tuple[str, str]]:
        """The headers Braze sends; on a 429 also the retry hints if configured."""
        seconds_left = max(0, math.ceil(self.window_end - self.now))
        reset = math.ceil(self.window_end) if cfg.rate_limit_reset_style == "epoch" else seconds_left
        headers = [
            ("X-RateLimit-Limit", str(self.limit)),
            ("X-RateLimit-Remaining", str(self.remaining)),
            ("X-RateLimit-Reset", str(reset)),
        ]
        if not self.allowed and cfg.retry_after_header:
            wait = str(max(1, seconds_left))
            headers += [("X-Ratelimit-Retry-After", wait), ("Retry-After", wait)]
        return headers


class RateWindow:
    """Fixed window: the first request after a window ends opens the next one.

    Every request that reaches the limiter counts, refused ones included,
    as a real per-workspace counter would.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._window_start: float | None = None
        self._count = 0

    def reset(self) -> None:
        with self._lock:
            self._window_start = None
            self._count = 0

    def hit(self, limit: int, window_seconds: float) -> RateDecision:
        now = self._clock()
        with self._lock:
            if self._window_start is None or now >= self._window_start + window_seconds:
                self._window_start = now
                self._count = 0
            self._count += 1
            count, end = self._count, self._window_start + window_seconds
        return RateDecision(count <= limit, limit, max(0, limit - count), end, now)

    def peek(self, limit: int, window_seconds: float) -> RateDecision:
        """The current window without counting a request (for scripted 429s)."""
        now = self._clock()
        with self._lock:
            start, count = self._window_start, self._count
        if start is None or now >= start + window_seconds:
            start, count = now, 0
        return RateDecision(False, limit, max(0, limit - count), start + window_seconds, now)


class FaultInjector:
    """Scripted statuses and random faults, drawn from one seeded RNG."""

    def __init__(self, cfg: EmulatorConfig) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(cfg.seed)
        self._script: deque[int] = deque(cfg.scripted_statuses)

    def reconfigure(self, new: EmulatorConfig, changed: set[str]) -> None:
        with self._lock:
            if "seed" in changed:
                self._rng = random.Random(new.seed)
            if "scripted_statuses" in changed:
                self._script = deque(new.scripted_statuses)

    def next_scripted(self) -> int | None:
        if not self._script:  # fast path without the lock; popleft below re-checks
            return None
        with self._lock:
            return self._script.popleft() if self._script else None

    def scripted_remaining(self) -> int:
        with self._lock:
            return len(self._script)

    def roll(self, rate: float) -> bool:
        if rate <= 0.0:
            return False
        with self._lock:
            return self._rng.random() < rate

    def delay_seconds(self, cfg: EmulatorConfig) -> float:
        delay = cfg.latency_ms
        if self.roll(cfg.latency_spike_rate):
            delay += cfg.latency_spike_ms
        return delay / 1000.0
