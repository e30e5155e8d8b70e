"""The contract's lifecycle end to end: real `dbt run` on DuckDB, real sync, emulated Braze."""

from __future__ import annotations

import pytest

from dbt_braze.emulator import BrazeEmulator

from harness import API_KEY, ATTRIBUTES, DbtProject, braze_model, expected_profile, users_sql

pytestmark = pytest.mark.integration


def setup(project: DbtProject, n: int = 20, **block: object) -> None:
    project.write_model(users_sql(n))
    project.write_schema([braze_model(**block)])
    project.dbt("run")


def test_first_sync_makes_braze_equal_to_the_model(project: DbtProject, emulator: BrazeEmulator) -> None:
    setup(project, n=200)
    result = project.braze("sync")
    assert result.exit_code == 0, result.output
    assert "users created" in result.output and "200" in result.output
    profiles = emulator.profiles
    assert len(profiles) == 200
    for i in (1, 2, 150, 200):
        assert profiles[str(i)] == expected_profile(i)
    stats = emulator.stats()
    assert stats["data_points"] == 200 * len(ATTRIBUTES)
    assert stats["track_requests"] == 3  # 75 + 75 + 50
    assert stats["same_user_overlaps"] == 0


def test_second_sync_sends_nothing(project: DbtProject, emulator: BrazeEmulator) -> None:
    setup(project)
    assert project.braze("sync").exit_code == 0
    before = emulator.stats()["requests"]
    again = project.braze("sync")
    assert again.exit_code == 0
    assert emulator.stats()["requests"] == before
    # and a fresh dbt run over unchanged data finds nothing either
    project.dbt("run")
    assert project.braze("sync").exit_code == 0
    assert emulator.stats()["requests"] == before


def test_changing_one_attribute_on_n_users_sends_n_data_points(
    project: DbtProject, emulator: BrazeEmulator
) -> None:
    setup(project, n=300)
    assert project.braze("sync").exit_code == 0
    first = emulator.stats()["data_points"]
    project.write_model(users_sql(300, plan="case when i <= 37 then 'pro' else 'free' end"))
    project.dbt("run")
    result = project.braze("sync")
    assert result.exit_code == 0, result.output
    assert emulator.stats()["data_points"] - first == 37
    assert emulator.profiles["37"]["plan"] == "pro"
    assert emulator.profiles["38"]["plan"] == "free"
    full_resend = 300 * len(ATTRIBUTES)
    print(f"incremental: 37 data points; a full resend would cost {full_resend}")


def test_two_dbt_runs_before_a_sync_send_each_change_once(
    project: DbtProject, emulator: BrazeEmulator
) -> None:
    setup(project, n=50)
    assert project.braze("sync").exit_code == 0
    first = emulator.stats()["data_points"]
    project.write_model(users_sql(50, plan="case when i <= 10 then 'pro' else 'free' end"))
    project.dbt("run")
    project.write_model(users_sql(50, plan="case when i <= 10 then 'pro' else 'free' end", extra=""))
    project.dbt("run")
    assert project.braze("sync").exit_code == 0
    assert emulator.stats()["data_points"] - first == 10
    assert project.braze("sync").exit_code == 0
    assert emulator.stats()["data_points"] - first == 10


def test_a_new_mapping_sends_only_that_attribute(project: DbtProject, emulator: BrazeEmulator) -> None:
    setup(project, n=30)
    assert project.braze("sync").exit_code == 0
    first = emulator.stats()["data_points"]
    project.write_model(users_sql(30, extra=", 'c' || (i % 3) as cohort"))
    block = braze_model()
    block["config"]["meta"]["braze"]["attributes"]["cohort"] = "cohort"
    project.write_schema([block])
    project.dbt("run")
    assert project.braze("sync").exit_code == 0
    assert emulator.stats()["data_points"] - first == 30
    sent = [entry for entry in emulator.requests_log if entry[0] == "/users/track"][-1][1]
    assert all(set(obj) == {"external_id", "cohort"} for obj in sent["attributes"])
    # removing the mapping again sends nothing
    project.write_schema([braze_model()])
    project.dbt("run")
    assert project.braze("sync").exit_code == 0
    assert emulator.stats()["data_points"] - first == 30


