"""Run history and the per-model lock, both kept in the `braze_sync_runs` table.

The table is append-only (Spark's parquet tables cannot UPDATE): a run writes
a `running` row when it starts, which is also its claim on the model's lock,
a `running` heartbeat now and then, and one final row with its status and
counts. A run holds the lock while its latest row is `running` and younger
than the lease; of two live claims the older wins, so two syncs that start
together cannot both proceed. A sync killed without a final row loses the
lock when its lease runs out, or at once when the next sync runs on the same
host and finds its process gone (each row names its holder, `host:pid`).
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import Protocol

from dbt_braze.errors import LockedError

MAX_HEARTBEAT_SECONDS = 30.0


class RunStore(Protocol):
    def record_run(
        self,
        run_id: str,
        model_name: str,
        status: str,
        *,
        holder: str,
        ended: bool = ...,
        counts: dict[str, int] | None = ...,
        error: str | None = ...,
    ) -> None: ...
    def live_runs(self, model_name: str, lease_seconds: float) -> list[tuple[object, ...]]: ...


def this_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def holder_is_dead(holder: object) -> bool:
    """True only when the holder ran on this host and its process is gone."""
    host, _, pid = str(holder).rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, under another user
        return False
    return False


class RunLog:
    def __init__(
        self,
        store: RunStore,
        model_name: str,
        *,
        lease_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.run_id = uuid.uuid4().hex
        self.holder = this_holder()
        self._store, self._model, self._lease, self._clock = store, model_name, lease_seconds, clock
        # a heartbeat well inside the lease, so that a live sync never looks dead
        self._beat_every = min(MAX_HEARTBEAT_SECONDS, lease_seconds / 3)
        self._last_beat = clock()

    def _record(self, status: str, **kwargs: object) -> None:
        self._store.record_run(self.run_id, self._model, status, holder=self.holder, **kwargs)  # type: ignore[arg-type]

    def start(self) -> None:
        """Claim the model; raise LockedError when an older live sync holds it."""
        self._record("running")
        for run_id, started_at, _, holder in self._store.live_runs(self._model, self._lease):
            if run_id == self.run_id:
                break
            if holder_is_dead(holder):
                self._store.record_run(
                    str(run_id),
                    self._model,
                    "interrupted",
                    holder=str(holder),
                    ended=True,
                    error="its process was gone; lock taken over",
                )
                continue
            self._record("locked", ended=True, error=f"another sync ({run_id}) holds the lock")
            raise LockedError(
                f"{self._model}: another dbt-braze sync of this model is running "
                f"(run {run_id} on {holder}, started {started_at})",
                hint="wait for it to finish; a sync that died releases the lock after "
                f"{int(self._lease)}s without a heartbeat (see the braze_sync_runs table)",
            )
        self._last_beat = self._clock()

    def heartbeat(self) -> None:
        if self._clock() - self._last_beat >= self._beat_every:
            self._record("running")
            self._last_beat = self._clock()

    def finish(self, status: str, counts: dict[str, int], error: str | None = None) -> None:
        self._record(status, ended=True, counts=counts, error=(error or "")[:2000] or None)
