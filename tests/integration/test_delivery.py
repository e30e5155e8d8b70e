"""Delivery guarantees under faults, rate limits, crashes and warehouse failures.

Every case ends with Braze equal to the model and nothing lost; the figures
printed (`-s`) are the objects each fault made us send again.
"""

from __future__ import annotations

import signal
import time

import pytest

from dbt_braze.emulator import BrazeEmulator

from harness import (
    ATTRIBUTES,
    DbtProject,
    assert_braze_equals_model,
    braze_model,
    users_sql,
)

pytestmark = pytest.mark.integration

N = 600  # 8 requests of 75


def build(project: DbtProject, n: int = N, **block: object) -> None:
    project.write_model(users_sql(n))
    project.write_schema([braze_model(**block)])
    project.dbt("run")


def report(fault: str, emulator: BrazeEmulator, n: int) -> int:
    resent = emulator.stats()["objects_sent"] - n
    print(f"\nFAULT {fault}: changes lost 0, objects re-sent {resent}")
    return resent


@pytest.mark.parametrize(
    ("fault", "knobs", "evidence"),
    [
        ("25% 503s", {"error_rate": 0.25, "seed": 7}, ("status", 503)),
        (
            "429 storm (rate limit 4 per 0.5 s)",
            {"rate_limit": 4, "rate_window_seconds": 0.5},
            ("rate_limited", None),
        ),
        (
            "429 storm, MAU-style Retry-After",
            {
                "rate_limit": 4,
                "rate_window_seconds": 1.0,
                "retry_after_header": True,
                "rate_limit_reset_style": "delta",
            },
            ("rate_limited", None),
        ),
        (
            "5% connections dropped after apply",
            {"drop_after_apply_rate": 0.05, "seed": 11},
            ("dropped_connections", None),
        ),
        (
            "5% connections dropped before apply",
            {"drop_before_apply_rate": 0.05, "seed": 5},
            ("dropped_connections", None),
        ),
        (
            "latency spikes (20% at 400 ms)",
            {"latency_spike_rate": 0.2, "latency_spike_ms": 400, "seed": 3},
            None,
        ),
        (
            "HTML 502 bodies",
            {"error_rate": 0.25, "error_status": 502, "error_body": "html", "seed": 9},
            ("status", 502),
        ),
        (
            "empty 504 bodies",
            {"error_rate": 0.25, "error_status": 504, "error_body": "empty", "seed": 9},
            ("status", 504),
        ),
    ],
)
def test_faults_lose_nothing(
    project: DbtProject,
    emulator: BrazeEmulator,
    fault: str,
    knobs: dict[str, object],
    evidence: tuple[str, int | None] | None,
) -> None:
    build(project)
    emulator.configure(**knobs)
    # 25 objects a request: 24 requests, enough for every fault to strike
    result = project.braze("sync", "--concurrency", "4", "--batch-size", "25")
    assert result.exit_code == 0, result.output
    stats = emulator.stats()
    if evidence is not None:  # the fault really happened
        counter, status = evidence
        fired = stats["status_counts"].get(status, 0) if counter == "status" else stats[counter]
        assert fired > 0, f"{fault} never fired: {stats}"
    emulator.configure(error_rate=0.0, drop_after_apply_rate=0.0, drop_before_apply_rate=0.0, rate_limit=None)
    assert_braze_equals_model(emulator, N)
    assert emulator.stats()["same_user_overlaps"] == 0
    resent = report(fault, emulator, N)
    assert resent <= N  # each failed request is retried, nothing more
    # the state is consistent: nothing is left pending
    requests = emulator.stats()["requests"]
    assert project.braze("sync").exit_code == 0
    assert emulator.stats()["requests"] == requests


def test_retry_budget_exhausted_exits_1_and_keeps_changes_pending(
    project: DbtProject, emulator: BrazeEmulator
) -> None:
    build(project)
    emulator.configure(error_rate=1.0)
    result = project.braze("sync", "--max-retry-seconds", "2")
    assert result.exit_code == 1
    assert "unreachable" in result.output.lower()
    assert project.query("select count(*) from braze_state") == [(0,)]
    emulator.configure(error_rate=0.0)
    assert project.braze("sync").exit_code == 0
    assert_braze_equals_model(emulator, N)


def test_permission_denied_exits_1_naming_the_permission(
    project: DbtProject, emulator: BrazeEmulator
) -> None:
    from harness import API_KEY

    build(project)
    emulator.stop()
    limited = BrazeEmulator(api_keys={API_KEY: {"users.export.ids"}}).start()
    try:
        result = project.braze("sync", env={"BRAZE_REST_ENDPOINT": limited.url})
    finally:
        limited.stop()
    assert result.exit_code == 1
    assert "users.track" in result.output
    assert API_KEY not in result.output


@pytest.mark.parametrize("kill_after_requests", [1, 6, 15])
def test_sigkill_at_any_moment_then_rerun(
    project: DbtProject, emulator: BrazeEmulator, kill_after_requests: int
) -> None:
    n, window, concurrency = 1500, 150, 2  # 20 requests
    build(project, n=n)
    emulator.configure(latency_ms=40)
    process = project.spawn_braze(
        "sync", "--checkpoint-objects", str(window), "--concurrency", str(concurrency)
    )
    deadline = time.monotonic() + 60
    while emulator.stats()["track_requests"] < kill_after_requests and time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    sent_before = emulator.stats()["objects_received"]
    emulator.configure(latency_ms=0)
    rerun = project.spawn_braze("sync")
    output, _ = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, output
    assert_braze_equals_model(emulator, n)
    resent = emulator.stats()["objects_received"] - n
    # at most two checkpoint windows (one being written, one filling) plus what was
    # in flight (two requests per worker) is sent again
    bound = 2 * window + 2 * concurrency * 75 + 75
    print(
        f"\nFAULT SIGKILL after {kill_after_requests} requests ({sent_before} objects sent): "
        f"changes lost 0, objects re-sent {resent} (bound {bound})"
    )
    assert resent <= bound
    history = project.query("select status from braze_sync_runs where status = 'interrupted'")
    assert history, "the killed run is recorded as interrupted"


