"""Hash stability of JSON attributes: lists, arrays, structs, maps and json
documents normalize to the golden texts of
integration_tests/seeds/braze_golden_json.csv on DuckDB, PostgreSQL and Spark
(macros/json_values.sql), whatever the session time zone. Each warehouse
spells the values its own way; the texts, and so the hashes, are the same.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from dbt_braze.emulator import BrazeEmulator

from golden import JSON_MODELS, golden_json, in_time_zone, pending_upserts, run_spark_golden
from harness import DbtProject, braze_model

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("zone", ["UTC", "Asia/Tokyo"])
def test_json_values_match_the_golden_texts(project: DbtProject, emulator: BrazeEmulator, zone: str) -> None:
    expected = golden_json()
    if project.kind == "postgres":
        # PostgreSQL writes timestamps inside composites and documents itself
        expected.pop("dated_record")
    in_time_zone(project, zone)
    project.write_model(JSON_MODELS[project.kind])
    project.write_schema([braze_model(attributes={name: name for name in expected})])
    project.dbt("run")
    assert pending_upserts(project) == expected


def test_golden_json_file_is_consistent() -> None:
    for name, (value_type, text, digest) in golden_json().items():
        assert value_type == "json", name
        assert hashlib.md5(text.encode()).hexdigest() == digest, name


SPARK_MODEL = r"""
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


@pytest.mark.spark
def test_spark_gives_the_golden_json_texts(tmp_path: Path) -> None:
    """Spark in a non-UTC session zone; its variant documents keep Spark's own
    key order and numbers (docs/warehouses.md), so json_document is not here."""
    expected = golden_json()
    expected.pop("json_document")
    found = run_spark_golden(
        tmp_path, SPARK_MODEL, {name: name for name in expected}, {"tokyo": "Asia/Tokyo"}
    )
    assert found["tokyo"] == expected


def test_the_golden_json_texts_are_what_braze_receives(project: DbtProject, emulator: BrazeEmulator) -> None:
    expected = golden_json()
    if project.kind == "postgres":
        expected.pop("dated_record")
    project.write_model(JSON_MODELS[project.kind])
    project.write_schema([braze_model(attributes={name: name for name in expected})])
    project.dbt("run")
    assert project.braze("sync").exit_code == 0
    assert emulator.profiles["1"] == {name: json.loads(text) for name, (_, text, _) in expected.items()}
