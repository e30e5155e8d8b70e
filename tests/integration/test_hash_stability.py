"""Hash stability: the normalized text and md5 of every supported type are the
golden values pinned in integration_tests/seeds/braze_golden_hashes.csv, on
DuckDB, PostgreSQL and Spark, whatever the session time zone. A change in
casting that altered them would make every user's attributes look changed: a
full resend.

Floats beyond the golden ones: DuckDB and Spark print them as PostgreSQL
does (FLOAT_TEXTS, checked on the three; DuckDB's own cast gives `100.0`,
`1e+23`: macros/duckdb_floats.sql), and DuckDB matches PostgreSQL on 40,000
random doubles and floats.
"""

from __future__ import annotations

import hashlib
import math
import random
import struct
import time
from pathlib import Path

import pytest

from dbt_braze.emulator import BrazeEmulator

from golden import (
    GOLDEN_VALUES,
    SPARK_JSON_MODEL,
    VALUES_MODEL,
    golden_json,
    golden_values,
    in_time_zone,
    pending_upserts,
    run_spark_golden,
)
from harness import DbtProject, braze_model
from warehouses import PostgresServer

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("zone", ["UTC", "Asia/Tokyo", "America/Los_Angeles"])
def test_normalized_text_and_hash_match_the_golden_values(
    project: DbtProject, emulator: BrazeEmulator, zone: str
) -> None:
    expected = golden_values()
    in_time_zone(project, zone)
    project.write_model(VALUES_MODEL)
    project.write_schema([braze_model(attributes={name: name for name in expected})])
    project.dbt("run")
    # '' is a value (sent as ""), not a null: it must keep a row and a hash
    assert pending_upserts(project) == expected


def test_the_golden_file_is_what_braze_receives(project: DbtProject, emulator: BrazeEmulator) -> None:
    """The pinned texts are also the values sent: one sync carries them to Braze typed."""
    expected = golden_values()
    project.write_model(VALUES_MODEL)
    project.write_schema([braze_model(attributes={name: name for name in expected})])
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
        "tiny_negative_float": -1.5e-07,
        "true_value": True,
        "false_value": False,
        "date_value": "2026-11-28",
        "naive_timestamp": "2026-11-28T10:15:00Z",
        "zoned_timestamp": "2026-11-28T09:15:00Z",
    }


def test_golden_file_is_well_formed() -> None:
    rows = golden_values()
    assert len(rows) == 13
    assert all(len(digest) == 32 for _, _, digest in rows.values())
    assert GOLDEN_VALUES.read_text().startswith("attribute,value_type,value_text,value_hash")


# Doubles (float8 / Spark double) and floats (float4 / Spark float) as
# PostgreSQL 15 prints them: the shortest digits that read back, exponent form
# outside [1e-4, 1e15) (floats: [1e-4, 1e6)), no `.0`. Picked at the edges of
# those rules and where Java's own text (Spark's cast) is not the shortest.
FLOAT_TEXTS = [
    ("double", "100", "100"),
    ("double", "-0", "-0"),
    ("double", "0", "0"),
    ("double", "-2.5", "-2.5"),
    ("double", "0.0001", "0.0001"),
    ("double", "0.00001", "1e-05"),
    ("double", "123456789012345", "123456789012345"),
    ("double", "1e15", "1e+15"),
    ("double", "9007199254740993", "9.007199254740992e+15"),
    ("double", "0.3333333333333333", "0.3333333333333333"),
    ("double", "1.2e21", "1.2e+21"),
    ("double", "1e23", "9.999999999999999e+22"),
    ("double", "77718732093294592", "7.771873209329459e+16"),
    ("double", "282879384806159000", "2.82879384806159e+17"),
    ("double", "1e300", "1e+300"),
    ("double", "-1e-300", "-1e-300"),
    ("double", "5e-324", "5e-324"),
    ("double", "1.7976931348623157e308", "1.7976931348623157e+308"),
    ("double", "NaN", "NaN"),
    ("double", "-Infinity", "-Infinity"),
    ("float", "0.1", "0.1"),
    ("float", "123456.7", "123456.7"),
    ("float", "-1234567.125", "-1.2345671e+06"),
    ("float", "1e16", "1e+16"),
    ("float", "80438656", "8.0438656e+07"),
    ("float", "-432256.625", "-432256.62"),
]
PG_FLOAT_TYPES = {"double": "float8", "float": "float4"}