def test_unwritable_state_table_exits_1_without_false_acknowledgement(
    project: DbtProject, emulator: BrazeEmulator
) -> None:
    build(project)
    assert project.braze("sync", "--select", "braze_users", "--dry-run").exit_code == 0
    # the state table becomes read-only: a view over the real table (a UNION, so
    # that PostgreSQL cannot make it auto-updatable)
    project.query("create table braze_state_real as select * from braze_state")
    project.query("drop table braze_state")
    project.query(
        "create view braze_state as select * from braze_state_real"
        " union all select * from braze_state_real where 1 = 0"
    )
    result = project.braze("sync")
    assert result.exit_code == 1
    assert "warehouse refused a write" in result.output
    assert project.query("select count(*) from braze_state_real") == [(0,)]
    project.query("drop view braze_state")
    project.query("alter table braze_state_real rename to braze_state")
    assert project.braze("sync").exit_code == 0
    assert_braze_equals_model(emulator, N)


def test_a_live_sync_holds_the_lock(project: DbtProject, emulator: BrazeEmulator) -> None:
    build(project, n=10)
    assert project.braze("sync").exit_code == 0
    # another machine's sync is running: its claim is recent and its holder is not local
    project.query("""
        insert into braze_sync_runs (run_id, model_name, status, started_at, recorded_at, holder)
        values ('other-run', 'braze_users', 'running', timezone('UTC', now()), timezone('UTC', now()),
                'another-host:4242')""")
    project.write_model(users_sql(10, plan="'pro'"))
    project.dbt("run")
    result = project.braze("sync")
    assert result.exit_code == 1
    assert "another dbt-braze sync of this model is running" in result.output
    assert "other-run" in result.output
    assert emulator.profiles["1"]["plan"] == "free"
    # once its lease has run out, the lock is free again
    project.query(
        "update braze_sync_runs set recorded_at = recorded_at - interval '1 hour' where run_id = 'other-run'"
    )
    assert project.braze("sync").exit_code == 0
    assert emulator.profiles["1"]["plan"] == "pro"


def test_high_rejection_rate_stops_early(project: DbtProject, emulator: BrazeEmulator) -> None:
    project.write_model(
        users_sql(2000).replace(
            "'user' || i || '@example.com'",
            "case when i % 5 = 0 then 'user' || i || '@example.com' else 'bad address' end",
        )
    )
    project.write_schema([braze_model()])
    project.dbt("run")
    result = project.braze("sync", "--concurrency", "1")
    assert result.exit_code == 1
    assert "stopped early" in result.output and "email" in result.output
    assert emulator.stats()["objects_received"] < 2000 / 2  # it did not burn through the model
    assert len(ATTRIBUTES) == 6


def test_a_dbt_run_during_a_sync_cannot_lose_a_change(project: DbtProject, emulator: BrazeEmulator) -> None:
    """A sync (S1) consuming an older diff acknowledges `plan = pro` for user 1 after a
    newer `dbt run` diffed the model (`plan = free`, equal to the state it saw). That
    newer diff holds nothing for user 1, yet Braze now has `pro`: the next sync must
    notice the overlap and re-diff, or the change back to `free` would be lost.

    DuckDB cannot host the two processes at once (one writer per file), so S1's
    overlapping acknowledgement is written the way S1 writes it."""
    build(project, n=5)
    assert project.braze("sync").exit_code == 0
    project.dbt("run")  # the newer diff: nothing pending
    # S1 started before that diff, then acknowledged `pro` after it, and Braze applied it
    project.query("""
        insert into braze_sync_runs (run_id, model_name, status, started_at, recorded_at, holder)
        values ('s1', 'braze_users', 'success', timezone('UTC', now()) - interval '1 hour',
                timezone('UTC', now()), 'elsewhere:1')""")
    project.query("""
        insert into braze_state (model_name, braze_key, attribute, value_hash, acked_at, run_id)
        values ('braze_users', '1', 'plan', md5('pro'), timezone('UTC', now()), 's1')""")
    import requests

    requests.post(
        f"{emulator.url}/users/track",
        json={"attributes": [{"external_id": "1", "plan": "pro"}]},
        headers={"Authorization": f"Bearer {project.env['BRAZE_API_KEY']}"},
        timeout=5,
    )
    assert emulator.profiles["1"]["plan"] == "pro"
    result = project.braze("sync")
    assert result.exit_code == 0, result.output
    assert emulator.profiles["1"]["plan"] == "free"
    sent = [e for e in emulator.requests_log if e.path == "/users/track"][-1].body
    assert sent["attributes"] == [{"external_id": "1", "plan": "free"}]


def test_the_api_key_reaches_no_table(project: DbtProject, emulator: BrazeEmulator) -> None:
    build(project, n=3)
    wrong = "wrong-key-8c1f00d2a7"
    assert project.braze("sync", env={"BRAZE_API_KEY": wrong}).exit_code == 1
    assert project.braze("sync").exit_code == 0
    for table in ("braze_sync_runs", "braze_rejected", "braze_state"):
        dump = str(project.query(f"select * from {table}"))
        assert wrong not in dump and project.env["BRAZE_API_KEY"] not in dump, table
    errors = project.query("select error from braze_sync_runs where status = 'failed'")
    assert errors, "the failed run is recorded"
    assert "401" in errors[0][0] or "refused" in errors[0][0]
