"""Hash stability: the normalized text and md5 of every supported type are the
golden values pinned in integration_tests/seeds/braze_golden_hashes.csv, on
every warehouse and whatever the session time zone. A change in casting that
altered them would make every user's attributes look changed: a full resend.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from dbt_braze.emulator import BrazeEmulator

from harness import REPO_ROOT, DbtProject

pytestmark = pytest.mark.integration

GOLDEN = REPO_ROOT / "integration_tests" / "seeds" / "braze_golden_hashes.csv"

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
       true as true_value,
       false as false_value,
       cast('2026-11-28' as date) as date_value,
       cast('2026-11-28 10:15:00' as timestamp) as naive_timestamp,
       cast('2026-11-28 10:15:00+01:00' as timestamp with time zone) as zoned_timestamp
"""


def golden() -> dict[str, tuple[str, str, str]]:
    with GOLDEN.open(newline="") as handle:
        return {
            row["attribute"]: (row["value_type"], row["value_text"], row["value_hash"])
            for row in csv.DictReader(handle)
        }


def in_time_zone(project: DbtProject, zone: str) -> None:
    """Run the warehouse session in `zone` (PostgreSQL: PGTZ; DuckDB: a profile setting)."""
    project.env["PGTZ"] = zone
    profiles = project.root / "profiles.yml"
    document = yaml.safe_load(profiles.read_text())
    output = document["braze_it"]["outputs"]["dev"]
    if output["type"] == "duckdb":
        output["settings"] = {"TimeZone": zone}
    profiles.write_text(yaml.safe_dump(document))


@pytest.mark.parametrize("zone", ["UTC", "Asia/Tokyo", "America/Los_Angeles"])
def test_normalized_text_and_hash_match_the_golden_values(
    project: DbtProject, emulator: BrazeEmulator, zone: str
) -> None:
    expected = golden()
    in_time_zone(project, zone)
    project.write_model(VALUES_MODEL)
    project.write_schema(
        [
            {
                "name": "braze_users",
                "config": {
                    "meta": {
                        "braze": {"external_id": "user_id", "attributes": {name: name for name in expected}}
                    }
                },
            }
        ]
    )
    project.dbt("run")
    rows = project.query(
        "select attribute, value_type, value_text, value_hash from braze_pending__braze_users "
        "where change_kind = 'upsert' order by attribute"
    )
    found = {attribute: (value_type, text, digest) for attribute, value_type, text, digest in rows}
    # '' is a value (sent as ""), not a null: it must keep a row and a hash
    assert found == expected


def test_the_golden_file_is_what_braze_receives(project: DbtProject, emulator: BrazeEmulator) -> None:
    """The pinned texts are also the values sent: one sync carries them to Braze typed."""
    expected = golden()
    project.write_model(VALUES_MODEL)
    project.write_schema(
        [
            {
                "name": "braze_users",
                "config": {
                    "meta": {
                        "braze": {"external_id": "user_id", "attributes": {name: name for name in expected}}
                    }
                },
            }
        ]
    )
    project.dbt("run")
    assert project.braze("sync").exit_code == 0
    assert emulator.profiles["1"] == {
        "text_value": "Zoë 🚀 O'Brien",
        "empty_text": "",
        "big_integer": 9007199254740993,
        "small_integer": -42,
        "decimal_value": 1234.5,
        "float_value": 0.1,
        "huge_float": 1e20,
        "true_value": True,
        "false_value": False,
        "date_value": "2026-11-28",
        "naive_timestamp": "2026-11-28T10:15:00Z",
        "zoned_timestamp": "2026-11-28T09:15:00Z",
    }


def test_golden_file_is_well_formed() -> None:
    rows = golden()
    assert len(rows) == 12
    assert all(len(digest) == 32 for _, _, digest in rows.values())
    assert Path(GOLDEN).read_text().startswith("attribute,value_type,value_text,value_hash")
