"""The golden values and how a test reaches them.

integration_tests/seeds/ pins the normalized text and md5 of every supported
scalar type (braze_golden_hashes.csv) and JSON shape (braze_golden_json.csv).
Here: those files read, the models that hold the same values on DuckDB and
PostgreSQL, and the pending upserts of a run read back, on those two or on a
local Spark. Shared by the hash and JSON stability tests and the dbt-version
test, so that every one of them checks the same pins.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import yaml

from harness import REPO_ROOT, DbtProject, write_dbt_project
from warehouses import profile_yaml, spark_available

GOLDEN_VALUES = REPO_ROOT / "integration_tests" / "seeds" / "braze_golden_hashes.csv"
GOLDEN_JSON = REPO_ROOT / "integration_tests" / "seeds" / "braze_golden_json.csv"

# {attribute: (value type, normalized text, md5 of the text)}
Pending = dict[str, tuple[str, str, str]]


def _read_golden(path: Path) -> Pending:
    with path.open(newline="", encoding="utf-8") as handle:
        return {
            row["attribute"]: (row["value_type"], row["value_text"], row["value_hash"])
            for row in csv.DictReader(handle)
        }


def golden_values() -> Pending:
    return _read_golden(GOLDEN_VALUES)


def golden_json() -> Pending:
    return _read_golden(GOLDEN_JSON)


# Portable SQL (DuckDB and PostgreSQL) for one user holding one value of each type.
VALUES_MODEL = """
select 1 as user_id,
       'Zoë 🚀 O''Brien' as text_value,
       '' as empty_text,
       cast(9007199254740993 as bigint) as big_integer,
       cast(-42 as integer) as small_integer,
       cast(1234.50 as decimal(12, 2)) as decimal_value,
       cast(0.1 as double precision) as float_value,
       cast(1e20 as double precision) as huge_float,
       cast(-1.5e-7 as double precision) as tiny_negative_float,
       true as true_value,
       false as false_value,
       cast('2026-11-28' as date) as date_value,
       cast('2026-11-28 10:15:00' as timestamp) as naive_timestamp,
       cast('2026-11-28 10:15:00+01:00' as timestamp with time zone) as zoned_timestamp
"""

# The JSON golden values as each warehouse writes them. PostgreSQL has no struct
# or map columns: json documents stand for them (json keeps the key order).
JSON_MODELS = {
    "duckdb": r"""
select 1 as user_id,
       cast([1, 2, null] as integer[]) as integer_list,
       ['a"b', 'Zoë 🚀', 'tab' || chr(9) || 'newline' || chr(10), 'back\slash', '', null] as text_list,
       cast([1234.50, -0.10] as decimal(12, 2)[]) as decimal_list,
       cast([0.1, 100, 1e20, -1.5e-7] as double[]) as double_list,
       [[1, 2], [3, 4]] as nested_list,
       [true, false] as boolean_list,
       [date '2026-11-28'] as date_list,
       [timestamp '2026-11-28 10:15:00'] as timestamp_list,
       [timestamptz '2026-11-28 10:15:00+01:00'] as zoned_timestamp_list,
       {'id': 7, 'name': 'x', 'tags': ['a'], 'score': cast(2.5 as double),
        'amount': cast(1234.50 as decimal(12, 2)), 'missing': cast(null as integer),
        'note': cast(null as varchar)} as record,
       map {'b': 1, 'a': 2} as map_value,
       [{'k': 1}, {'k': null}] as record_list,
       cast('{"b" : [1, 2.50], "a" : "x"}' as json) as json_document,
       cast([] as integer[]) as empty_list,
       {'at': timestamp '2026-11-28 10:15:00', 'on': date '2026-11-28',
        'ratio': cast(100 as double)} as dated_record
""",
    "postgres": r"""
select 1 as user_id,
       array[1, 2, null]::integer[] as integer_list,
       array['a"b', 'Zoë 🚀', 'tab' || chr(9) || 'newline' || chr(10), 'back\slash', '', null] as text_list,
       array[1234.50, -0.10]::numeric(12, 2)[] as decimal_list,
       array[0.1, 100, 1e20, -1.5e-7]::double precision[] as double_list,
       array[[1, 2], [3, 4]] as nested_list,
       array[true, false] as boolean_list,
       array[date '2026-11-28'] as date_list,
       array[timestamp '2026-11-28 10:15:00'] as timestamp_list,
       array[timestamptz '2026-11-28 10:15:00+01:00'] as zoned_timestamp_list,
       json_build_object('id', 7, 'name', 'x', 'tags', array['a'], 'score', 2.5::double precision,
                         'amount', 1234.50::numeric(12, 2), 'missing', null::integer,
                         'note', null::text) as record,
       json_build_object('b', 1, 'a', 2) as map_value,
       json_build_array(json_build_object('k', 1), json_build_object('k', null)) as record_list,
       '{"b" : [1, 2.50], "a" : "x"}'::json as json_document,
       array[]::integer[] as empty_list