def test_partial_errors_are_recorded_and_not_resent(project: DbtProject, emulator: BrazeEmulator) -> None:
    project.write_model(
        users_sql(10).replace(
            "'user' || i || '@example.com'",
            "case when i = 3 then 'not an email' else 'user' || i || '@example.com' end",
        )
    )
    project.write_schema([braze_model()])
    project.dbt("run")
    result = project.braze("sync")
    assert result.exit_code == 0, result.output  # rejected with a recorded reason is not a failure
    assert "rows rejected" in result.output and "email" in result.output
    assert "3" not in emulator.profiles and len(emulator.profiles) == 9
    rejected = project.query("select braze_key, attribute, reason from braze_rejected")
    assert {r[0] for r in rejected} == {"3"}
    assert project.query("select distinct kind from braze_rejected") == [("users",)]
    assert project.query("select distinct kind from braze_sync_runs") == [("users",)]
    assert {r[1] for r in rejected} == set(ATTRIBUTES)
    assert all("email" in r[2] for r in rejected)
    requests = emulator.stats()["requests"]
    project.dbt("run")
    # the nine users Braze accepted are vouched for by their rows' fingerprints; the one it
    # refused is not (its old fingerprint, none, vouches for nothing): diffed again
    assert compared(project) == 1
    latest = project.query(
        "select braze_key, fingerprint from (select braze_key, fingerprint, row_number() over "
        "(partition by braze_key order by recorded_at desc) as recency from braze_fingerprints) f "
        "where recency = 1"
    )
    assert {key for key, fingerprint in latest if fingerprint} == {str(i) for i in range(1, 11)} - {"3"}
    assert project.braze("sync").exit_code == 0
    assert emulator.stats()["requests"] == requests  # not resent while unchanged
    # once the value is fixed the whole user goes out: the refused object was never applied
    project.write_model(users_sql(10))
    project.dbt("run")
    assert project.braze("sync").exit_code == 0
    assert emulator.profiles["3"] == expected_profile(3)


def test_update_mode_creates_no_user(project: DbtProject, emulator: BrazeEmulator) -> None:
    emulator.add_user(external_id="2", attributes={"plan": "legacy"})
    setup(project, n=5, mode="update")
    result = project.braze("sync")
    assert result.exit_code == 0, result.output
    assert set(emulator.profiles) == {"2"}
    assert emulator.profiles["2"] == expected_profile(2)
    sent = [entry for entry in emulator.requests_log if entry[0] == "/users/track"][-1][1]
    assert all(obj["_update_existing_only"] is True for obj in sent["attributes"])
    assert emulator.stats()["users_created"] == 0


def test_braze_id_model_updates_existing_users(project: DbtProject, emulator: BrazeEmulator) -> None:
    emulator.add_user(braze_id="b-1")
    project.write_model("select 'b-1' as bid, 'gold' as tier union all select 'b-unknown', 'silver'")
    project.write_schema(
        [
            {
                "name": "braze_users",
                "config": {"meta": {"braze": {"braze_id": "bid", "attributes": {"tier": "tier"}}}},
            }
        ]
    )
    project.dbt("run")
    assert project.braze("sync").exit_code == 0
    assert len(emulator.profiles) == 1
    assert next(iter(emulator.profiles.values()))["tier"] == "gold"


@pytest.mark.parametrize("on_removed", ["ignore", "unset", "delete"])
def test_on_removed(project: DbtProject, emulator: BrazeEmulator, on_removed: str) -> None:
    setup(project, n=10, on_removed=on_removed)
    assert project.braze("sync").exit_code == 0
    project.write_model(users_sql(10) + " where i not in (4, 7)")
    project.dbt("run")
    result = project.braze("sync")
    assert result.exit_code == 0, result.output
    profiles = emulator.profiles
    if on_removed == "ignore":
        assert profiles["4"] == expected_profile(4)
    elif on_removed == "unset":
        assert profiles["4"] == {} and profiles["7"] == {}
        assert emulator.stats()["users_created"] == 10
    else:
        assert "4" not in profiles and "7" not in profiles
        assert emulator.stats()["users_deleted"] == 2
    assert profiles["5"] == expected_profile(5)
    # a second sync has nothing more to do for removed rows
    requests = emulator.stats()["requests"]
    assert project.braze("sync").exit_code == 0
    assert emulator.stats()["requests"] == requests
    # a row that comes back is diffed against what Braze holds
    project.write_model(users_sql(10))
    project.dbt("run")
    points = emulator.stats()["data_points"]
    assert project.braze("sync").exit_code == 0
    expected_points = 0 if on_removed == "ignore" else 2 * len(ATTRIBUTES)
    assert emulator.stats()["data_points"] - points == expected_points
    assert emulator.profiles["4"] == expected_profile(4)


