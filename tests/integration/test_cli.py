"""The user's side: selection, one-command runs, plan, JSON output, status, init, errors."""

from __future__ import annotations

import json

import pytest

from dbt_braze.emulator import BrazeEmulator

from harness import ATTRIBUTES, DbtProject, assert_braze_equals_model, braze_model, users_sql

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)]


def two_models(project: DbtProject) -> None:
    project.write_model(users_sql(20), "braze_users")
    project.write_model("select * from {{ ref('braze_users') }} where user_id <= 5", "vip_users")
    users = braze_model()
    users["config"]["tags"] = ["braze_daily"]
    vips = {
        "name": "vip_users",
        "config": {"meta": {"braze": {"external_id": "user_id", "attributes": {"plan": "vip_plan"}}}},
    }
    project.write_schema([users, vips])


def test_select_takes_dbt_selection_syntax(project: DbtProject, emulator: BrazeEmulator) -> None:
    two_models(project)
    project.dbt("run")
    result = project.braze("sync", "--select", "tag:braze_daily")
    assert result.exit_code == 0, result.output
    assert "braze_users" in result.output and "vip_users" not in result.output
    assert_braze_equals_model(emulator, 20)
    # `+vip_users` selects vip_users and its parent braze_users (already in step)
    result = project.braze("sync", "--select", "+vip_users")
    assert result.exit_code == 0, result.output
    assert "vip_users" in result.output
    assert emulator.profiles["3"]["vip_plan"] == "free"
    assert "vip_plan" not in emulator.profiles["6"]


def test_run_builds_then_syncs_in_one_command(project: DbtProject, emulator: BrazeEmulator) -> None:
    two_models(project)
    result = project.braze("run", "--select", "braze_users")
    assert result.exit_code == 0, result.output
    assert_braze_equals_model(emulator, 20)
    assert not any("vip_plan" in p for p in emulator.profiles.values())  # not selected, not built


def test_plan_shows_counts_and_samples_and_sends_nothing(
    project: DbtProject, emulator: BrazeEmulator
) -> None:
    project.write_model(users_sql(30))
    project.write_schema([braze_model()])
    project.dbt("run")
    text = project.braze("plan", env={"BRAZE_API_KEY": ""})
    assert text.exit_code == 0, text.output
    assert "users would be created" in text.output and "sample payloads" in text.output
    plan = json.loads(project.braze("plan", "--output", "json").output)
    (model,) = plan["models"]
    assert plan["command"] == "plan" and model["status"] == "planned"
    assert model["users_created"] == 30 and model["data_points"] == 30 * len(ATTRIBUTES)
    assert model["requests"] == 1 and len(model["sample_payloads"]) == 3
    assert emulator.stats()["requests"] == 0


def test_sync_and_status_speak_json(project: DbtProject, emulator: BrazeEmulator) -> None:
    project.write_model(
        users_sql(10).replace(
            "'user' || i || '@example.com'",
            "case when i = 2 then 'broken' else 'user' || i || '@example.com' end",
        )
    )
    project.write_schema([braze_model()])
    project.dbt("run")
    synced = json.loads(project.braze("sync", "--output", "json").output)
    (model,) = synced["models"]
    assert synced["exit_code"] == 0 and model["status"] == "success"
    assert model["users_created"] == 9 and model["rows_rejected"] == 1
    assert model["rejection_samples"][0]["key"] == "2"
    status = json.loads(project.braze("status", "--output", "json").output)
    (model,) = status["models"]
    assert model["recent_runs"][0]["status"] == "success"
    assert model["recent_runs"][0]["users_created"] == 9
    assert model["pending"] == {
        "new_users": 0,
        "changed_users": 0,
        "attributes": 0,
        "subscription_groups": 0,
        "removed_users": 0,
    }
    assert model["rejected_users"] == 1 and "email" in model["rejected_samples"][0]["reason"]


def test_status_text_shows_runs_pending_and_rejections(project: DbtProject, emulator: BrazeEmulator) -> None:
    project.write_model(users_sql(10))
    project.write_schema([braze_model(on_removed="unset")])
    project.dbt("run")
    before = project.braze("status")
    assert before.exit_code == 0, before.output
    assert "pending: 10 new users" in before.output and "never synced" in before.output
    assert project.braze("sync").exit_code == 0
    project.write_model(users_sql(10, plan="'pro'") + " where i <> 3")
    project.dbt("run")
    after = project.braze("status")
    assert "0 new users, 9 changed users (9 attributes), 1 removed users" in after.output
    assert "success" in after.output and "10 created" in after.output


def test_init_adds_the_package_and_drafts_meta_from_real_columns(
    project: DbtProject, emulator: BrazeEmulator
) -> None:
    (project.root / "packages.yml").write_text(
        "# our packages\npackages:\n  - package: dbt-labs/dbt_utils\n    version: 1.3.0\n"
    )
    project.write_model(users_sql(3))
    project.write_schema([{"name": "braze_users"}])
    project.dbt("run")
    result = project.braze("init", "braze_users", "--package-source", "git:https://example.org/dbt-braze.git")
    assert result.exit_code == 0, result.output
    packages = (project.root / "packages.yml").read_text()
    assert packages.startswith("# our packages") and "dbt_utils" in packages
    assert "  - git: https://example.org/dbt-braze.git" in packages
    assert "external_id: user_id" in result.output
    for column in ("email", "first_name", "signed_up_on"):
        assert f"{column}: {column}" in result.output
    again = project.braze("init", "--package-source", "git:https://example.org/dbt-braze.git")
    assert "already lists dbt_braze" in again.output
    assert (project.root / "packages.yml").read_text() == packages


