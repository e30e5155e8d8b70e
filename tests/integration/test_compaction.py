"""Compaction of braze_state and braze_fingerprints (docs/operating.md, "Compaction"),
on DuckDB and PostgreSQL: one project per warehouse and scenario, many checks per run.

Churn grows the logs with compaction off; a compaction then leaves the latest state and
fingerprint per key exactly as they were (gone keys aside, which read as absent), the
next `dbt run` computes the same diff, and a sync after it sends that diff and nothing
twice. With compaction on, no sync leaves a log above the ratio. A compaction that fails
between its DELETE and its commit changes nothing, and so does a sync killed (SIGKILL)
between them (PostgreSQL); a sync of another model checkpointing while a compaction's
transaction is open (PostgreSQL: two processes) loses nothing.
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

import pytest

from dbt_braze.emulator import BrazeEmulator
from dbt_braze.errors import WarehouseError
from dbt_braze.store import Store

from harness import DbtProject, braze_model, users_sql

pytestmark = pytest.mark.integration

N = 60
MODEL = "braze_users"
OFF = {"DBT_BRAZE_COMPACTION_RATIO": "0"}
ATTRIBUTE_MAP = dict(braze_model()["config"]["meta"]["braze"]["attributes"])


def churned(cycle: int, *, drop_from: int | None = None) -> str:
    """users_sql whose plan, first name and ltv change for a third of the users each cycle;
    with `drop_from`, the users from that one on leave the model."""
    changed = f"(i + {cycle}) % 3 = 0"
    sql = users_sql(
        N,
        plan=f"case when {changed} then 'plan-{cycle}' else 'free' end",
        extra=f", case when {changed} then 'c{cycle}' else '' end as note",
    )
    sql = sql.replace(
        "'Name ' || i as first_name",
        f"'Name ' || i || case when {changed} then '-{cycle}' else '' end as first_name",
    )
    return sql + (f" where i < {drop_from}" if drop_from else "")


def latest(project: DbtProject, log: str) -> set[tuple[Any, ...]]:
    """The latest rows per key that hold something (the diff reads a gone key as absent)."""
    if log == "state":
        keys, time, value, table = "braze_key, attribute", "acked_at", "value_hash", "braze_state"
    else:
        keys, time, value, table = "braze_key", "recorded_at", "fingerprint", "braze_fingerprints"
    rows = project.query(
        f"""select {keys}, {value} from (
                select *, max({time}) over (partition by {keys}) as latest_at from {table}
                where model_name = '{MODEL}') ranked
            where {time} = latest_at"""
    )
    by_key: dict[tuple[Any, ...], set[Any]] = {}
    for *key, held in rows:
        by_key.setdefault(tuple(key), set()).add(held)
    return {(*key, frozenset(held)) for key, held in by_key.items() if held != {None}}


def sizes(project: DbtProject) -> dict[str, int]:
    out = project.braze("status", "--output", "json")
    assert out.exit_code == 0, out.output
    (model,) = json.loads(out.output)["models"]
    return dict(model["logs"])


COUNTED = ("log_state_rows", "log_state_keys", "log_fingerprint_rows", "log_fingerprint_keys")


def counted(project: DbtProject) -> dict[str, int] | None:
    """The log sizes the latest run of MODEL kept for the next sync's trigger."""
    ((*counts,),) = project.query(
        f"select {', '.join(COUNTED)} from braze_sync_runs where model_name = '{MODEL}' "
        "and ended_at is not null order by recorded_at desc limit 1"
    )
    if None in counts:
        return None
    return {column.removeprefix("log_"): int(count) for column, count in zip(COUNTED, counts, strict=True)}


def diff(project: DbtProject) -> set[tuple[Any, ...]]:
    return set(
        project.query(
            f"select change_kind, braze_key, attribute, value_hash from braze_pending__{MODEL} "
            "where change_kind in ('upsert', 'removed')"
        )
    )


# The in-process CLI's DuckDB cap (dbt_access.DUCKDB_MEMORY_LIMIT) outlives it in the test
# process and served the next in-process `dbt run`, whose hook then ran out of memory on
# removed users (a `dbt run` of its own process has the profile's memory: it passed there).
UNCAPPED = {"DBT_BRAZE_DUCKDB_MEMORY_LIMIT": "2GB"}


