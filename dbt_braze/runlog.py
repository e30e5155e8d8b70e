"""Run history and the per-model lock, both kept in the `braze_sync_runs` table.

The table is append-only (Spark's parquet tables cannot UPDATE): a run writes
a `running` row when it starts, which is also its claim on the model's lock,
a `running` heartbeat at most every HEARTBEAT_SECONDS, and one final row with
its status and counts. A run holds the lock while its latest row is `running`
and younger than the lease; of two live claims the older wins, so two syncs
that start together cannot both proceed. A sync killed without a final row
loses the lock when its lease runs out.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Protocol

from dbt_braze.errors import LockedError

HEARTBEAT_SECONDS = 30.0


class RunStore(Protocol):
    def record_run(self, run_id: str, model_name: str, status: str, *, ended: bool = ...,
                   counts: dict[str, int] | None = ..., error: str | None = ...) -> None: ...
    def live_runs(self, model_name: str, lease_seconds: float) -> list[tuple[object, ...]]: ...


class RunLog:
    def __init__(self, store: RunStore, model_name: str, *, lease_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.run_id = uuid.uuid4().hex
        self._store, self._model, self._lease, self._clock = store, model_name, lease_seconds, clock
        self._last_beat = clock()

    def start(self) -> None:
        """Claim the model; raise LockedError when an older live sync holds it."""
        self._store.record_run(self.run_id, self._model, "running")
        live = self._store.live_runs(self._model, self._lease)
        if live and live[0][0] != self.run_id:
            holder = live[0]
            self._store.record_run(self.run_id, self._model, "locked", ended=True,
                                   error=f"another sync ({holder[0]}) holds the lock")
            raise LockedError(
                f"{self._model}: another dbt-braze sync of this model is running "
                f"(run {holder[0]}, started {holder[1]})",
                hint="wait for it to finish; a sync that died releases the lock after "
                f"{int(self._lease)}s without a heartbeat (see the braze_sync_runs table)",
            )
        self._last_beat = self._clock()

    def heartbeat(self) -> None:
        if self._clock() - self._last_beat >= HEARTBEAT_SECONDS:
            self._store.record_run(self.run_id, self._model, "running")
            self._last_beat = self._clock()

    def finish(self, status: str, counts: dict[str, int], error: str | None = None) -> None:
        self._store.record_run(self.run_id, self._model, status, ended=True, counts=counts,
                               error=(error or "")[:2000] or None)
