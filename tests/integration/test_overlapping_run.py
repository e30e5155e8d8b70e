"""A `dbt run` that rebuilds the pending changes while a sync is sending.

The contract: it neither loses a change nor makes the next sync resend what
the running sync delivered. A checkpoint that lands after the rebuild must
still record what was sent, so that the next diff starts from what Braze
holds.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from dbt_braze.braze import BrazeClient
from dbt_braze.config import AttributeMapping, ModelSync
from dbt_braze.dbt_access import DbtAccess, Target
from dbt_braze.emulator import BrazeEmulator
from dbt_braze.engine import SyncEngine
from dbt_braze.rows import RelationRef
from dbt_braze.settings import SyncSettings
from dbt_braze.store import Store

from harness import API_KEY, DbtProject

pytestmark = pytest.mark.integration

N = 600  # 8 requests of 75 users

MODEL = ModelSync(
    model_name="braze_users",
    unique_id="model.braze_it.braze_users",
    id_field="external_id",
    id_column="user_id",
    mode="upsert",
    on_removed="ignore",
    attributes=(AttributeMapping("plan", "plan"),),
)


def source_table(project: DbtProject, plan_sql: str) -> None:
    """The model reads a table the test can change while a sync holds the warehouse."""
    table = f"{project.schema}.src_users"
    project.query(f"create schema if not exists {project.schema}")
    project.query(f"drop table if exists {table}")
    project.query(
        f"create table {table} as select cast(i as varchar(20)) as user_id, {plan_sql} as plan"
        f" from generate_series(1, {N}) t(i)"
    )


def set_up(project: DbtProject) -> None:
    source_table(project, "'free'")
    project.write_model("select user_id, plan from {{ target.schema }}.src_users")
    block = {"external_id": "user_id", "attributes": {"plan": "plan"}}
    project.write_schema([{"name": "braze_users", "config": {"meta": {"braze": block}}}])
    project.dbt("run")
    assert project.braze("sync").exit_code == 0


def relation(project: DbtProject) -> RelationRef:
    manifest = json.loads((project.root / "target" / "manifest.json").read_text())
    node = manifest["nodes"][MODEL.unique_id]
    return RelationRef(node["database"], node["schema"], node["alias"])


def test_a_rebuild_between_checkpoints_loses_nothing_and_resends_nothing(
    project: DbtProject, emulator: BrazeEmulator
) -> None:
    """The sync runs in this process; after its third checkpoint, the model
    changes and the hook's rebuild runs (what `dbt run` does; DuckDB cannot
    host a second process). Users 3k go back to the value the state holds,
    users 3k+1 change again, users 3k+2 keep the value being sent."""
    set_up(project)
    project.query(f"update {project.schema}.src_users set plan = 'pro'")
    project.dbt("run")
    target = relation(project)
    before = emulator.stats()["data_points"]
    warehouse = Store(DbtAccess(Target(project.root, project.root, None)))
    heartbeats = 0
    acknowledged = f"select count(*) from {project.schema}.braze_state where run_id = 'overlapped'"

    def rebuild_on_third_checkpoint() -> None:
        nonlocal heartbeats
        heartbeats += 1
        if heartbeats != 3:
            return
        # the checkpoint just handed over commits first: the next ones land after the rebuild
        deadline = time.monotonic() + 30
        while warehouse.dbt.fetch_all(acknowledged)[0][0] < 3 * 75 and time.monotonic() < deadline:
            time.sleep(0.05)
        warehouse.dbt.execute(
            f"update {project.schema}.src_users set plan = case"
            " when cast(user_id as integer) % 3 = 0 then 'free'"
            " when cast(user_id as integer) % 3 = 1 then 'enterprise' else plan end"
        )
        warehouse.rebuild_pending(MODEL, target)

    client = BrazeClient(emulator.url, API_KEY)
    try:
        with warehouse:
            built_at = warehouse.pending_built_at(MODEL.model_name)
            settings = SyncSettings(
                concurrency=1, max_rejection_rate=1.0, checkpoint_objects=75, checkpoint_seconds=60
            )
            engine = SyncEngine(
                warehouse, client, settings, run_id="overlapped", heartbeat=rebuild_on_third_checkpoint
            )
            report = engine.sync_model(MODEL, target)
            assert heartbeats > 3 and report.users_updated == N
            # what engine.sync_one does after a sync a `dbt run` overlapped
            assert warehouse.pending_built_at(MODEL.model_name) != built_at
            warehouse.rebuild_pending(MODEL, target)
    finally:
        client.close()
    assert emulator.stats()["data_points"] - before == N
    assert {p["plan"] for p in emulator.profiles.values()} == {"pro"}

    result = project.braze("sync")
    assert result.exit_code == 0, result.output
    expected = {str(i): ("free", "enterprise", "pro")[i % 3] for i in range(1, N + 1)}
    assert {key: p["plan"] for key, p in emulator.profiles.items()} == expected
    # exactly the users whose value moved on: none of the unchanged ones again
    assert emulator.stats()["data_points"] - before == N + 2 * N // 3


# DuckDB allows one process per file: no `dbt run` while a sync holds it
@pytest.mark.parametrize("warehouse", ["postgres"], indirect=True)
def test_a_dbt_run_during_a_sync_makes_the_next_sync_send_nothing(
    project: DbtProject, emulator: BrazeEmulator
) -> None:
    """A real `dbt run` while a sync process sends (PostgreSQL: DuckDB allows one
    process per file), the model unchanged: what the sync delivered after the
    rebuild is acknowledged, and the next sync sends nothing."""
    n = 1500
    project.write_model(
        f"select cast(i as varchar(20)) as user_id, 'free' as plan from generate_series(1, {n}) t(i)"
    )
    block = {"external_id": "user_id", "attributes": {"plan": "plan"}}
    project.write_schema([{"name": "braze_users", "config": {"meta": {"braze": block}}}])
    project.dbt("run")
    emulator.configure(latency_ms=1500)  # 30 s for the 20 requests: the dbt run ends well before
    process = project.spawn_braze("sync", "--checkpoint-objects", "75", "--concurrency", "1")
    deadline = time.monotonic() + 60
    while emulator.stats()["track_requests"] < 1 and time.monotonic() < deadline:
        assert process.poll() is None, _output(process)
        time.sleep(0.01)
    project.dbt("run")
    rebuilt_at = emulator.stats()["track_requests"]
    assert process.poll() is None, "the sync ended before the dbt run: nothing overlapped"
    emulator.configure(latency_ms=0)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert rebuilt_at < n / 75, "the rebuild landed after the last request"
    assert emulator.stats()["data_points"] == n

    result = project.braze("sync")
    assert result.exit_code == 0, result.output
    assert emulator.stats()["data_points"] == n, "the next sync sent again what was delivered"


def _output(process: Any) -> str:
    return process.stdout.read() if process.stdout else ""


# DuckDB allows one writer process: a checkpoint cannot span a dbt run there
@pytest.mark.parametrize("warehouse", ["postgres"], indirect=True)
def test_a_checkpoint_committed_after_the_diff_began_is_not_missed(
    project: DbtProject, emulator: BrazeEmulator
) -> None:
    """PostgreSQL dates a checkpoint's acknowledgements when its transaction
    began. One that began before the hook's diff and committed after it is
    invisible to the diff yet dated before it: the next sync must still notice
    that the state moved (Braze got `pro`; the model says `free` again)."""
    import psycopg2

    assert project.postgres is not None
    project.write_model(
        "select cast(i as varchar(20)) as user_id, 'free' as plan from generate_series(1, 5) t(i)"
    )
    block = {"external_id": "user_id", "attributes": {"plan": "plan"}}
    project.write_schema([{"name": "braze_users", "config": {"meta": {"braze": block}}}])
    project.dbt("run")
    assert project.braze("sync").exit_code == 0
    project.dbt("run")  # fingerprints vouch for every user
    # a sync S1, started earlier, delivered `pro` to user 1 and checkpoints it
    emulator_client = BrazeClient(emulator.url, API_KEY)
    try:
        emulator_client.track_encoded([b'{"external_id":"1","plan":"pro"}'])
    finally:
        emulator_client.close()
    now = "cast(current_timestamp at time zone 'UTC' as timestamp)"
    checkpoint = psycopg2.connect(project.postgres.dsn, options=f"-c search_path={project.schema}")
    try:
        with checkpoint.cursor() as cursor:
            cursor.execute(
                "insert into braze_fingerprints (model_name, braze_key, fingerprint, recorded_at)"
                f" values ('braze_users', '1', null, {now})"
            )
            cursor.execute(
                "insert into braze_state (model_name, braze_key, attribute, value_hash, acked_at, run_id)"
                f" values ('braze_users', '1', 'plan', md5('pro'), {now}, 's1')"
            )
        time.sleep(0.05)
        project.dbt("run")  # the hook's diff cannot see the open checkpoint
        checkpoint.commit()
    finally:
        checkpoint.close()
    assert emulator.profiles["1"]["plan"] == "pro"
    result = project.braze("sync")
    assert result.exit_code == 0, result.output
    assert emulator.profiles["1"]["plan"] == "free"