""",
}


# The JSON golden values in Spark SQL, in a non-UTC session zone; its variant documents
# keep Spark's own key order and numbers (docs/warehouses.md), so json_document is not here.
SPARK_JSON_MODEL = r"""
select 1 as user_id,
       array(1, 2, cast(null as int)) as integer_list,
       array('a"b', 'Zoë 🚀', concat('tab', chr(9), 'newline', chr(10)), 'back\\slash', '',
             null) as text_list,
       array(cast(1234.50 as decimal(12, 2)), cast(-0.10 as decimal(12, 2))) as decimal_list,
       array(cast(0.1 as double), cast(100 as double), cast(1e20 as double),
             cast(-1.5e-7 as double)) as double_list,
       array(array(1, 2), array(3, 4)) as nested_list,
       array(true, false) as boolean_list,
       array(date '2026-11-28') as date_list,
       array(timestamp_ntz '2026-11-28 10:15:00') as timestamp_list,
       array(timestamp '2026-11-28 10:15:00+01:00') as zoned_timestamp_list,
       named_struct('id', 7, 'name', 'x', 'tags', array('a'), 'score', cast(2.5 as double),
                    'amount', cast(1234.50 as decimal(12, 2)), 'missing', cast(null as int),
                    'note', cast(null as string)) as record,
       map('b', 1, 'a', 2) as map_value,
       array(named_struct('k', 1), named_struct('k', cast(null as int))) as record_list,
       cast(array() as array<int>) as empty_list,
       named_struct('at', timestamp_ntz '2026-11-28 10:15:00', 'on', date '2026-11-28',
                    'ratio', cast(100 as double)) as dated_record
"""


def in_time_zone(project: DbtProject, zone: str) -> None:
    """Run the warehouse session in `zone` (PostgreSQL: PGTZ; DuckDB: a profile setting)."""
    project.env["PGTZ"] = zone
    profiles = project.root / "profiles.yml"
    document = yaml.safe_load(profiles.read_text())
    output = document["braze_it"]["outputs"]["dev"]
    if output["type"] == "duckdb":
        output["settings"] = {"TimeZone": zone}
    profiles.write_text(yaml.safe_dump(document))


def pending_upserts(project: DbtProject) -> Pending:
    """The one user's pending values."""
    rows = project.query(
        "select attribute, value_type, value_text, value_hash from braze_pending__braze_users "
        "where change_kind = 'upsert'"
    )
    return {attribute: (value_type, text, digest) for attribute, value_type, text, digest in rows}


# One process, one JVM: `dbt run` then `dbt show` of each model's pending relation,
# once per target (the same Spark session and tables, another session time zone).
SPARK_SCRIPT = textwrap.dedent("""
    import json, sys
    from dbt.cli.main import dbtRunner
    dirs = ["--project-dir", sys.argv[1], "--profiles-dir", sys.argv[1]]
    found = {}
    for target in sys.argv[3:]:
        run = dbtRunner().invoke(["run", "--target", target, *dirs])
        assert run.success, run.exception
        found[target] = {}
        for model in sys.argv[2].split(","):
            show = dbtRunner().invoke(["show", "--target", target, "--limit", "-1", "--inline",
                "select attribute, value_type, value_text, value_hash"
                f" from braze_golden.braze_pending__{model} where change_kind = 'upsert'", *dirs])
            assert show.success, show.exception
            found[target][model] = [list(row) for row in show.result.results[0].agate_table.rows]
    print("FOUND " + json.dumps(found))
""")


def run_spark_golden(
    tmp_path: Path, models: dict[str, tuple[str, dict[str, str]]], zones: dict[str, str]
) -> dict[str, dict[str, Pending]]:
    """`dbt run` of `models` ({name: (sql, attributes)}) on a local Spark session once per
    zone (one JVM, one project for every golden check: a Spark start costs tens of seconds),
    and the pending upserts of each model after each run: {target: {model: pending upserts}}."""
    assert spark_available(), "Spark is not usable here: install the `spark` extra and Java 17+"
    root = tmp_path / "project"
    (root / "models").mkdir(parents=True)
    write_dbt_project(root)
    profile = yaml.safe_load(profile_yaml("spark", root, "braze_golden"))
    dev = profile["braze_it"]["outputs"].pop("dev")
    # small, short-lived: as in test_spark.py
    dev["server_side_parameters"]["spark.sql.shuffle.partitions"] = "2"
    dev["server_side_parameters"]["spark.driver.extraJavaOptions"] += " -XX:TieredStopAtLevel=1"
    for target, zone in zones.items():
        output = json.loads(json.dumps(dev))
        output["server_side_parameters"]["spark.sql.session.timeZone"] = zone
        profile["braze_it"]["outputs"][target] = output
    profile["braze_it"]["target"] = next(iter(zones))
    (root / "profiles.yml").write_text(yaml.safe_dump(profile, sort_keys=False))
    (root / "dbt_packages").mkdir()
    (root / "dbt_packages" / "dbt_braze").symlink_to(REPO_ROOT)
    blocks = []
    for name, (model_sql, attributes) in models.items():
        (root / "models" / f"{name}.sql").write_text(model_sql)
        braze = {"external_id": "user_id", "attributes": attributes}
        blocks.append({"name": name, "config": {"meta": {"braze": braze}}})
    (root / "models" / "schema.yml").write_text(yaml.safe_dump({"version": 2, "models": blocks}))
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", SPARK_SCRIPT, str(root), ",".join(models), *zones],
        cwd=root,
        env={**os.environ, "DO_NOT_TRACK": "1", "PYTHONWARNINGS": "ignore"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        timeout=300,
    )
    marker = [line for line in proc.stdout.splitlines() if line.startswith("FOUND ")]
    assert proc.returncode == 0 and marker, proc.stdout[-4000:]
    print(f"\nSpark, {len(zones)} zones: {time.monotonic() - started:.0f} s")
    return {
        target: {
            model: {attribute: (value_type, text, digest) for attribute, value_type, text, digest in rows}
            for model, rows in by_model.items()
        }
        for target, by_model in json.loads(marker[0].removeprefix("FOUND ")).items()
    }
