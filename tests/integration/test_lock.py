"""The per-model lock against claims of other processes, as `dbt-braze sync` meets them.

A claim is a `running` row in braze_sync_runs within its lease. Its holder is
that of a real process of ours that has exited, written as it is or with its
pid namespace changed to stand for a container that shares our hostname.
"""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from dbt_braze.emulator import BrazeEmulator

from harness import DbtProject, assert_braze_equals_model, braze_model, users_sql

pytestmark = pytest.mark.integration

LOCKED = "braze_users: another dbt-braze sync of this model is running"


def exited_holder() -> str:
    """The holder of a process of ours (same machine, same pid namespace) that is gone."""
    code = "from dbt_braze.runlog import this_holder; print(this_holder())"
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return child.stdout.strip()


def claim(project: DbtProject, run_id: str, holder: str) -> None:
    """A sync that claimed braze_users just now and is, as far as rows tell, still running."""
    project.query("delete from braze_sync_runs where status = 'running'")
    project.query(f"""
        insert into braze_sync_runs (run_id, model_name, status, started_at, recorded_at, holder)
        values ('{run_id}', 'braze_users', 'running', timezone('UTC', now()), timezone('UTC', now()),
                '{holder}')""")


def test_a_claim_is_taken_over_only_from_a_provably_dead_holder(
    project: DbtProject, emulator: BrazeEmulator
) -> None:
    project.write_model(users_sql(10))
    project.write_schema([braze_model()])
    project.dbt("run")
    assert project.braze("status").exit_code == 0  # creates braze_sync_runs
    dead = exited_holder()
    host_pid, _, proof = dead.partition(" ")
    assert host_pid.startswith(f"{socket.gethostname()}:") and "pidns=" in proof

    # A container sharing our hostname, its pid gone here but maybe alive in its own pid
    # namespace: as an older version wrote it (`host:pid`, no proof of where it ran), and
    # with our boot id but another pid namespace. Both keep the lock within their lease.
    other_namespace = " ".join(
        "pidns=4026532999" if part.startswith("pidns=") else part for part in dead.split(" ")
    )
    for run_id, holder in (("old-format", host_pid), ("other-namespace", other_namespace)):
        claim(project, run_id, holder)
        result = project.braze("sync")
        assert result.exit_code == 1, result.output
        assert LOCKED in result.output and f"run {run_id} on {holder}," in result.output
        assert "Traceback" not in result.output
        assert emulator.stats()["requests"] == 0
    assert project.query("select count(*) from braze_sync_runs where status = 'locked'") == [(2,)]

    # a process of our machine and pid namespace that is gone: its claim is taken over at once
    claim(project, "dead", dead)
    result = project.braze("sync")
    assert result.exit_code == 0, result.output
    assert_braze_equals_model(emulator, 10)
    rows = project.query("select status, error from braze_sync_runs where run_id = 'dead' order by 1 desc")
    assert rows == [("running", None), ("interrupted", "its process was gone; lock taken over")]


@pytest.mark.parametrize("warehouse", [("duckdb", None)], ids=["duckdb"])
def test_a_duckdb_file_held_elsewhere_names_the_real_target(project: DbtProject) -> None:
    """The profile's target is `dev` and no --target is given: the error names `dev`."""
    project.write_model(users_sql(3))
    project.write_schema([braze_model()])
    project.dbt("parse")
    project.query("select 1")  # creates the database file
    code = "import duckdb, sys; db = duckdb.connect(sys.argv[1]); print('open', flush=True); sys.stdin.read()"
    writer = subprocess.Popen(
        [sys.executable, "-c", code, str(project.db_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "open"
        result = project.braze("status")
    finally:
        writer.kill()
        writer.wait()
    assert result.exit_code == 1, result.output
    assert "cannot use the warehouse of target dev:" in result.output
    assert "holds the DuckDB file" in result.output and "Traceback" not in result.output
