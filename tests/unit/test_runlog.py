"""When is a lock holder dead? Only when that is provable on this machine.

The holders here are those of real processes (children that print
`this_holder()`), some with one field changed to stand for a process
elsewhere: another pid namespace, another start time.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from dbt_braze.runlog import holder_is_dead, this_holder

PRINT_HOLDER = "from dbt_braze.runlog import this_holder; print(this_holder(), flush=True)"


def with_field(holder: str, key: str, value: str) -> str:
    return " ".join(f"{key}={value}" if part.startswith(f"{key}=") else part for part in holder.split(" "))


def field(holder: str, key: str) -> str:
    return next(part.partition("=")[2] for part in holder.split(" ") if part.startswith(f"{key}="))


@pytest.fixture
def dead_holder() -> str:
    """The holder of a process of ours that has exited (and been reaped)."""
    return subprocess.run(
        [sys.executable, "-c", PRINT_HOLDER], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def live_child() -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A process of ours that keeps running, and its holder."""
    child = subprocess.Popen(
        [sys.executable, "-c", PRINT_HOLDER + "; import sys; sys.stdin.read()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    try:
        yield child, child.stdout.readline().strip()
    finally:
        child.kill()
        child.wait()


def test_this_holder_is_readable_and_alive() -> None:
    holder = this_holder()
    host_pid, *proof = holder.split(" ")
    assert host_pid == f"{socket.gethostname()}:{os.getpid()}"
    assert [p.partition("=")[0] for p in proof] == ["boot", "pidns", "start"]
    assert not holder_is_dead(holder)


def test_a_process_of_ours_that_is_gone_is_dead(dead_holder: str) -> None:
    assert holder_is_dead(dead_holder)


def test_same_host_in_another_pid_namespace_is_alive(dead_holder: str) -> None:
    """Two containers with one hostname: its pid means nothing here, gone or not."""
    assert not holder_is_dead(with_field(dead_holder, "pidns", "4026532999"))
    assert not holder_is_dead(with_field(this_holder(), "pidns", "4026532999"))


def test_another_boot_is_alive(dead_holder: str) -> None:
    assert not holder_is_dead(with_field(dead_holder, "boot", "00000000-0000-0000-0000-000000000000"))


def test_a_live_process_is_alive_and_a_reused_pid_is_dead(
    live_child: tuple[subprocess.Popen[str], str],
) -> None:
    child, holder = live_child
    assert not holder_is_dead(holder)
    # the same pid, started at another time: the holder is gone and its pid reused
    assert holder_is_dead(with_field(holder, "start", str(int(field(holder, "start")) - 1)))
    # killed but not yet reaped by its parent: a zombie holds nothing
    child.send_signal(signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not holder_is_dead(holder):
        assert time.monotonic() < deadline, "a zombie holder is still judged alive"
        time.sleep(0.02)
    child.wait()
    assert holder_is_dead(holder)


def test_old_format_is_alive_even_when_its_pid_is_gone(dead_holder: str) -> None:
    """`host:pid` rows of older versions carry no proof: their lease decides."""
    assert not holder_is_dead(dead_holder.split(" ")[0])


@pytest.mark.parametrize(
    "garbage",
    [None, "", "no-colon", "host:", "host:123 boot pidns start", "host:123 boot=x pidns=y", "a:1 b:2 c:3"],
)
def test_garbage_is_alive(garbage: object) -> None:
    assert not holder_is_dead(garbage)


@pytest.mark.parametrize("pid", ["", "abc", "0", "-1", "99999999999999999999999", "²", "1.5"])
def test_a_broken_pid_is_alive_even_with_our_proof(pid: str, dead_holder: str) -> None:
    host, _, proof = dead_holder.partition(":")
    assert not holder_is_dead(f"{host}:{pid} {proof.partition(' ')[2]}")


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1)")
def test_a_real_process_in_another_pid_namespace_is_alive() -> None:
    """A holder written in its own pid namespace (as in a container) is pid 1 there;
    our pid 1 is another process, started at another time: only the namespace
    tells that the holder is not ours to judge."""
    run = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--pid", "--fork", "--mount-proc"]
        + [sys.executable, "-c", PRINT_HOLDER],
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        pytest.skip(f"no pid namespace for us here: {run.stderr.strip()}")
    holder = run.stdout.strip()
    assert holder.startswith(f"{socket.gethostname()}:1 ")
    assert field(holder, "pidns") != field(this_holder(), "pidns")
    assert not holder_is_dead(holder)


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1)")
def test_a_proc_of_another_pid_namespace_proves_nothing() -> None:
    """In a new pid namespace that still sees the old /proc, our pid is not the
    one /proc shows: the holder carries no proof rather than a false one."""
    run = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--pid", "--fork", sys.executable, "-c", PRINT_HOLDER],
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        pytest.skip(f"no pid namespace for us here: {run.stderr.strip()}")
    assert run.stdout.strip() == f"{socket.gethostname()}:1"