def test_null_and_duplicate_identifiers_are_withheld_and_reported(
    project: DbtProject, emulator: BrazeEmulator
) -> None:
    project.write_model(
        users_sql(6).replace(
            "select i as user_id", "select case when i = 6 then null when i = 5 then 4 else i end as user_id"
        )
    )
    project.write_schema([braze_model(max_duplicate_share=0.5)])
    run = project.dbt("run")
    assert "1 rows with a null identifier" in run.output
    assert "1 duplicated identifiers (2 rows)" in run.output
    result = project.braze("sync")
    assert result.exit_code == 0
    assert set(emulator.profiles) == {"1", "2", "3"}
    assert "1 rows with a null identifier" in result.output
    assert "1 duplicated identifiers (2 rows)" in result.output


def test_dry_run_sends_and_changes_nothing(project: DbtProject, emulator: BrazeEmulator) -> None:
    setup(project, n=80)
    result = project.braze("sync", "--dry-run", env={"BRAZE_API_KEY": "", "BRAZE_REST_ENDPOINT": ""})
    assert result.exit_code == 0, result.output
    assert "would be created" in result.output and "80" in result.output
    assert "data points (estimated)" in result.output and str(80 * len(ATTRIBUTES)) in result.output
    assert '"external_id": "1"' in result.output  # a sample payload
    assert emulator.stats()["requests"] == 0
    assert project.query("select count(*) from braze_state") == [(0,)]


def test_full_refresh_resends_everything_including_nulls(
    project: DbtProject, emulator: BrazeEmulator
) -> None:
    setup(project, n=10)
    assert project.braze("sync").exit_code == 0
    emulator.reset()  # Braze lost everything; the stored state says it is in step
    assert project.braze("sync").exit_code == 0
    assert emulator.profiles == {}
    result = project.braze("sync", "--full-refresh")
    assert result.exit_code == 0, result.output
    assert emulator.profiles["3"] == expected_profile(3)
    assert emulator.stats()["data_points"] == 10 * len(ATTRIBUTES)


def test_invalid_meta_exits_2_naming_model_and_key(project: DbtProject, emulator: BrazeEmulator) -> None:
    project.write_model(users_sql(3))
    block = braze_model()
    block["config"]["meta"]["braze"]["atributes"] = {"email": "email"}
    block["config"]["meta"]["braze"]["braze_id"] = "user_id"
    project.write_schema([block])
    run = project.dbt("run")
    assert "dbt-braze validate" in run.output  # the hook skipped it and said why
    for command in (("sync",), ("validate",)):
        result = project.braze(*command)
        assert result.exit_code == 2, result.output
        assert "braze_users: config.meta.braze.atributes: unknown key" in result.output
        assert "exactly one of `external_id` or `braze_id`" in result.output
        assert "Traceback" not in result.output
    assert emulator.stats()["requests"] == 0


def test_missing_api_key_exits_2(project: DbtProject, emulator: BrazeEmulator) -> None:
    setup(project, n=3)
    result = project.braze("sync", env={"BRAZE_API_KEY": ""})
    assert result.exit_code == 2
    assert "BRAZE_API_KEY" in result.output
    assert emulator.stats()["requests"] == 0


def test_wrong_key_exits_1_and_is_never_echoed(project: DbtProject, emulator: BrazeEmulator) -> None:
    setup(project, n=3)
    wrong = "wrong-key-3d9a71c4e2"
    result = project.braze("sync", "--debug", env={"BRAZE_API_KEY": wrong})
    assert result.exit_code == 1
    assert "401" in result.output or "refused" in result.output
    assert wrong not in result.output
    assert API_KEY not in result.output
    assert emulator.stats()["status_counts"].get(401, 0) >= 1
    assert project.query("select count(*) from braze_state") == [(0,)]  # nothing acknowledged


