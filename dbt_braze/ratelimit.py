"""Pacing and retry timing for the Braze client: the client-side limiter and the backoff rules.

Why a client-side limiter at all: the `/users/track` limit (3,000 requests per 3 s per workspace
by default) is shared with the customer's own apps and other integrations, so a sync must be able
to cap itself below it, and slow down for every worker thread once Braze answers 429
(braze-api-notes.md, "Rate limits").

Nothing here sleeps on its own clock: every class and function takes the clock (and the sleep)
it should use, so that tests run without wall time.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

# Objects per /users/track request: 75 on current contracts, 50 on some MAU contracts, so the
# client takes a lower `max_objects` (braze-api-notes.md "POST /users/track"; Braze docs
# `api_limits.md`). Here, not in braze.py, so that settings (and the CLI's --help) can read it
# without loading the HTTP client.
MAX_TRACK_OBJECTS = 75
# The asynchronous catalog item endpoints (POST, PATCH, PUT, DELETE) share this limit, apart from
# /users/track's (notes, "Catalogs"; Braze docs `api_limits.md`).
CATALOG_REQUESTS_PER_MINUTE = 16_000

# Lowest rate (requests per second) repeated 429s can push the limiter down to. Ours, not Braze's:
# one request a second still makes progress under any documented contract.
MIN_ADAPTIVE_RPS = 1.0

# After a 429 the rate climbs back by this fraction of the configured rate per successful request
# (additive increase): from half the rate back to full takes 25 successes.
RECOVERY_STEP_FRACTION = 0.02

# Worker threads that were in flight together all see the same 429; count them as one signal so
# the rate is halved once per burst, not once per thread.
RATE_CUT_COOLDOWN = 1.0

# `X-RateLimit-Reset` is epoch seconds, except on MAU contracts where it is seconds remaining:
# "a reset value above ~10^9 is an epoch, else a delta" (braze-api-notes.md, "Rate limits").
EPOCH_THRESHOLD = 1e9

# Keeps 2**attempt finite; the delay is capped long before this matters.
_MAX_EXPONENT = 32


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep retrying transient failures (429, 5xx, timeouts, dropped connections;
    for events and purchases only those that say nothing was applied, see dbt_braze.braze).

    The n-th wait is `base_delay * 2**n`, jittered by +-`jitter` (a fraction), capped at
    `max_delay`. `max_elapsed` is the budget of one request, retries and waits included; a
    request that would outlast it gives up with `BrazeUnavailable`.
    """

    base_delay: float = 0.5
    max_delay: float = 30.0
    max_elapsed: float = 300.0
    jitter: float = 0.25

    def __post_init__(self) -> None:
        if self.base_delay < 0 or self.max_delay < 0 or self.max_elapsed < 0:
            raise ValueError(f"RetryPolicy delays must be >= 0, got {self!r}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"RetryPolicy.jitter must be in [0, 1), got {self.jitter!r}")

    def backoff(self, attempt: int, uniform: Callable[[float, float], float] = random.uniform) -> float:
        """Seconds to wait after the `attempt`-th consecutive failure (0-based)."""
        delay = self.base_delay * 2.0 ** min(max(attempt, 0), _MAX_EXPONENT)
        if self.jitter:
            delay *= 1 + uniform(-self.jitter, self.jitter)
        return min(self.max_delay, max(0.0, delay))


def wait_from_headers(headers: Mapping[str, str], *, now: float, rate_limited: bool) -> float | None:
    """Seconds Braze asks us to wait before retrying, or None when the headers say nothing usable.

    Looked at, first usable wins: `X-Ratelimit-Retry-After` (seconds, MAU contracts), `Retry-After`
    (seconds or an HTTP-date), and, only on a 429, `X-RateLimit-Reset` (epoch or delta, see
    EPOCH_THRESHOLD) -- on other responses that header is the window reset, not a retry hint.
    Names are matched case-insensitively whatever the mapping; `now` is wall-clock epoch seconds.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    candidates = [("x-ratelimit-retry-after", _seconds), ("retry-after", _retry_after)]
    if rate_limited:
        candidates.append(("x-ratelimit-reset", _reset))
    for name, parse in candidates:
        raw = lowered.get(name)
        if raw is None:
            continue
        wait = parse(raw.strip(), now)
        if wait is not None and wait > 0:
            return wait
    return None


def _seconds(raw: str, now: float) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _retry_after(raw: str, now: float) -> float | None:
    seconds = _seconds(raw, now)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return when.timestamp() - now if when.tzinfo is not None else None


def _reset(raw: str, now: float) -> float | None:
    value = _seconds(raw, now)
    if value is None:
        return None
    return value - now if value > EPOCH_THRESHOLD else value


class RateLimiter:
    """A client-side request rate cap shared by every thread of one sync.

    `requests_per_second=None` sets no cap, but a 429 still pauses every thread until the wait
    Braze asked for is over. With a cap, request starts are spaced `1/rate` apart; a 429 halves
    the rate (never below MIN_ADAPTIVE_RPS) and each success adds a little back, up to the
    configured rate (AIMD, as TCP does it).
    """

    def __init__(
        self,
        requests_per_second: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if requests_per_second is not None and not requests_per_second > 0:
            raise ValueError(f"requests_per_second must be > 0 or None, got {requests_per_second!r}")
        self._configured = requests_per_second
        self._rate = requests_per_second
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_slot = -math.inf
        self._paused_until = -math.inf
        self._last_cut = -math.inf

    @property
    def rate(self) -> float | None:
        """The current cap in requests per second (None: uncapped)."""
        return self._rate

    def acquire(self) -> None:
        """Block until a request may start. The slot is reserved under the lock, the wait is not."""
        with self._lock:
            now = self._clock()
            start = max(now, self._paused_until)
            if self._rate is not None:
                start = max(start, self._next_slot)
                self._next_slot = start + 1.0 / self._rate
        if start > now:
            self._sleep(start - now)

    def on_rate_limited(self, retry_after: float | None = None) -> None:
        """Braze answered 429: slow down, and hold every thread for `retry_after` seconds."""
        with self._lock:
            now = self._clock()
            if retry_after is not None and retry_after > 0:
                self._paused_until = max(self._paused_until, now + retry_after)
            if self._rate is None or self._configured is None:
                return
            if now - self._last_cut < RATE_CUT_COOLDOWN:
                return
            self._last_cut = now
            floor = min(MIN_ADAPTIVE_RPS, self._configured)
            self._rate = max(floor, self._rate / 2)

    def on_success(self) -> None:
        """A request went through: creep back toward the configured rate."""
        with self._lock:
            if self._rate is None or self._configured is None or self._rate >= self._configured:
                return
            step = self._configured * RECOVERY_STEP_FRACTION
            self._rate = min(self._configured, self._rate + step)
