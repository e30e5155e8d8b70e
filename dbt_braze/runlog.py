"""Run history and the per-model lock, both kept in the `braze_sync_runs` table.

The table is append-only (Spark's parquet tables cannot UPDATE): a run writes
a `running` row when it starts, which is also its claim on the model's lock,
a `running` heartbeat now and then, and one final row with its status and
counts. A run holds the lock while its latest row is `running` and younger
than the lease; of two live claims the older wins, so two syncs that start
together cannot both proceed. A sync killed without a final row loses the
lock when its lease runs out, or at once when the next sync provably runs on
the same machine and in the same pid namespace and finds its process gone.

Each row names its holder: `host:pid`, then what proves it dead to a later
sync, `boot=` (the kernel's boot id), `pidns=` (its pid namespace) and
`start=` (its start time, so that a reused pid is told apart). A hostname and
a pid alone prove nothing: two containers may share a hostname (a fixed
hostname, host networking) while each has its own pids. A holder without the
proof (written by an older version, or on a system without /proc) is never
judged dead: its lease decides.
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
PROOF = frozenset({"boot", "pidns", "start"})  # the holder's fields that can prove it dead
PID_MAX_LIMIT = 4_194_304  # Linux's ceiling on pids (include/linux/threads.h)


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
        kind: str | None = ...,
    ) -> None: ...
    def live_runs(self, model_name: str, lease_seconds: float) -> list[tuple[object, ...]]: ...


def this_holder() -> str:
    """This process as a lock holder: `host:pid`, plus its proof where /proc has it."""
    host, pid = socket.gethostname(), os.getpid()
    namespace, stat = _namespace(), _stat(pid)
    if namespace is None or stat is None:
        return f"{host}:{pid}"
    return f"{host}:{pid} boot={namespace[0]} pidns={namespace[1]} start={stat[1]}"


def holder_is_dead(holder: object) -> bool:
    """True only when the holder provably ran on this machine in our pid namespace
    (same boot id, same namespace) and its process is gone: no such pid, a pid now
    used by a process started at another time, or a zombie. Anything else, an
    unreadable /proc included, leaves the holder alive until its lease runs out."""
    claim = _parse_holder(str(holder))
    if claim is None or _namespace() != (claim["boot"], claim["pidns"]):
        return False
    pid = int(claim["pid"])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # a process of another user: its start time tells
        pass
    stat = _stat(pid)
    if stat is None:  # gone meanwhile, or hidden (/proc mounted with hidepid): cannot tell
        return False
    state, started = stat
    return started != claim["start"] or state == "Z"


def _parse_holder(text: str) -> dict[str, str] | None:
    """The fields of a holder with its proof; None for `host:pid` alone, or garbage."""
    head, *rest = text.split(" ")
    host, _, pid = head.rpartition(":")
    fields = {key: value for key, _, value in (item.partition("=") for item in rest)}
    if not host or not pid.isdecimal() or not 0 < int(pid) <= PID_MAX_LIMIT or not fields.keys() >= PROOF:
        return None
    return {**fields, "pid": pid}


def _namespace() -> tuple[str, str] | None:
    """The kernel's boot id and our pid namespace; None when /proc cannot say, or
    when it is not ours (a /proc of another pid namespace would show other pids)."""
    try:
        if os.readlink("/proc/self") != str(os.getpid()):
            return None
        with open("/proc/sys/kernel/random/boot_id") as file:
            boot = file.read().strip()
        namespace = os.readlink("/proc/self/ns/pid")  # "pid:[4026531836]"
    except OSError:
        return None
    return boot, namespace.removeprefix("pid:[").removesuffix("]")


def _stat(pid: int) -> tuple[str, str] | None:
    """A process's state and start time (fields 3 and 22 of /proc/<pid>/stat, the
    start in clock ticks since boot), or None when unreadable."""
    try:
        with open(f"/proc/{pid}/stat") as file:
            text = file.read()
        # the command name (field 2) may hold spaces and parentheses: count after its last ")"
        fields = text[text.rindex(")") + 2 :].split()
        return fields[0], fields[19]
    except (OSError, ValueError, IndexError):
        return None


class RunLog:
    def __init__(
        self,
        store: RunStore,
        model_name: str,
        *,
        lease_seconds: float,
        kind: str | None = None,  # the model's; None for a claim that is no model's run
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.run_id = uuid.uuid4().hex
        self._kind = kind
        self.holder = this_holder()
        self._store, self._model, self._lease, self._clock = store, model_name, lease_seconds, clock
        # a heartbeat well inside the lease, so that a live sync never looks dead
        self._beat_every = min(MAX_HEARTBEAT_SECONDS, lease_seconds / 3)
        self._last_beat = clock()

    def _record(self, status: str, **kwargs: object) -> None:
        self._store.record_run(
            self.run_id,
            self._model,
            status,
            holder=self.holder,
            kind=self._kind,
            **kwargs,  # type: ignore[arg-type]
        )

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
                    kind=self._kind,
                )
                continue
            self._record("locked", ended=True, error=f"another sync ({run_id}) holds the lock")
            raise LockedError(
                f"{self._model}: another dbt-braze sync of this model is running "
                f"(run {run_id} on {holder}, started {started_at})",
                hint="wait for it to finish; a sync that died releases the lock after "
                f"{int(self._lease)}s without a heartbeat, or at once to a sync on the same machine "
                "and in the same pid namespace (see the braze_sync_runs table)",
            )
        self._last_beat = self._clock()

    def heartbeat(self) -> None:
        if self._clock() - self._last_beat >= self._beat_every:
            self._record("running")
            self._last_beat = self._clock()

    def finish(self, status: str, counts: dict[str, int], error: str | None = None) -> None:
        self._record(status, ended=True, counts=counts, error=(error or "")[:2000] or None)
