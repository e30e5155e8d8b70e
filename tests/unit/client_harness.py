"""What the Braze client tests share: the endpoint and key, fake time, a client on a scripted
pool (tests/fakes.py `FakePool`), and the fixture `t`, which reaches the tests through
conftest.py."""

from __future__ import annotations

from typing import Any

import pytest
from urllib3.exceptions import ReadTimeoutError

from dbt_braze.braze import BrazeClient, RetryPolicy

from fakes import FakePool

ENDPOINT = "https://rest.iad-01.braze.com"
KEY = "a1b2c3d4-e5f6-7890-abcd-ef0123456789"
NO_JITTER = RetryPolicy(jitter=0.0)
WALL_START = 1_700_000_000.0


def read_timeout() -> ReadTimeoutError:
    return ReadTimeoutError(None, "/users/track", "Read timed out. (read timeout=60.0)")  # type: ignore[arg-type]


class FakeTime:
    """Monotonic clock, wall clock and sleep that move together, without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def wall_clock(self) -> float:
        return WALL_START + (self.now - 1000.0)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_client(fake: FakePool, time: FakeTime, **kwargs: Any) -> BrazeClient:
    kwargs.setdefault("retry", NO_JITTER)
    return BrazeClient(
        ENDPOINT + "/",
        KEY,
        pool=fake,
        sleep=time.sleep,
        clock=time.clock,
        wall_clock=time.wall_clock,
        **kwargs,
    )


@pytest.fixture
def t() -> FakeTime:
    return FakeTime()
