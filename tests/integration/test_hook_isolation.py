"""One bad model never blocks the others, on DuckDB and PostgreSQL.

A model the hook cannot handle is skipped with a dbt warning (which
`--warn-error` turns into a failure) naming it and the reason; the other
models get their pending changes, whatever their identifier's case and
however their model and column names are quoted.
"""

from __future__ import annotations

from dbt_braze.emulator import BrazeEmulator

from harness import DbtProject, users_sql


def pending_upserts(project: DbtProject, model: str) -> int:
    table = '"braze_pending__' + model.replace('"', '""') + '"'
    return int(project.query(f"select count(*) from {table} where change_kind = 'upsert'")[0][0])


def test_one_bad_model_never_blocks_the_others(project: DbtProject, emulator: BrazeEmulator) -> None:
    quoted_column = ', \'hi \' || i as "say ""hi"""'
    project.write_model(users_sql(3, extra=quoted_column), "braze_users")
    project.write_model(users_sql(3), "o'brien")
    project.write_model(users_sql(3), "broken")
    project.write_schema(
        [
            {  # the identifier in another case than the column (PostgreSQL folds to lower case)
                "name": "braze_users",
                "config": {
                    "meta": {
                        "braze": {
                            "external_id": "USER_ID",
                            "attributes": {"EMAIL": "email", 'say "hi"': "greeting"},
                        }
                    }
                },
            },
            {
                "name": "o'brien",
                "config": {"meta": {"braze": {"external_id": "user_id", "attributes": {"plan": "o'plan"}}}},
            },
            {
                "name": "broken",
                "config": {"meta": {"braze": {"external_id": "user_id", "attributes": {"email": "$email"}}}},
            },
        ]
    )

    run = project.dbt("run")
    assert (
        "dbt_braze: skipping broken: config.meta.braze.attributes.email: Braze attribute `$email`"
        in run.output
    )
    assert "Traceback" not in run.output
    assert pending_upserts(project, "braze_users") == 6
    assert pending_upserts(project, "o'brien") == 3
    assert project.query(
        "select count(*) from information_schema.tables where table_name = 'braze_pending__broken'"
    ) == [(0,)]

    # --warn-error users can fail on the skip; the valid models are built first all the same
    project.query('drop table "braze_pending__o\'brien"')
    failed = project.dbt("run", "--warn-error", expect_success=False)
    assert failed.exit_code == 1
    assert "dbt_braze: skipping broken" in failed.output
    assert pending_upserts(project, "o'brien") == 3

    validate = project.braze("validate")
    assert validate.exit_code == 2
    assert (
        "broken: config.meta.braze.attributes.email: Braze attribute `$email` starts with `$`"
        in validate.output
    )
    assert "braze_users" not in validate.output and "o'brien" not in validate.output

    sync = project.braze("sync", "--select", "braze_users")
    assert sync.exit_code == 0, sync.output
    assert emulator.profiles["2"] == {"email": "user2@example.com", "greeting": "hi 2"}
