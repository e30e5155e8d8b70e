"""What the emulator tests share: one emulator per module over loopback,
reset before each test, a requests session holding the key, and `track`.
The fixtures reach the tests through conftest.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from dbt_braze.emulator import ALL_PERMISSIONS, BrazeEmulator, EmulatorConfig

KEY = "test-key"
TRACK_ONLY_KEY = "track-only-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
DEFAULTS = EmulatorConfig().as_dict()


@pytest.fixture(scope="module")
def server() -> Iterator[BrazeEmulator]:
    keys = {KEY: ALL_PERMISSIONS, TRACK_ONLY_KEY: {"users.track"}}
    with BrazeEmulator(api_keys=keys) as emulator:
        yield emulator


@pytest.fixture
def emu(server: BrazeEmulator) -> BrazeEmulator:
    server.configure(**DEFAULTS)
    server.reset()
    return server


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers.update(AUTH)
        yield session


def track(
    emu: BrazeEmulator, http: requests.Session, *attributes: dict[str, Any], **arrays: Any
) -> requests.Response:
    body = {"attributes": list(attributes), **arrays} if attributes else arrays
    return http.post(f"{emu.url}/users/track", json=body, timeout=5)
