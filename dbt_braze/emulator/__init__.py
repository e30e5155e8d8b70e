"""A strict Braze REST API emulator on a real loopback socket.

    from dbt_braze.emulator import BrazeEmulator, EmulatorConfig

    with BrazeEmulator(config=EmulatorConfig(rate_limit=10, rate_window_seconds=1)) as emu:
        ...  # point the client at emu.url with the key "test-key"
        assert emu.profile("u1") == {"plan": "pro"}

It serves POST /users/track, /users/delete and /users/export/ids, and the
asynchronous catalog item endpoints with `GET /catalogs`, with Braze's
status codes, limits and quirks (see braze-api-notes.md), injects faults on
demand (`EmulatorConfig`), and counts what a client did (`stats()`), including
the two things a client must never do: exceed the batch size and send two
concurrent requests for one user. Inspection endpoints under `/_emulator/`
need no key. Stdlib only; it imports nothing from the dbt_braze client.

Modules: faults.py (knobs, rate limiter, fault decisions), validation.py (one
track object, a delete's targets), state.py (profiles), catalogs.py
(catalogs, their items and rules), counters.py (stats, users in flight),
wire.py (request, reply, logged request), app.py (the request pipeline),
server.py (HTTP and `BrazeEmulator`), cli.py (`python -m dbt_braze.emulator`).
"""

from __future__ import annotations

from .app import ALL_PERMISSIONS
from .cli import main
from .faults import EmulatorConfig
from .server import DEFAULT_API_KEY, BrazeEmulator
from .wire import LoggedRequest

__all__ = [
    "ALL_PERMISSIONS",
    "DEFAULT_API_KEY",
    "BrazeEmulator",
    "EmulatorConfig",
    "LoggedRequest",
    "main",
]