def test_float_texts_are_postgresql_s(postgres_server: PostgresServer) -> None:
    """The expectations DuckDB and Spark are held to below are what PostgreSQL prints."""
    import psycopg2

    with psycopg2.connect(postgres_server.dsn) as connection, connection.cursor() as cursor:
        for kind, literal, text in FLOAT_TEXTS:
            cursor.execute(f"select cast(cast(%s as {PG_FLOAT_TYPES[kind]}) as text)", (literal,))
            assert cursor.fetchone() == (text,), (kind, literal)


# Where DuckDB's own text is not PostgreSQL's, for each path of
# macros/duckdb_floats.sql: doubles under 2^53 (a tie at 17 digits, 16 digits
# before the point), from 2^53 (DuckDB's digits on a bound of the interval; in
# [2^53, 1e16)), powers of two whose answer is one unit above the rounding,
# and floats whose DuckDB digits are longer than the shortest.
DUCKDB_FLOAT_TEXTS = [
    ("double", "123.456", "123.456"),
    ("double", "-0.000123", "-0.000123"),
    ("double", "1125899906842624.25", "1.1258999068426242e+15"),
    ("double", "40097001845683744", "4.0097001845683744e+16"),
    ("double", "9500000000000002", "9.500000000000002e+15"),
    ("double", "7.120236347223045e-307", "7.120236347223045e-307"),
    ("float", "1.5474250491067253e+26", "1.5474251e+26"),
    ("float", "263742992", "2.6374299e+08"),
    ("float", "2357719.25", "2.3577192e+06"),
    ("float", "-0.5", "-0.5"),
    ("float", "-0", "-0"),
    ("float", "1234567", "1.234567e+06"),
    ("float", "3.4028234663852886e38", "3.4028235e+38"),
    ("float", "1e-45", "1e-45"),
]
SQL_FLOAT_TYPES = {"double": "double precision", "float": "real"}
FLOAT_ATTRIBUTES = {"double_value": "double_value", "float_value": "float_value"}


def test_float_texts_are_the_same_on_every_warehouse(project: DbtProject, emulator: BrazeEmulator) -> None:
    """FLOAT_TEXTS and DUCKDB_FLOAT_TEXTS through the package's own normalization:
    one user per value, in a double or a float column (few columns: on DuckDB
    each costs the binder tens of milliseconds per use in the hook's query)."""
    cases = FLOAT_TEXTS + DUCKDB_FLOAT_TEXTS

    def value(literal: str, kind: str, column: str) -> str:
        return f"cast({repr(literal) if kind == column else 'null'} as {SQL_FLOAT_TYPES[column]})"

    project.write_model(
        "\nunion all\n".join(
            f"select {i} as user_id, {value(literal, kind, 'double')} as double_value, "
            f"{value(literal, kind, 'float')} as float_value"
            for i, (kind, literal, _) in enumerate(cases, start=1)
        )
    )
    project.write_schema([braze_model(attributes=FLOAT_ATTRIBUTES)])
    project.dbt("run")
    rows = project.query(
        "select braze_key, attribute, value_type, value_text, value_hash from braze_pending__braze_users "
        "where change_kind = 'upsert'"
    )
    found = {(key, attribute): (kind, text, digest) for key, attribute, kind, text, digest in rows}
    assert found == {
        (str(i), f"{kind}_value"): ("number", text, hashlib.md5(text.encode()).hexdigest())
        for i, (kind, _, text) in enumerate(cases, start=1)
    }