def sync(project: DbtProject, env: dict[str, str] | None = None) -> dict[str, Any]:
    out = project.braze("sync", "--output", "json", env=env)
    assert out.exit_code == 0, out.output
    (model,) = json.loads(out.output)["models"]
    return dict(model)


def connect(project: DbtProject) -> Any:
    """A connection of the test's own (a transaction it holds open)."""
    if project.kind == "postgres":
        import psycopg2

        assert project.postgres is not None
        conn = psycopg2.connect(project.postgres.dsn, options=f"-c search_path={project.schema}")
        conn.autocommit = True  # begin/commit are the test's
        return conn
    import duckdb

    from harness import _release_dbt_duckdb

    _release_dbt_duckdb()
    return duckdb.connect(str(project.db_path))


def release(project: DbtProject) -> None:
    """Close the process's DuckDB database (the store capped its memory): dbt reopens it."""
    if project.kind == "duckdb":
        from harness import _release_dbt_duckdb

        _release_dbt_duckdb()


def open_store(project: DbtProject) -> Store:
    from dbt_braze.commands import _open_warehouse
    from dbt_braze.selection import Project

    return _open_warehouse(Project(project.root, project.root, None))


def test_compaction_keeps_every_latest_state_and_diff(
    project: DbtProject, emulator: BrazeEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.env.update(UNCAPPED)
    project.write_schema([braze_model(on_removed="unset", attributes={**ATTRIBUTE_MAP, "note": "note"})])
    # history with compaction off: three attributes churn for a third of the users each cycle
    for cycle in range(1, 6):
        project.write_model(churned(cycle, drop_from=N - 5 if cycle >= 4 else None))
        project.dbt("run")
        assert sync(project, OFF)["compacted"] == []
    grown = sizes(project)
    assert grown["state_rows"] > 2 * grown["state_keys"], grown
    assert grown["fingerprint_rows"] > 2 * grown["fingerprint_keys"], grown

    # a change not synced yet: its diff, the latest state and fingerprints, before compaction
    project.write_model(churned(6, drop_from=N - 10))
    project.dbt("run")
    pending_before = diff(project)
    state_before, prints_before = latest(project, "state"), latest(project, "fingerprints")
    assert pending_before and any(kind == "removed" for kind, *_ in pending_before)

    # a compaction that fails between its DELETEs and its commit changes nothing
    def crashing(store: Store, model_name: str, logs: list[str]) -> None:
        statements = [
            str(store.dbt.macro("braze_compact_sql", log=log, model_name=model_name)) for log in logs
        ]

        def work() -> None:
            for sql in statements:
                store.dbt.run(sql)
            raise RuntimeError("killed between the DELETEs and the commit")

        store.dbt.transaction(work)

    before_crash = sizes(project)
    with open_store(project) as store:
        monkeypatch.setattr(Store, "compact_logs", crashing)
        with pytest.raises(Exception, match="refused a write"):
            store.compact_logs(MODEL, ["state", "fingerprints"])
        monkeypatch.undo()
    assert sizes(project) == before_crash
    assert latest(project, "state") == state_before and latest(project, "fingerprints") == prints_before

    # the compaction itself: latest state and fingerprints unchanged, the same diff after it
    with open_store(project) as store:
        store.compact_logs(MODEL, ["state", "fingerprints"])
    release(project)
    compacted = sizes(project)
    assert (
        compacted["state_rows"] <= compacted["state_keys"] + 5
        and compacted["state_rows"] < grown["state_rows"]
    )
    assert compacted["fingerprint_rows"] <= compacted["fingerprint_keys"]
    assert latest(project, "state") == state_before and latest(project, "fingerprints") == prints_before
    project.dbt("run")
    assert diff(project) == pending_before

    # the sync sends that diff; a second sync sends nothing
    first = sync(project)
    assert first["data_points"] > 0 and first["users_updated"] > 0
    assert all(emulator.profiles[str(i)]["plan"] in ("free", "plan-6") for i in range(1, N - 10))
    assert sync(project)["data_points"] == 0

    # compaction on (ratio 1.5): it triggers, and no sync leaves a log above the ratio. Each
    # sync keeps the logs' sizes it counted in its run's row, or the previous count when the
    # rows alone told (no key counted). The run history of an older version lacks the columns:
    # the sync adds them.
    for column in COUNTED:
        project.query(f"alter table braze_sync_runs drop column {column}")
    compactions: list[str] = []
    kept: list[dict[str, int] | None] = [None]  # the columns' values went with them
    for cycle in range(7, 13):
        project.write_model(churned(cycle))
        project.dbt("run")
        report = sync(project, {"DBT_BRAZE_COMPACTION_RATIO": "1.5"})
        compactions += report["compacted"]
        now = sizes(project)
        assert now["state_rows"] <= 1.5 * now["state_keys"], (cycle, now)
        assert now["fingerprint_rows"] <= 1.5 * now["fingerprint_keys"], (cycle, now)
        kept.append(counted(project))
        assert kept[-1] in (now, kept[-2]), (cycle, now, kept)
    assert "state" in compactions and "fingerprints" in compactions
    assert None not in kept[1:]
    assert sync(project)["data_points"] == 0
    # a small change (one user leaves): the rows alone tell, the count is kept as it was
    project.write_model(churned(12, drop_from=N))
    project.dbt("run")
    assert sync(project)["attributes_unset"] > 0
    assert counted(project) == kept[-1] and sizes(project) != kept[-1]

    # a compaction that fails (DuckDB ran out of memory under the sync's cap) is upkeep, not
    # the sync: the sync succeeds with what it sent recorded, and the logs stay as they were
    def failing(store: Store, model_name: str, logs: list[str]) -> None:
        raise WarehouseError("Out of Memory Error: failed to pin block")

    monkeypatch.setattr(Store, "compact_logs", failing)
    project.write_model(churned(13))
    project.dbt("run")
    grown = sizes(project)
    report = sync(project, {"DBT_BRAZE_COMPACTION_RATIO": "1.01"})  # due at once
    assert report["data_points"] > 0 and report["compacted"] == []
    assert sizes(project)["state_rows"] > grown["state_rows"]
    monkeypatch.undo()
    project.dbt("run")
    assert diff(project) == set()
    assert all(emulator.profiles[str(i)]["first_name"].startswith(f"Name {i}") for i in range(1, N + 1))


def test_a_sync_beside_a_compaction_loses_nothing(project: DbtProject, emulator: BrazeEmulator) -> None:
    """PostgreSQL: a compaction's transaction stays open (its DELETE run) while another
    model's sync, in its own process, checkpoints into the same tables. DuckDB lets one
    process at a time write its file: there a sync's models run one after the other,
    and the compaction of one never overlaps a checkpoint of another."""
    project.env.update(UNCAPPED)
    other = braze_model()
    other["name"] = "braze_others"
    project.write_schema([braze_model(on_removed="unset"), other])
    project.write_model(
        users_sql(N).replace("select i as user_id", "select 'o' || i as user_id"), "braze_others"
    )
    for cycle in range(1, 5):
        project.write_model(churned(cycle))
        project.dbt("run", "--select", MODEL)
        assert project.braze("sync", "--select", MODEL, env=OFF).exit_code == 0
    state_before = latest(project, "state")
    project.dbt("run", "--select", "braze_others")

    with open_store(project) as store:
        statements = [
            str(store.dbt.macro("braze_compact_sql", log=log, model_name=MODEL))
            for log in ("state", "fingerprints")
        ]
    conn = connect(project)
    try:
        cursor = conn.cursor()
        cursor.execute("begin")
        deleted = 0
        for sql in statements:
            cursor.execute(sql)
            deleted += max(cursor.rowcount, 0) if project.kind == "postgres" else int(cursor.fetchone()[0])
        beside = project.spawn_braze("sync", "--select", "braze_others")
        output, _ = beside.communicate(timeout=120)
        if project.kind == "postgres":
            assert beside.returncode == 0, output
        else:  # the file is held: the sync fails before it writes anything
            assert beside.returncode == 1 and "DuckDB file" in output, output
        cursor.execute("commit")
    finally:
        conn.close()
    assert deleted > 0
    if project.kind == "duckdb":  # its turn now
        assert project.braze("sync", "--select", "braze_others").exit_code == 0
    assert latest(project, "state") == state_before | {
        row for row in latest(project, "state") if row[0].startswith("o")
    }
    (others,) = project.query("select count(*) from braze_state where model_name = 'braze_others'")
    assert others[0] == N * 6
    assert project.braze("sync", "--output", "json").exit_code == 0
    assert emulator.stats()["users_created"] >= N
    second = json.loads(project.braze("sync", "--output", "json").output)
    assert sum(m["data_points"] for m in second["models"]) == 0
    if project.kind == "postgres":
        check_killed_in_compaction(project)


def log_rows(project: DbtProject) -> tuple[int, int]:
    """MODEL's rows in braze_state and braze_fingerprints."""
    ((state, prints),) = project.query(
        f"select (select count(*) from braze_state where model_name = '{MODEL}'), "
        f"(select count(*) from braze_fingerprints where model_name = '{MODEL}')"
    )
    return int(state), int(prints)


def check_killed_in_compaction(project: DbtProject) -> None:
    """PostgreSQL: a sync killed (SIGKILL) inside its compaction's transaction, its DELETE of
    braze_state run and its DELETE of braze_fingerprints waiting for a lock the test holds,
    leaves both logs exactly as they were; the next sync compacts them and sends nothing."""
    project.write_model(churned(5))  # one more cycle: both logs due at 1 row per key
    project.dbt("run", "--select", MODEL)
    assert project.braze("sync", "--select", MODEL, env=OFF).exit_code == 0
    rows_before = log_rows(project)
    state_before, prints_before = latest(project, "state"), latest(project, "fingerprints")
    due = {"DBT_BRAZE_COMPACTION_RATIO": "1"}
    conn, watch = connect(project), connect(project)  # watch: outside the transaction, whose
    try:  # view of pg_stat_activity is a snapshot
        cursor, watching = conn.cursor(), watch.cursor()
        cursor.execute("begin")
        # SHARE: reads go on (the sizes, the diff), a DELETE of the table waits
        cursor.execute("lock table braze_fingerprints in share mode")
        killed = project.spawn_braze("sync", "--select", MODEL, env=due)
        waiting = (
            "select pid from pg_stat_activity where wait_event_type = 'Lock' "
            "and query ilike '%delete from%braze_fingerprints%'"  # after dbt's query comment
        )
        deadline = time.monotonic() + 120
        while not (backend := _fetch(watching, waiting)):
            assert killed.poll() is None, killed.communicate()[0]
            if time.monotonic() > deadline:
                killed.kill()
                raise AssertionError(f"the sync never reached its compaction: {killed.communicate()[0]}")
            time.sleep(0.05)
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait()
        cursor.execute("rollback")  # the lock goes: the orphaned DELETE runs, then finds no client
        deadline = time.monotonic() + 60
        while _fetch(watching, f"select pid from pg_stat_activity where pid = {backend[0][0]}"):
            assert time.monotonic() < deadline, "the killed sync's backend never ended"
            time.sleep(0.05)
    finally:
        conn.close()
        watch.close()
    assert log_rows(project) == rows_before  # neither DELETE took effect, not even the first
    assert latest(project, "state") == state_before and latest(project, "fingerprints") == prints_before
    # the next sync (the dead one's lock taken over) compacts, and sends nothing
    out = project.braze("sync", "--select", MODEL, "--output", "json", env=due)
    assert out.exit_code == 0, out.output
    (after,) = json.loads(out.output)["models"]
    assert after["compacted"] == ["state", "fingerprints"] and after["data_points"] == 0
    assert latest(project, "state") == state_before and latest(project, "fingerprints") == prints_before
    second = json.loads(project.braze("sync", "--output", "json").output)
    assert sum(m["data_points"] for m in second["models"]) == 0


def _fetch(cursor: Any, sql: str) -> list[tuple[Any, ...]]:
    cursor.execute(sql)
    return list(cursor.fetchall())