def test_no_manifest_exits_2_with_a_hint(project: DbtProject, emulator: BrazeEmulator) -> None:
    result = project.braze("sync")
    assert result.exit_code == 2
    assert "no dbt manifest" in result.output and "dbt run" in result.output
    assert "Traceback" not in result.output


def test_unknown_target_exits_2(project: DbtProject, emulator: BrazeEmulator) -> None:
    project.write_model(users_sql(3))
    project.write_schema([braze_model()])
    project.dbt("run")
    result = project.braze("sync", "--target", "nope")
    assert result.exit_code == 2
    assert "nope" in result.output and "hint:" in result.output
    assert "Traceback" not in result.output


def test_unreachable_warehouse_exits_1(project: DbtProject, emulator: BrazeEmulator) -> None:
    project.write_model(users_sql(3))
    project.write_schema([braze_model()])
    project.dbt("run")
    (project.root / "profiles.yml").write_text(
        "braze_it:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n      host: 127.0.0.1\n"
        "      port: 9\n      user: nobody\n      password: ''\n      dbname: nowhere\n      schema: main\n"
        "      threads: 1\n      connect_timeout: 2\n      retries: 0\n"
    )
    result = project.braze("sync")
    assert result.exit_code == 1
    assert "cannot use the warehouse" in result.output and "hint:" in result.output
    assert "Traceback" not in result.output
    validate = project.braze("validate")  # validate exits 0 or 2, nothing else
    assert validate.exit_code == 2 and "cannot validate" in validate.output


def test_wrong_cluster_says_so(project: DbtProject, emulator: BrazeEmulator) -> None:
    project.write_model(users_sql(3))
    project.write_schema([braze_model()])
    project.dbt("run")
    result = project.braze("sync", env={"BRAZE_API_KEY": "a-key-from-the-eu-cluster-0000"})
    assert result.exit_code == 1
    assert "cluster" in result.output.lower() and "BRAZE_REST_ENDPOINT" in result.output
    assert "a-key-from-the-eu-cluster-0000" not in result.output
    assert "Traceback" not in result.output


def test_a_locked_model_fails_alone(project: DbtProject, emulator: BrazeEmulator) -> None:
    two_models(project)
    project.dbt("run")
    assert project.braze("sync", "--select", "braze_users", "--dry-run").exit_code == 0
    project.braze("status")  # creates the package's tables
    project.query("""
        insert into braze_sync_runs (run_id, model_name, status, started_at, recorded_at, holder)
        values ('other-run', 'vip_users', 'running', timezone('UTC', now()), timezone('UTC', now()),
                'another-host:4242')""")
    result = project.braze("sync")
    assert result.exit_code == 1
    assert "vip_users: another dbt-braze sync of this model is running" in result.output
    assert_braze_equals_model(emulator, 20)  # braze_users went out all the same


def test_plan_reports_a_paused_model_and_plans_the_others(
    project: DbtProject, emulator: BrazeEmulator
) -> None:
    project.write_model(users_sql(20), "braze_users")
    project.write_model("select user_id % 3 as user_id, plan from {{ ref('braze_users') }}", "dup_users")
    project.write_schema(
        [
            braze_model(),
            {
                "name": "dup_users",
                "config": {"meta": {"braze": {"external_id": "user_id", "attributes": {"plan": "plan"}}}},
            },
        ]
    )
    project.dbt("run")
    result = project.braze("plan", "--output", "json")
    assert result.exit_code == 1
    document = json.loads(result.output[result.output.index("{") : result.output.rindex("}") + 1])
    by_model = {m["model"]: m for m in document["models"]}
    assert by_model["braze_users"]["users_created"] == 20
    assert "not synced" in by_model["dup_users"]["error"]


def test_run_does_not_sync_a_model_whose_tests_fail(project: DbtProject, emulator: BrazeEmulator) -> None:
    project.write_model(
        users_sql(5).replace(
            "'user' || i || '@example.com'",
            "case when i = 2 then null else 'user' || i || '@example.com' end",
        )
    )
    model = braze_model()
    model["columns"] = [{"name": "email", "data_tests": ["not_null"]}]
    project.write_schema([model])
    result = project.braze("run")
    assert result.exit_code == 1
    assert "braze_users: not synced, its tests failed" in result.output
    assert emulator.stats()["requests"] == 0


def test_json_output_on_errors_is_still_a_document(project: DbtProject, emulator: BrazeEmulator) -> None:
    project.write_model(users_sql(3))
    project.write_schema([braze_model()])
    project.dbt("run")
    result = project.braze("sync", "--output", "json", env={"BRAZE_API_KEY": ""})
    assert result.exit_code == 2
    document = json.loads(result.output[result.output.index("{") : result.output.rindex("}") + 1])
    assert document["exit_code"] == 2 and "BRAZE_API_KEY" in document["error"]


def test_the_emulator_subcommand_takes_its_own_options(project: DbtProject, emulator: BrazeEmulator) -> None:
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-m", "dbt_braze", "emulator", "--port", "0", "--api-key", "ci-key-123456"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("braze emulator listening on http://127.0.0.1:"), line
    finally:
        process.terminate()
        process.wait(timeout=10)
