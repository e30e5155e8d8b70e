"""Hash stability of JSON attributes: lists, arrays, structs, maps and json
documents normalize to the golden texts of
integration_tests/seeds/braze_golden_json.csv on DuckDB, PostgreSQL and Spark
(macros/json_values.sql), whatever the session time zone. Each warehouse
spells the values its own way; the texts, and so the hashes, are the same.
Spark's check runs in test_hash_stability, in the one Spark project of the
golden checks (golden.SPARK_JSON_MODEL).
"""

from __future__ import annotations

import hashlib
import json

import pytest

from dbt_braze.emulator import BrazeEmulator

from golden import JSON_MODELS, golden_json, in_time_zone, pending_upserts
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


def test_the_golden_json_texts_are_what_braze_receives(project: DbtProject, emulator: BrazeEmulator) -> None:
    expected = golden_json()
    if project.kind == "postgres":
        expected.pop("dated_record")
    project.write_model(JSON_MODELS[project.kind])
    project.write_schema([braze_model(attributes={name: name for name in expected})])
    project.dbt("run")
    assert project.braze("sync").exit_code == 0
    assert emulator.profiles["1"] == {name: json.loads(text) for name, (_, text, _) in expected.items()}
