"""The mass-removal guard (contract, "Safety rules"): a model that comes out empty
or shrunken, or whose identifier changes, must never wipe its users in Braze."""

from __future__ import annotations

import pytest

from dbt_braze.emulator import BrazeEmulator

from harness import DbtProject, braze_model, expected_profile, users_sql

pytestmark = pytest.mark.integration

N = 40


def test_an_emptied_model_is_paused_until_removals_are_allowed(
    project: DbtProject, emulator: BrazeEmulator
) -> None:
    project.write_model(users_sql(N))
    project.write_schema([braze_model(on_removed="delete")])
    project.dbt("run")
    assert project.braze("sync").exit_code == 0
    assert len(emulator.profiles) == N

    # a broken upstream: the model comes out empty
    project.write_model(users_sql(N) + " where false")
    project.dbt("run")
    plan = project.braze("plan")
    assert plan.exit_code == 1 and "paused" in plan.output, plan.output
    paused = project.braze("sync")
    assert paused.exit_code == 1, paused.output
    assert f"would delete {N} of the {N} users" in paused.output
    assert "--allow-removals" in paused.output
    assert len(emulator.profiles) == N and emulator.stats()["users_deleted"] == 0
    runs = project.query(
        "select status, error from braze_sync_runs where ended_at is not null order by recorded_at"
    )
    assert runs[-1][0] == "failed" and "max_removed_share" in runs[-1][1]

    # the model is fixed: nothing was lost, nothing to send
    project.write_model(users_sql(N))
    project.dbt("run")
    requests = emulator.stats()["track_requests"]
    assert project.braze("sync").exit_code == 0
    assert emulator.stats()["track_requests"] == requests
    assert emulator.profiles["3"] == expected_profile(3)

    # a real purge, allowed for one run
    project.write_model(users_sql(N) + " where i <= 5")
    project.dbt("run")
    assert project.braze("sync").exit_code == 1
    allowed = project.braze("sync", "--allow-removals")
    assert allowed.exit_code == 0, allowed.output
    assert sorted(emulator.profiles, key=int) == [str(i) for i in range(1, 6)]


def test_a_changed_identifier_counts_as_removing_every_user(
    project: DbtProject, emulator: BrazeEmulator
) -> None:
    project.write_model(users_sql(N))
    project.write_schema([braze_model(on_removed="unset", max_removed_share=0.5)])
    project.dbt("run")
    assert project.braze("sync").exit_code == 0

    # the same users, keyed by another column: every old key is removed
    project.write_model(users_sql(N).replace("select i as user_id", "select 'crm-' || i as user_id"))
    project.dbt("run")
    paused = project.braze("sync")
    assert paused.exit_code == 1, paused.output
    assert f"{N} of the {N} users" in paused.output and "max_removed_share 50.0%" in paused.output
    assert emulator.stats()["attributes_unset"] == 0
    assert "crm-1" not in emulator.profiles