def test_no_pending_relation_exits_2(project: DbtProject, emulator: BrazeEmulator) -> None:
    project.write_model(users_sql(3))
    project.write_schema([braze_model()])
    project.dbt("parse")
    result = project.braze("sync")
    assert result.exit_code == 2
    assert "run `dbt run` first" in result.output


def test_a_model_with_too_many_duplicated_identifiers_is_paused(
    project: DbtProject, emulator: BrazeEmulator
) -> None:
    # 10 of 100 rows share an identifier: above the default 5%
    project.write_model(
        users_sql(100).replace("select i as user_id", "select case when i > 90 then 1 else i end as user_id")
    )
    project.write_schema([braze_model()])
    project.dbt("run")
    result = project.braze("sync")
    assert result.exit_code == 1
    assert "braze_users: not synced" in result.output and "max_duplicate_share" in result.output
    assert emulator.stats()["requests"] == 0
    runs = project.query("select status, error from braze_sync_runs where status <> 'running'")
    assert runs and runs[-1][0] == "failed" and "not synced" in runs[-1][1]


def fingerprinted(project: DbtProject) -> int:
    """Users the last dbt run vouched for as held by Braze (pending 'fingerprint' rows)."""
    return int(
        project.query("select count(*) from braze_pending__braze_users where change_kind = 'fingerprint'")[0][
            0
        ]
    )


def compared(project: DbtProject) -> int:
    """Users the last dbt run compared attribute by attribute: those it vouched for, and those
    with pending upserts."""
    rows = project.query(
        "select count(distinct braze_key) from braze_pending__braze_users "
        "where change_kind in ('fingerprint', 'upsert')"
    )
    return int(rows[0][0])


def test_fingerprints_skip_unchanged_users_and_never_hide_a_change(
    project: DbtProject, emulator: BrazeEmulator
) -> None:
    setup(project, n=20, on_removed="unset")
    assert fingerprinted(project) == 0  # new users: nothing to vouch for yet
    assert project.braze("sync").exit_code == 0
    project.dbt("run")
    # Braze accepted each user's whole row, and the sync recorded that row's fingerprint:
    # the run right after compares no user attribute by attribute
    assert compared(project) == 0
    assert project.braze("sync").exit_code == 0
    sent = emulator.stats()["data_points"]

    # a change, and the change undone: each reaches Braze
    project.write_model(users_sql(20, plan="case when i = 3 then 'pro' else 'free' end"))
    project.dbt("run")
    assert project.braze("sync").exit_code == 0
    assert emulator.profiles["3"]["plan"] == "pro"
    project.write_model(users_sql(20))
    project.dbt("run")
    assert project.braze("sync").exit_code == 0
    assert emulator.profiles["3"] == expected_profile(3)
    assert emulator.stats()["data_points"] - sent == 2

    # a vouched-for user removed (its values unset in Braze), then back as it was: sent again
    project.dbt("run")
    project.write_model(users_sql(20) + " where i <> 5")
    project.dbt("run")
    assert project.braze("sync").exit_code == 0
    assert emulator.profiles["5"] == {}
    project.write_model(users_sql(20))
    project.dbt("run")
    assert project.braze("sync").exit_code == 0
    assert emulator.profiles["5"] == expected_profile(5)


def test_arrays_arrive_as_json_arrays(project: DbtProject, emulator: BrazeEmulator) -> None:
    """A PostgreSQL array's text is `{1,2}`, not JSON: it must reach Braze as [1, 2]."""
    project.write_model(users_sql(3, extra=", array[i, i + 1] as tags"))
    block = braze_model()
    block["config"]["meta"]["braze"]["attributes"]["tags"] = "tags"
    project.write_schema([block])
    project.dbt("run")
    result = project.braze("sync")
    assert result.exit_code == 0, result.output
    assert project.query("select count(*) from braze_rejected") == [(0,)]
    for i in (1, 2, 3):
        assert emulator.profiles[str(i)] == {**expected_profile(i), "tags": [i, i + 1]}