def random_doubles(rng: random.Random, count: int) -> list[float]:
    """Random bit patterns (every magnitude, a few NaN and infinities), random
    decimals, and the neighbours of powers of two and of round decimals, where
    the rounding interval is lopsided or a short decimal sits on its edge."""
    values: list[float] = []
    while len(values) < count:
        pick = rng.random()
        if pick < 0.4:
            value = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        elif pick < 0.7:
            value = float(f"{rng.randint(1, 10 ** rng.randint(1, 17))}e{rng.randint(-25, 25)}")
        elif pick < 0.85:
            value = math.ldexp(1.0, rng.randint(-1074, 1023))
        else:
            value = float(f"{rng.randint(1, 999)}e{rng.randint(-320, 305)}")
        if pick >= 0.7 and value:
            value = rng.choice([value, math.nextafter(value, 0), math.nextafter(value, math.inf)])
        values.append(-value if rng.random() < 0.5 else value)
    return values


def random_floats(rng: random.Random, count: int) -> list[float]:
    """As random_doubles, for floats (float4): each value is a float widened to a double."""

    def float4(bits: int) -> float:
        return float(struct.unpack("<f", struct.pack("<I", bits))[0])

    def bits_of(value: float) -> int:
        return int(struct.unpack("<I", struct.pack("<f", value))[0])

    values: list[float] = []
    while len(values) < count:
        pick = rng.random()
        if pick < 0.5:
            values.append(float4(rng.getrandbits(32)))
            continue
        if pick < 0.75:
            value = float(f"{rng.randint(1, 10 ** rng.randint(1, 9))}e{rng.randint(-12, 12)}")
        elif pick < 0.9:
            value = math.ldexp(1.0, rng.randint(-149, 127))
        else:
            value = float(f"{rng.randint(1, 999)}e{rng.randint(-47, 35)}")
        bits = bits_of(value) + rng.choice([-1, 0, 0, 1])
        values.append(float4(min(max(bits, 0), 0x7F7FFFFF) | (rng.getrandbits(1) << 31)))
    return values


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_a_new_column_type_is_compared_whatever_the_fingerprints(
    project: DbtProject, emulator: BrazeEmulator
) -> None:
    """DuckDB fingerprints a number by its own cast, which reads 1234567.0 as
    DOUBLE and as FLOAT, while the texts differ (`1234567`, `1.234567e+06`):
    the column type is part of the fingerprint, so the comparison happens."""
    block = braze_model(attributes={"score": "score"})
    project.write_schema([block])
    project.write_model("select 1 as user_id, cast(1234567 as double) as score")
    project.dbt("run")
    assert project.braze("sync").exit_code == 0
    project.dbt("run")  # compares the synced user again and records its fingerprint
    assert "score" not in pending_upserts(project)
    project.write_model("select 1 as user_id, cast(1234567 as float) as score")
    project.dbt("run")
    assert pending_upserts(project)["score"][1] == "1.234567e+06"


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_duckdb_prints_random_floats_as_postgresql_does(
    project: DbtProject, emulator: BrazeEmulator, postgres_server: PostgresServer
) -> None:
    """20,000 doubles and 20,000 floats through the hook on DuckDB, against
    PostgreSQL's float8out/float4out."""
    import psycopg2

    rng = random.Random(20261128)
    count = 20_000
    doubles, floats = random_doubles(rng, count), random_floats(rng, count)

    def literal(values: list[float]) -> str:
        return "[" + ", ".join(f"'{value!r}'" for value in values) + "]"

    project.write_model(
        f"select unnest(range(1, {count + 1})) as user_id,"
        f" unnest(cast({literal(doubles)} as double[])) as double_value,"
        f" unnest(cast(cast({literal(floats)} as double[]) as float[])) as float_value\n"
    )
    project.write_schema([braze_model(attributes=FLOAT_ATTRIBUTES)])
    started = time.monotonic()
    project.dbt("run")
    seconds = time.monotonic() - started
    found = {
        (attribute, int(key)): text
        for key, attribute, text in project.query(
            "select braze_key, attribute, value_text from braze_pending__braze_users "
            "where change_kind = 'upsert'"
        )
    }
    pg_types = {"double_value": (doubles, "float8"), "float_value": (floats, "float4")}
    with psycopg2.connect(postgres_server.dsn) as connection, connection.cursor() as cursor:
        expected = {}
        for attribute, (values, pg_type) in pg_types.items():
            cursor.execute(
                f"select cast(cast(cast(value as float8) as {pg_type}) as text)"
                " from unnest(cast(%s as text[])) with ordinality as v(value, i) order by i",
                ([repr(value) for value in values],),
            )
            expected.update({(attribute, i): text for i, (text,) in enumerate(cursor.fetchall(), start=1)})
    differ = [(key, found.get(key), text) for key, text in expected.items() if found.get(key) != text]
    assert not differ, f"{len(differ)} of {len(expected)} differ from PostgreSQL, e.g. {differ[:5]}"
    print(f"\nDuckDB float texts: {len(expected)} values, dbt run {seconds:.1f} s")


# The float edge cases of both lists hold on Spark too.
SPARK_FLOAT_TEXTS = FLOAT_TEXTS + DUCKDB_FLOAT_TEXTS

# The golden values in Spark SQL (a `\'` escape: '' is not a quote there), the
# float edge cases, and the golden text again under an odd attribute name;
# zoned_timestamp is a Spark `timestamp` (an instant).
SPARK_VALUES_MODEL = (
    """
select 1 as user_id,
       'Zoë 🚀 O\\'Brien' as text_value,
       '' as empty_text,
       cast(9007199254740993 as bigint) as big_integer,
       cast(-42 as int) as small_integer,
       cast(1234.50 as decimal(12, 2)) as decimal_value,
       cast(0.1 as double) as float_value,
       cast(1e20 as double) as huge_float,
       cast(-1.5e-7 as double) as tiny_negative_float,
       true as true_value,
       false as false_value,
       date '2026-11-28' as date_value,
       timestamp_ntz '2026-11-28 10:15:00' as naive_timestamp,
       timestamp '2026-11-28 10:15:00+01:00' as zoned_timestamp,
       'Zoë 🚀 O\\'Brien' as odd_name_text"""
    + "".join(
        f",\n       cast('{literal}' as {kind}) as {kind}_{i}"
        for i, (kind, literal, _) in enumerate(SPARK_FLOAT_TEXTS)
    )
    + "\n"
)

SPARK_ZONES = {"tokyo": "Asia/Tokyo", "los_angeles": "America/Los_Angeles"}


@pytest.mark.spark
def test_spark_gives_the_golden_values_and_json_texts_whatever_the_session_time_zone(tmp_path: Path) -> None:
    """Both golden files on Spark, in one project and one JVM (a Spark start costs tens of
    seconds): scalar values with the float edge cases, and JSON values, in two session zones."""
    floats = {f"{kind}_{i}": text for i, (kind, _, text) in enumerate(SPARK_FLOAT_TEXTS)}
    expected = golden_values()
    # an attribute name with quotes and a backslash: Spark reads '' as two literals
    odd_name = "O'Brien's \\ text"
    attributes = {name: name for name in [*expected, *floats]} | {"odd_name_text": odd_name}
    expected.update(
        {name: ("number", text, hashlib.md5(text.encode()).hexdigest()) for name, text in floats.items()}
    )
    expected[odd_name] = expected["text_value"]
    expected_json = golden_json()
    expected_json.pop("json_document")  # Spark keeps its own key order in variants (golden.py)
    models = {
        "braze_users": (SPARK_VALUES_MODEL, attributes),
        "braze_json_users": (SPARK_JSON_MODEL, {name: name for name in expected_json}),
    }
    for target, found in run_spark_golden(tmp_path, models, SPARK_ZONES).items():
        assert found["braze_users"] == expected, target
        assert found["braze_json_users"] == expected_json, target
