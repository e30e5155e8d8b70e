"""The package's SQL in the dialects not tested against a live warehouse:
Snowflake, BigQuery, Redshift, Databricks (docs/warehouses.md).

The macros are rendered by real dbt through the production DbtAccess on an
in-memory DuckDB (no other adapter is installed: tests/fakes.py, `Renderer`),
with dispatch pointed at each adapter's prefixes, the way that
adapter's dbt searches them: `snowflake__` / `bigquery__` / `redshift__` then
`postgres__` / `databricks__` then `spark__`, then `default__`. dbt's own
cross-database macros (dbt.hash, dbt.type_string) and identifier quoting stay
DuckDB's: those belong to the adapters, not to this package. The rendered SQL
is then parsed with sqlglot in the target dialect, searched for constructs the
warehouse lacks, and, where the SQL carries data (rows handed to the
warehouse, timestamp formats), decoded and compared with what went in.

Offline, no warehouse; sqlglot is a `dev` dependency and must be installed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import duckdb
import pytest
import sqlglot
from dbt_common.exceptions import DbtRuntimeError
from sqlglot import exp

from dbt_braze.store import encode_cell

from fakes import PREFIXES, REPO_ROOT, Renderer

DIALECTS = [dialect for dialect in PREFIXES if dialect != "default"]

MAPPINGS = [
    {"column": column, "attribute": column, "value_type": value_type}
    for column, value_type in [
        ("flag", "boolean"),
        ("born", "date"),
        ("seen", "timestamp"),
        ("seen_tz", "timestamptz"),
        ("doc", "json"),
        ("amount", "number"),
        ("visits", "integer"),
        ("name", "string"),
    ]
] + [
    # a JSON column whose type Spark (so Databricks) walks: macros/json_values.sql
    {
        "column": "nested",
        "attribute": "nested",
        "value_type": "json",
        "data_type": "struct<id:int,tags:array<string>,scores:map<string,double>,seen:array<timestamp>>",
    }
]

# Subscription groups (macros/subscriptions.sql), typed as braze_typed_mappings types them:
# from a boolean column and from a text column, under each policy.
GROUP_MAPPINGS = [
    {
        "column": "newsletter",
        "attribute": "$subscription_group:news-1",
        "value_type": "subscription",
        "state_type": "boolean",
        "subscriptions": "unsubscribe_only",
    },
    {
        "column": "sms",
        "attribute": "$subscription_group:sms-2",
        "value_type": "subscription",
        "state_type": "string",
        "subscriptions": "mirror",
    },
]

# Values as the sync hands them over: '' is NULL; quotes, backslashes,
# newlines and non-ASCII must survive each dialect's literal rules.
ROWS = [
    ("user-1", "name", "0cc175b9c0f1b6a831c399e269772661"),
    ("O'Brien\\", "it's", ""),
    ("Zoë 🚀", "multi\nline", "92eb5ffee6ae2fec3ad71c777531578f"),
    ("", "tab\there", "-"),
]
ROW_NAMES = ("braze_key", "attribute", "value_hash")

# Constructs each warehouse does not have (sqlglot expression types), which the
# default macros use: finding one means an override is missing or not dispatched.
FORBIDDEN: dict[str, tuple[type[exp.Expression], ...]] = {
    "snowflake": (exp.AtTimeZone, exp.StringToArray, exp.Unnest),
    "bigquery": (exp.AtTimeZone, exp.StringToArray, exp.ToChar),
    "redshift": (),  # string_to_array: checked as text (sqlglot reads split_to_array as the same node)
    "databricks": (exp.AtTimeZone, exp.StringToArray),
}
# sqlglot reads Redshift's getdate() as CURRENT_TIMESTAMP and PartiQL's
# `from t, t.array as item` as UNNEST: check the text there.
FORBIDDEN_TEXT = {
    "redshift": re.compile(
        r"\bcurrent_timestamp\b|\bnow\(|\bunnest\s*\(|\b(?<!split_)string_to_array\s*\(|regexp_split_to_array",
        re.IGNORECASE,
    )
}


@pytest.fixture(scope="module")
def renderer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Renderer]:
    rendering = Renderer(tmp_path_factory.mktemp("dialects"))
    yield rendering
    rendering.close()


def rows_columns(rows: list[tuple[str, ...]]) -> list[list[str]]:
    return [[name, "\x1f".join(encode_cell(row[i]) for row in rows)] for i, name in enumerate(ROW_NAMES)]


def parse(sql: str, dialect: str) -> exp.Expression:
    if dialect in ("bigquery", "databricks"):
        # DuckDB quotes identifiers with "; these dialects with ` (dbt's quoting, not the package's).
        sql = re.sub(r'"(\w+)"', r"`\1`", sql)
    tree = sqlglot.parse_one(sql, read=dialect)
    assert tree is not None
    return tree


@contextlib.contextmanager
def model_columns(renderer: Renderer, mappings: list[dict[str, str]]) -> Iterator[None]:
    """The model's key and mapped columns, as text, for the macros that inspect
    the model (the --full-refresh read types its mappings from its columns).
    With dispatch pointed at another adapter's prefixes, dbt's own
    get_columns_in_relation macro has no implementation here (it dispatches
    too, and only dbt-duckdb is installed): the adapter method is stood in for."""
    columns = [column("character varying", name=name) for name in ["id", *(m["column"] for m in mappings)]]
    with mock.patch.object(renderer.adapter, "get_columns_in_relation", lambda _relation: columns):
        yield


def full_refresh_sql(
    renderer: Renderer, dialect: str, mappings: list[dict[str, str]], key_prefix: str = ""
) -> str:
    """The --full-refresh read."""
    with model_columns(renderer, mappings):
        return str(
            renderer.macro(
                dialect,
                "braze_read_full_refresh_sql",
                relation=renderer.relation("users"),
                id_column="id",
                mappings=mappings,
                key_prefix=key_prefix,
            )
        )


def package_sql(renderer: Renderer, dialect: str) -> dict[str, str]:
    """Every SQL statement the package runs, rendered for `dialect`."""
    m = "users_model"
    rows_sql = renderer.macro(dialect, "braze_rows_sql", columns=rows_columns(ROWS[:1]))
    key_range = (encode_cell("a"), encode_cell("z'"))
    calls: dict[str, tuple[str, dict[str, Any]]] = {
        "pending": (
            "braze_pending_sql",
            dict(
                model_name=m,
                relation=renderer.relation("users"),
                id_column="id",
                mappings=MAPPINGS + GROUP_MAPPINGS,
                built_at="(select " + renderer.macro(dialect, "braze_utc_now") + ")",
            ),
        ),
        "pending_by_email": (
            "braze_pending_sql",
            dict(
                model_name=m,
                relation=renderer.relation("users"),
                id_column="id",
                mappings=MAPPINGS,
                built_at="(select " + renderer.macro(dialect, "braze_utc_now") + ")",
                key_prefix="email:",
            ),
        ),
        "summary": ("braze_pending_summary_sql", dict(relation=renderer.relation("braze_pending__x"))),
        "pending_users": ("braze_pending_users_sql", dict(model_name=m)),
        "read_upserts": ("braze_read_upserts_sql", dict(model_name=m)),
        "read_removed": ("braze_read_removed_sql", dict(model_name=m, mapped_only=True)),
        "withheld": ("braze_withheld_sql", dict(model_name=m)),
        "rows": ("braze_rows_sql", dict(columns=rows_columns(ROWS))),
        "acknowledge": ("braze_acknowledge_sql", dict(model_name=m, rows_sql=rows_sql, run_id="r1")),
        "record_rejected": ("braze_record_rejected_sql", dict(model_name=m, rows_sql=rows_sql, kind="users")),
        "built_at": ("braze_pending_built_at_sql", dict(model_name=m)),
        "is_stale": ("braze_pending_is_stale_sql", dict(model_name=m)),
        "record_run": (
            "braze_record_run_sql",
            dict(
                run_id="r1",
                model_name=m,
                status="failed",
                ended=True,
                counts={"requests": 3},
                error="HTTP 500",
                holder="host-1",
                kind="catalog",
            ),
        ),
        "live_runs": ("braze_live_runs_sql", dict(model_name=m, lease_seconds=300)),
        "read_objects": ("braze_read_objects_sql", dict(model_name=m)),
        "read_removed_users": ("braze_read_removed_users_sql", dict(model_name=m, mapped_only=False)),
        "read_removed_by_alias": (
            "braze_read_removed_users_sql",
            dict(
                model_name=m, mapped_only=True, key_prefix="user_alias:crm:", page={"after": "a", "rows": 9}
            ),
        ),
        "read_recorded_elsewhere": (
            "braze_read_removed_users_sql",
            dict(model_name=m, mapped_only=False, key_prefix="", recorded_elsewhere=True),
        ),
        "identifier_change": (
            "braze_identifier_change_sql",
            dict(model_name=m, relation=renderer.relation("users"), id_column="id", key_prefix="phone:"),
        ),
        "pending_identifier_change": (
            "braze_pending_identifier_change_sql",
            dict(model_name=m, key_prefix=""),
        ),
        "user_objects": ("braze_user_objects_sql", dict(rows_sql="select * from changes")),
        "acknowledge_objects": (
            "braze_acknowledge_objects_sql",
            dict(model_name=m, keys_sql=rows_sql, stamp="2026-11-28", run_id="r1", key_range=key_range),
        ),
        "objects_built": ("braze_objects_built_sql", dict(model_name=m, stamp="2026-11-28 10:15:00.25")),
        "run_started_at": ("braze_run_started_at_sql", dict(run_id="r1")),
        "recent_runs": ("braze_recent_runs_sql", dict(model_name=m, limit=5)),
        "pending_counts": ("braze_pending_counts_sql", dict(model_name=m, on_removed="unset")),
        "rejected_summary": ("braze_rejected_summary_sql", dict(model_name=m, limit=5)),
        "rejected_count": ("braze_rejected_count_sql", dict(model_name=m)),
        "create_table": (
            "braze_create_table_sql",
            dict(
                relation=renderer.relation("braze_state"), columns_sql="model_name TEXT, acked_at timestamp"
            ),
        ),
    }
    rendered = {key: str(renderer.macro(dialect, name, **kwargs)) for key, (name, kwargs) in calls.items()}
    rendered["run_started_at"] = "select " + rendered["run_started_at"]
    rendered["full_refresh"] = full_refresh_sql(renderer, dialect, MAPPINGS + GROUP_MAPPINGS)
    rendered["full_refresh_by_phone"] = full_refresh_sql(renderer, dialect, MAPPINGS, "phone:")
    swap = f"{dialect}__braze_swap_sql"
    if swap in {m.name for m in renderer.adapter._macro_resolver.macros.values()}:
        rendered["swap"] = renderer.macro(
            dialect, swap, staging=renderer.relation("pending__building"), target=renderer.relation("pending")
        )
    return rendered


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_statement_parses_and_avoids_missing_constructs(renderer: Renderer, dialect: str) -> None:
    for key, sql in package_sql(renderer, dialect).items():
        try:
            tree = parse(sql, dialect)
        except sqlglot.errors.ParseError as exc:
            pytest.fail(f"{dialect} {key}: {exc}\n{sql}")
        found = [type(node).__name__ for node in tree.find_all(*FORBIDDEN[dialect])]
        assert not found, f"{dialect} {key} uses {found}, which {dialect} lacks:\n{sql}"
        if dialect in FORBIDDEN_TEXT:
            assert not FORBIDDEN_TEXT[dialect].search(sql), f"{dialect} {key}:\n{sql}"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_subscription_groups_read_back_in_each_dialect(renderer: Renderer, dialect: str) -> None:
    """The group names, states and the JSON of the group entries are literals each dialect
    reads back as written (quotes inside, no escapes lost); a group is typed `subscription`
    in the --full-refresh read too (from the model's columns), and its nulls are left out."""
    rendered = package_sql(renderer, dialect)
    groups = {"$subscription_group:news-1", "$subscription_group:sms-2"}
    expected = {
        "pending": {*groups, "subscribed:withheld", "unsubscribed"},
        "full_refresh": {*groups, "subscribed:withheld", "subscription"},
        "user_objects": {
            '{"subscription_group_id":',
            ',"subscription_state":"',
            '"subscription_groups":[',
            ',"subscription_groups":[',
            "subscribed:withheld",
            "subscription",
        },
    }
    for key, wanted in expected.items():
        # parse() turns "word" into `word` for BigQuery and Databricks, inside literals too:
        # the objects statement quotes no identifier, so it is read as rendered
        tree = (
            sqlglot.parse_one(rendered[key], read=dialect)
            if key == "user_objects"
            else parse(rendered[key], dialect)
        )
        found = set(literals(tree))
        assert wanted <= found, f"{dialect} {key}: {sorted(wanted - found)}\n{rendered[key]}"


def test_the_default_sql_would_be_caught() -> None:
    """The checks above are not vacuous: the default time and rows SQL trip them."""
    default_now = "select cast(current_timestamp at time zone 'UTC' as timestamp)"
    default_rows = "select a from unnest(string_to_array('x', chr(31))) as handed (a)"
    for dialect in DIALECTS:
        trees = [sqlglot.parse_one(default_now, read=dialect)]
        with contextlib.suppress(sqlglot.errors.ParseError):  # BigQuery refuses it outright
            trees.append(sqlglot.parse_one(default_rows, read=dialect))
        found = any(tree.find(*FORBIDDEN[dialect]) for tree in trees)
        assert found or FORBIDDEN_TEXT[dialect].search(default_now), dialect
    with pytest.raises(sqlglot.errors.ParseError):
        sqlglot.parse_one(
            "select * from unnest(string_to_array('a', chr(31)), string_to_array('b', chr(31)))"
            " as handed (a, b)",
            read="bigquery",
        )


def literals(tree: exp.Expression) -> list[str]:
    return [node.this for node in tree.find_all(exp.Literal) if node.is_string]


@pytest.mark.parametrize("dialect", ["snowflake", "bigquery", "databricks"])
def test_rows_literals_carry_the_values(renderer: Renderer, dialect: str) -> None:
    """Each column's literal, read back by the dialect's own rules, is what was sent."""
    sql = renderer.macro(dialect, "braze_rows_sql", columns=rows_columns(ROWS))
    texts = [text for text in literals(parse(sql, dialect)) if "\x1f" in text and text != "\x1f"]
    if dialect == "databricks":  # Spark's split() takes a regex: the separator literal is one too
        texts = [text for text in texts if text != "\\x1f"]
    assert texts == [column_text for _, column_text in rows_columns(ROWS)]


def redshift_rows(sql: str) -> list[tuple[str | None, ...]]:
    chunks = [json.loads(text) for text in literals(parse(sql, "redshift")) if text.startswith("[")]
    return [tuple(map(decode_cell, row)) for chunk in chunks for row in chunk]


def decode_cell(cell: str) -> str | None:
    """What macro braze_decode_cell makes of a cell of encode_cell."""
    return None if cell == "" else bytes.fromhex(cell[1:]).decode("utf-8")


def test_redshift_rows_are_json_chunks_under_the_varchar_limit(renderer: Renderer) -> None:
    sql = renderer.macro("redshift", "braze_rows_sql", columns=rows_columns(ROWS))
    assert sorted(redshift_rows(sql), key=str) == sorted(ROWS, key=str)

    many = [(f"user-{i}-Zoë 🚀", f"attribute_{i % 7}", f"{i:032x}") for i in range(3000)]
    sql = renderer.macro("redshift", "braze_rows_sql", columns=rows_columns(many))
    chunks = [text for text in literals(parse(sql, "redshift")) if text.startswith("[")]
    assert len(chunks) > 1
    assert all(len(chunk.encode()) <= 65535 for chunk in chunks)
    assert sorted(redshift_rows(sql)) == sorted(many)


def normalized(renderer: Renderer, dialect: str, value_type: str) -> exp.Expression:
    sql = renderer.macro(dialect, "braze_normalized_text", expr="x", value_type=value_type)
    return parse(f"select {sql}", dialect).expressions[0]


# Golden texts (integration_tests/seeds/braze_golden_hashes.csv) of these values.
GOLDEN = {
    "date": (dt.date(2026, 11, 28), "2026-11-28"),
    "timestamp": (dt.datetime(2026, 11, 28, 10, 15), "2026-11-28T10:15:00Z"),
    "timestamptz": (
        dt.datetime(2026, 11, 28, 10, 15, tzinfo=dt.timezone(dt.timedelta(hours=1))),
        "2026-11-28T09:15:00Z",
    ),
}


def test_bigquery_time_formats_give_the_golden_text(renderer: Renderer) -> None:
    for value_type, (value, golden) in GOLDEN.items():
        node = normalized(renderer, "bigquery", value_type)
        assert isinstance(node, exp.TimeToStr), (value_type, node.sql("bigquery"))
        zone = node.args.get("zone")
        if value_type == "timestamptz":
            assert zone is not None and zone.this == "UTC"
            value = value.astimezone(dt.timezone.utc)
        else:
            assert zone is None
        assert value.strftime(node.args["format"].this) == golden


@pytest.mark.parametrize("dialect", ["snowflake", "redshift"])
def test_to_char_time_formats_and_utc_conversion(renderer: Renderer, dialect: str) -> None:
    """Snowflake and Redshift read the default PostgreSQL-style to_char formats
    the same way; zoned values go through UTC first."""
    iso = 'YYYY-MM-DD"T"HH24:MI:SS"Z"'
    date_sql = renderer.macro(dialect, "braze_normalized_text", expr="x", value_type="date")
    assert "then to_char(x, 'YYYY-MM-DD') else" in date_sql  # years 1 to 9999 (values.sql)
    for value_type in ("timestamp", "timestamptz"):
        sql = renderer.macro(dialect, "braze_normalized_text", expr="x", value_type=value_type)
        assert f", '{iso}') else" in sql, sql
    tz = normalized(renderer, dialect, "timestamptz")
    if dialect == "snowflake":
        convert = tz.find(exp.ConvertTimezone)
        assert convert is not None and convert.args["target_tz"].this == "UTC"
        assert convert.args.get("source_tz") is None
    else:
        at_zone = tz.find(exp.AtTimeZone)
        assert at_zone is not None and at_zone.args["zone"].this == "UTC"


def test_json_text_uses_each_warehouse_serializer(renderer: Renderer) -> None:
    expected = {"snowflake": "to_json", "bigquery": "to_json_string", "redshift": "json_serialize"}
    for dialect, function in expected.items():
        sql = renderer.macro(dialect, "braze_normalized_text", expr="x", value_type="json")
        assert sql.strip().lower() == f"{function}(x)", (dialect, sql)


JSON_TYPES = {
    # DuckDB's spelling
    'STRUCT("a ""b""" INTEGER[], c MAP(VARCHAR, DECIMAL(12,2)))[3]': {
        "kind": "list",
        "element": {
            "kind": "struct",
            "fields": [
                ('a "b"', {"kind": "list", "element": {"kind": "leaf", "data_type": "INTEGER"}}),
                (
                    "c",
                    {
                        "kind": "map",
                        "key": {"kind": "leaf", "data_type": "VARCHAR"},
                        "value": {"kind": "leaf", "data_type": "DECIMAL(12,2)"},
                    },
                ),
            ],
        },
    },
    "INTEGER[][]": {
        "kind": "list",
        "element": {"kind": "list", "element": {"kind": "leaf", "data_type": "INTEGER"}},
    },
    # Spark's (DESCRIBE leaves field names unquoted)
    "struct<a b:array<decimal(12,2)>,m:map<string,array<timestamp>>>": {
        "kind": "struct",
        "fields": [
            ("a b", {"kind": "list", "element": {"kind": "leaf", "data_type": "decimal(12,2)"}}),
            (
                "m",
                {
                    "kind": "map",
                    "key": {"kind": "leaf", "data_type": "string"},
                    "value": {"kind": "list", "element": {"kind": "leaf", "data_type": "timestamp"}},
                },
            ),
        ],
    },
    # PostgreSQL's catalog names
    "timestamp with time zone[]": {
        "kind": "list",
        "element": {"kind": "leaf", "data_type": "timestamp with time zone"},
    },
    "json": {"kind": "leaf", "data_type": "json"},
}


@pytest.mark.parametrize("data_type", list(JSON_TYPES))
def test_json_types_are_parsed(renderer: Renderer, data_type: str) -> None:
    parsed = renderer.macro("default", "braze_json_type", data_type=data_type)
    as_lists = json.loads(json.dumps(parsed))
    assert as_lists == json.loads(json.dumps(JSON_TYPES[data_type]))


def test_spark_walks_json_types(renderer: Renderer) -> None:
    """Databricks builds the canonical JSON text from the column's type; the
    warehouses that do not walk keep their serializer (above)."""
    sql = renderer.macro("databricks", "braze_mapped_text", mapping=MAPPINGS[-1])
    tree = parse(sql, "databricks")
    functions = {node.sql_name().lower() for node in tree.find_all(exp.Func)}
    assert {"transform", "array_to_string", "concat"} <= functions, functions
    assert "map_entries(" in sql.lower() and "to_json" in sql.lower()
    for dialect in ("snowflake", "bigquery", "redshift"):
        quoted = "`nested`" if dialect == "bigquery" else '"nested"'
        default = renderer.macro(dialect, "braze_normalized_text", expr=quoted, value_type="json")
        assert renderer.macro(dialect, "braze_mapped_text", mapping=MAPPINGS[-1]) == default


def test_utc_now(renderer: Renderer) -> None:
    expected = {"snowflake": "sysdate()", "bigquery": "current_timestamp()", "redshift": "getdate()"}
    for dialect, sql in expected.items():
        assert renderer.macro(dialect, "braze_utc_now").strip() == sql


def column(dtype: str, name: str = "c", **kwargs: Any) -> Any:
    from dbt.adapters.base.column import Column

    class WarehouseColumn(Column):  # BigQuery columns also carry a mode
        mode: str = "NULLABLE"

    col = WarehouseColumn(name, dtype, numeric_scale=kwargs.pop("numeric_scale", None))
    for key, value in kwargs.items():
        setattr(col, key, value)
    return col


@pytest.mark.parametrize(
    ("dialect", "col", "expected"),
    [
        ("snowflake", column("TIMESTAMP_NTZ"), "timestamp"),
        ("snowflake", column("TIMESTAMP_LTZ"), "timestamptz"),
        ("snowflake", column("TIMESTAMP_TZ"), "timestamptz"),
        ("snowflake", column("NUMBER", numeric_scale=0), "integer"),
        ("snowflake", column("NUMBER", numeric_scale=2), "number"),
        ("snowflake", column("VARIANT"), "json"),
        ("snowflake", column("TEXT"), "string"),
        ("bigquery", column("TIMESTAMP"), "timestamptz"),
        ("bigquery", column("DATETIME"), "timestamp"),
        ("bigquery", column("RECORD"), "json"),
        ("bigquery", column("INT64", mode="REPEATED"), "json"),
        ("bigquery", column("INT64"), "integer"),
        ("bigquery", column("BIGNUMERIC"), "number"),
        ("bigquery", column("STRING"), "string"),
        ("redshift", column("timestamp without time zone"), "timestamp"),
        ("redshift", column("timestamp with time zone"), "timestamptz"),
        ("redshift", column("super"), "json"),
        ("redshift", column("character varying"), "string"),
    ],
)
def test_value_types(renderer: Renderer, dialect: str, col: Any, expected: str) -> None:
    assert renderer.macro(dialect, "braze_value_type", column=col) == expected


def test_redshift_text_is_wider_than_varchar_256(renderer: Renderer) -> None:
    """The package's text columns and casts are braze_type_string: dbt's text
    type elsewhere, the widest VARCHAR on Redshift (TEXT is VARCHAR(256))."""
    default_text = renderer.macro("default", "braze_type_string")
    for table in ("state", "rejected", "runs", "fingerprints"):
        columns = f"braze_{table}_columns"
        assert default_text in {dtype for _, dtype in renderer.macro("default", columns)}, table
        types = {dtype for _, dtype in renderer.macro("redshift", columns)}
        assert "varchar(65535)" in types and default_text not in types, (table, types)
    for value_type in ("string", "date", "timestamp"):
        assert "varchar(65535)" in renderer.macro(
            "redshift", "braze_normalized_text", expr="x", value_type=value_type
        )


def test_atomic_swaps(renderer: Renderer) -> None:
    staging, target = renderer.relation("p__building"), renderer.relation("p")
    swap = {
        dialect: " ".join(
            renderer.macro(dialect, f"{dialect}__braze_swap_sql", staging=staging, target=target).split()
        )
        for dialect in ("snowflake", "bigquery", "databricks")
    }
    assert swap["snowflake"] == f"alter table {staging} swap with {target}"
    assert swap["bigquery"] == f"create or replace table {target} copy {staging}"
    assert swap["databricks"] == f"create or replace table {target} as select * from {staging}"


# Attribute names each dialect must carry through its own literal rules: a
# quote ('' is two literals on BigQuery and Spark), a backslash (an escape on
# Snowflake, Redshift, Spark and BigQuery), a newline (none inside a BigQuery
# '...' literal), a double quote (around more than a word: parse() turns "word"
# into `word`) and non-ASCII.
ODD_NAMES = ["it's", "back\\slash", "two\nlines", 'say "hi there"', "Zoë's 🚀"]
ODD_MAPPINGS = [
    {"column": f"c{i}", "attribute": name, "value_type": "string"} for i, name in enumerate(ODD_NAMES)
]


def attribute_sql(renderer: Renderer, dialect: str) -> dict[str, str]:
    """The statements that write attribute names as literals."""
    return {
        "pending": renderer.macro(
            dialect,
            "braze_pending_sql",
            model_name="m",
            relation=renderer.relation("users"),
            id_column="id",
            mappings=ODD_MAPPINGS,
            built_at="(select " + renderer.macro(dialect, "braze_utc_now") + ")",
        ),
        "current_values": renderer.macro(
            dialect,
            "braze_current_values_sql",
            relation=renderer.relation("users"),
            id_column="id",
            mappings=ODD_MAPPINGS,
        ),
        "full_refresh": full_refresh_sql(renderer, dialect, ODD_MAPPINGS),
    }


def names_read_back(sql: str, dialect: str) -> list[str]:
    try:
        tree = parse(sql, dialect)
    except sqlglot.errors.ParseError:
        return []
    return [text for text in literals(tree) if text in ODD_NAMES]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_attribute_names_survive_each_dialects_literals(renderer: Renderer, dialect: str) -> None:
    for key, sql in attribute_sql(renderer, dialect).items():
        found = names_read_back(sql, dialect)
        # current values and the full-refresh read: one literal per name; pending: that,
        # plus the list of mapped names and the fingerprint's mapping signature
        assert sorted(set(found)) == sorted(ODD_NAMES), f"{dialect} {key}:\n{sql}"
        assert len(found) == len(ODD_NAMES) * (3 if key == "pending" else 1), f"{dialect} {key}:\n{sql}"
        assert "\x1f" not in sql, f"{dialect} {key}: a placeholder is left:\n{sql}"
    for name in ODD_NAMES:
        literal = renderer.macro(dialect, "braze_string_literal", text=name)
        assert literals(parse(f"select {literal}", dialect)) == [name], (dialect, literal)


def test_the_default_literals_would_be_caught(renderer: Renderer) -> None:
    """Rendered as the default (`'...''...'`), names do not read back in these dialects."""
    default = attribute_sql(renderer, "default")["pending"]
    for dialect in ("bigquery", "databricks", "snowflake", "redshift"):
        assert sorted(set(names_read_back(default, dialect))) != sorted(ODD_NAMES), dialect


@pytest.mark.parametrize("dialect", DIALECTS)
def test_the_default_sql_is_right_as_rendered(renderer: Renderer, dialect: str) -> None:
    """No adapter rewrites the default change-detection SQL: the default itself
    writes names with the dispatched literal (braze_string_literal) and casts and
    hashes with the dispatched text type (braze_type_string, braze_hash)."""
    sql = renderer.macro(
        dialect,
        "default__braze_pending_sql",
        model_name="m",
        relation=renderer.relation("users"),
        id_column="id",
        mappings=ODD_MAPPINGS,
        built_at="(select " + renderer.macro(dialect, "braze_utc_now") + ")",
    )
    found = names_read_back(sql, dialect)
    assert sorted(set(found)) == sorted(ODD_NAMES) and len(found) == 3 * len(ODD_NAMES), sql
    if dialect == "redshift":
        assert narrow_text(sql, 2) == [], sql


# -- state keys by the kind of identifier ----------------------------------------------------------

# An alias label carried through each dialect's literal rules, like the attribute names above.
ODD_LABEL = 'it\'s \\ "hi there" Zoë 🚀'


def key_prefix_sql(renderer: Renderer, dialect: str, key_prefix: str) -> dict[str, str]:
    """The statements that build state keys from the model's identifier column."""
    relation = renderer.relation("users")
    built_at = "(select " + renderer.macro(dialect, "braze_utc_now") + ")"
    return {
        "pending": renderer.macro(
            dialect,
            "braze_pending_sql",
            model_name="m",
            relation=relation,
            id_column="id",
            mappings=MAPPINGS,
            built_at=built_at,
            key_prefix=key_prefix,
        ),
        "current_values": renderer.macro(
            dialect,
            "braze_current_values_sql",
            relation=relation,
            id_column="id",
            mappings=MAPPINGS,
            key_prefix=key_prefix,
        ),
        "full_refresh": full_refresh_sql(renderer, dialect, MAPPINGS, key_prefix),
        "identifier_change": renderer.macro(
            dialect,
            "braze_identifier_change_sql",
            model_name="m",
            relation=relation,
            id_column="id",
            key_prefix=key_prefix,
        ),
    }


# the identifier column cast to text: the key, and `||` before it when prefixed
KEY_CAST = r"cast\(\s*[\"`]?id[\"`]?\s+as\s"
PREPENDED = r"\|\|\s*(?:nullif\(\s*)?" + KEY_CAST


@pytest.mark.parametrize("dialect", [*DIALECTS, "default"])
def test_every_key_of_a_prefixed_identifier_carries_its_prefix(renderer: Renderer, dialect: str) -> None:
    """Wherever a statement builds keys from the identifier column (the key counts, the
    fingerprints, each current-values branch: DuckDB's floats and Spark's stack too), the
    prefix is prepended, read back intact by the dialect; an external_id model's SQL has none."""
    prefix = f"user_alias:{ODD_LABEL}:"
    for key, sql in key_prefix_sql(renderer, dialect, prefix).items():
        key_casts = len(re.findall(KEY_CAST, sql, re.IGNORECASE))
        assert key_casts >= 1, f"{dialect} {key}:\n{sql}"
        assert len(re.findall(PREPENDED, sql, re.IGNORECASE)) == key_casts, f"{dialect} {key}:\n{sql}"
        if dialect != "default":
            found = [text for text in literals(parse(sql, dialect)) if text == prefix]
            # identifier_change also tells the keys apart by their prefix, and the pending
            # relation records the prefix it was computed for (braze_pending_key_prefix_sql)
            extra = key in ("identifier_change", "pending")
            assert len(found) == key_casts + extra, f"{dialect} {key}:\n{sql}"
    for key, sql in key_prefix_sql(renderer, dialect, "").items():
        assert not re.search(PREPENDED, sql, re.IGNORECASE), f"{dialect} {key}:\n{sql}"


def test_key_prefixes_are_the_same_in_python_and_in_the_hook(renderer: Renderer) -> None:
    from dbt_braze.config import ID_FIELDS, ModelSync

    for id_field in ID_FIELDS:
        config = ModelSync("m", "model.p.m", id_field, "c", "update", "ignore", (), alias_label="crm")
        label = "crm" if id_field == "user_alias" else None
        rendered = renderer.macro("default", "braze_key_prefix", id_field=id_field, alias_label=label)
        assert rendered == config.key_prefix, id_field


KEYS = [
    "42",
    "email:a@b.co",
    "phone:+14155550123",
    "user_alias:crm:c1",
    "user_alias:erp:c1",
    f"user_alias:{ODD_LABEL}:x",
    "emails:x",
    "e",
    "",
    "Zoë 🚀",
]


@pytest.mark.parametrize(
    "key_prefix", ["", "email:", "phone:", "user_alias:crm:", f"user_alias:{ODD_LABEL}:"]
)
def test_recorded_elsewhere_agrees_with_python(renderer: Renderer, key_prefix: str) -> None:
    """macro braze_recorded_elsewhere_sql, run on DuckDB, tells the keys apart as
    config.recorded_elsewhere does (the sync forgets exactly the users the store reads)."""
    from dbt_braze.config import recorded_elsewhere

    predicate = renderer.macro("default", "braze_recorded_elsewhere_sql", key_prefix=key_prefix)
    values = ", ".join(renderer.macro("default", "braze_string_literal", text=k) for k in KEYS)
    with duckdb.connect() as conn:
        found = conn.execute(
            f"select braze_key, {predicate} from unnest([{values}]) t (braze_key)"
        ).fetchall()
    assert dict(found) == {k: recorded_elsewhere(k, key_prefix) for k in KEYS}


def test_package_variables_are_read_in_one_place(renderer: Renderer) -> None:
    assert renderer.macro("default", "braze_schema") == "analytics"  # the target schema
    read = renderer.adapter.execute_macro
    assert read("_braze_var", project="dbt_braze", kwargs={"name": "dbt_braze_enabled"}) is True
    with pytest.raises(Exception, match="no package variable `dbt_braze_schma`"):
        read("_braze_var", project="dbt_braze", kwargs={"name": "dbt_braze_schma"})
    sources = "\n".join(path.read_text() for path in (REPO_ROOT / "macros").rglob("*.sql"))
    assert len(re.findall(r"\bvar\(", sources)) == 1


def text_casts(tree: exp.Expression) -> list[exp.DataType]:
    text_types = {exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT, exp.DataType.Type.CHAR}
    return [cast.to for cast in tree.find_all(exp.Cast) if cast.to.this in text_types]


def narrow_text(sql: str, hashes: int) -> list[str]:
    """The text casts in `sql` that are not Redshift's widest VARCHAR, after
    checking that each of its `hashes` md5 calls hashes such a cast."""
    tree = parse(sql, "redshift")
    casts = text_casts(tree)
    assert casts, sql
    md5s = list(tree.find_all(exp.MD5))
    assert len(md5s) == hashes, sql
    assert all(isinstance(md5.this, exp.Cast) and md5.this.to in casts for md5 in md5s), sql
    return [cast.sql("redshift") for cast in casts if cast.sql("redshift") != "VARCHAR(65535)"]


def test_redshift_hashes_and_casts_the_whole_text(renderer: Renderer) -> None:
    """VARCHAR without a length (and TEXT) is VARCHAR(256) on Redshift: a value
    cast to it is cut at 256 bytes, so its hash would miss later changes (and
    the full-refresh read would hash it differently from the next sync's)."""
    hashes = {"pending": 2, "current_values": 0, "full_refresh": 1}  # pending: the value and the fingerprint
    for key, sql in attribute_sql(renderer, "redshift").items():
        assert narrow_text(sql, hashes[key]) == [], (key, sql)
    default = attribute_sql(renderer, "default")
    assert narrow_text(default["pending"], 2)
    assert narrow_text(default["full_refresh"], 1)


def test_bigquery_lease_is_timestamp_arithmetic(renderer: Renderer) -> None:
    """recorded_at is a TIMESTAMP; dbt.dateadd on BigQuery gives a DATETIME,
    which BigQuery does not compare with it."""
    sql = renderer.macro("bigquery", "braze_utc_seconds_ago", seconds=300)
    node = parse(f"select {sql}", "bigquery").expressions[0]
    assert isinstance(node, exp.TimestampSub), sql
    assert isinstance(node.this, exp.CurrentTimestamp)
    assert node.expression.name == "300" and node.unit.name.upper() == "SECOND"
    assert not list(node.find_all(exp.DataType)), sql  # no cast to DATETIME
    default = parse("select " + renderer.macro("default", "braze_utc_seconds_ago", seconds=300), "bigquery")
    assert not isinstance(default.expressions[0], exp.TimestampSub)


def test_the_lease_and_run_history_use_each_dialects_forms(renderer: Renderer) -> None:
    """braze_live_runs_sql compares with timestamp_sub on BigQuery; an error
    message with a quote stays one literal, quote included, in every dialect."""
    live = parse(
        renderer.macro("bigquery", "braze_live_runs_sql", model_name="m", lease_seconds=300), "bigquery"
    )
    assert list(live.find_all(exp.TimestampSub))
    for dialect in DIALECTS:
        sql = renderer.macro(
            dialect,
            "braze_record_run_sql",
            run_id="r1",
            model_name="m",
            status="failed",
            ended=True,
            counts={},
            error="Braze said: it's down \\ again",
            holder="host's pid",
            kind="users",
        )
        texts = {literal.this for literal in parse(sql, dialect).find_all(exp.Literal) if literal.is_string}
        assert "Braze said: it's down \\ again" in texts, (dialect, sql)
        assert "host's pid" in texts and "users" in texts, (dialect, sql)


def rejection_reads(renderer: Renderer, dialect: str, limit: int = 5) -> dict[str, str]:
    """What `dbt-braze status` reads of the rejections."""
    return {
        "summary": str(renderer.macro(dialect, "braze_rejected_summary_sql", model_name="m", limit=limit)),
        "count": str(renderer.macro(dialect, "braze_rejected_count_sql", model_name="m")),
    }


def test_snowflake_rejection_reads_have_no_correlated_subquery(renderer: Renderer) -> None:
    """Snowflake refuses a correlated subquery that compares an outer column with
    `>` ("Unsupported subquery type"): its status reads join a pre-aggregated
    state instead, where the default uses `not exists`."""
    for key, sql in rejection_reads(renderer, "snowflake").items():
        tree = parse(sql, "snowflake")
        assert not tree.find(exp.Exists) and "exists" not in sql.lower(), (key, sql)
        assert tree.find(exp.Join), (key, sql)
    for key, sql in rejection_reads(renderer, "default").items():
        assert parse(sql, "snowflake").find(exp.Exists), key


REJECTION_TABLES = (
    "create schema analytics;"
    " create table analytics.braze_state (model_name varchar, braze_key varchar, attribute varchar,"
    " value_hash varchar, acked_at timestamp, run_id varchar);"
    " create table analytics.braze_rejected (model_name varchar, braze_key varchar, attribute varchar,"
    " value_hash varchar, reason varchar, rejected_at timestamp)"
)
T0 = dt.datetime(2026, 11, 28, 10)


def minute(n: int | None) -> dt.datetime | None:
    return None if n is None else T0 + dt.timedelta(minutes=n)


# (model, key, rejected at, reason) and (model, key, acknowledged at), in minutes after T0.
Rejection = tuple[str, str, int | None, str]
Ack = tuple[str, str, int | None]


def run_rejection_reads(
    renderer: Renderer, dialect: str, rejected: list[Rejection], acked: list[Ack], limit: int = 5
) -> dict[str, list[tuple[Any, ...]]]:
    """The status reads rendered for `dialect`, run on DuckDB over these tables."""
    connection = duckdb.connect()  # its catalog is "memory", as dbt-duckdb's in-memory target's
    connection.execute(REJECTION_TABLES)
    connection.executemany(
        "insert into analytics.braze_rejected values (?, ?, 'a', 'h', ?, ?)",
        [(model, key, reason, minute(at)) for model, key, at, reason in rejected],
    )
    connection.executemany(
        "insert into analytics.braze_state values (?, ?, 'a', 'h', ?, 'r')",
        [(model, key, minute(at)) for model, key, at in acked],
    )
    return {
        key: connection.execute(sql).fetchall()
        for key, sql in rejection_reads(renderer, dialect, limit).items()
    }


def test_snowflake_rejection_reads_give_the_defaults_result(renderer: Renderer) -> None:
    """The Snowflake status reads use only SQL DuckDB runs as well: on the same
    tables they give what the default gives, here and on random tables with
    tied and missing times."""
    rejected = [
        ("m", "acked-before", 20, "x"),
        ("m", "acked-after", 10, "x"),
        ("m", "acked-same-time", 20, "x"),
        ("m", "rejected-again", 10, "old"),  # answered by the ack at 15 ...
        ("m", "rejected-again", 30, "new"),  # ... this one not
        ("m", "acked-other-model", 10, "x"),
        ("m", "ack-without-time", 10, "x"),
        ("other", "other-model", 10, "x"),
    ]
    acked = [
        ("m", "acked-before", 10),
        ("m", "acked-after", 20),
        ("m", "acked-same-time", 20),
        ("m", "rejected-again", 15),
        ("other", "acked-other-model", 20),
        ("m", "ack-without-time", None),
    ]
    standing = run_rejection_reads(renderer, "snowflake", rejected, acked, limit=10)
    assert standing == {
        "summary": [
            ("rejected-again", "new", minute(30)),
            ("acked-before", "x", minute(20)),
            ("acked-same-time", "x", minute(20)),
            ("ack-without-time", "x", minute(10)),
            ("acked-other-model", "x", minute(10)),
        ],
        "count": [(5,)],
    }
    assert run_rejection_reads(renderer, "default", rejected, acked, limit=10) == standing

    draw = random.Random(7)
    keys, times = ["k1", "k2", "k3", "k4"], [None, 0, 1, 2, 3]
    for _ in range(30):
        rejected = [
            (draw.choice(["m", "m", "other"]), draw.choice(keys), draw.choice(times), draw.choice("xyz"))
            for _ in range(draw.randint(1, 8))
        ]
        acked = [
            (draw.choice(["m", "other"]), draw.choice(keys), draw.choice(times))
            for _ in range(draw.randint(1, 8))
        ]
        limit = draw.choice([2, 10])
        assert run_rejection_reads(renderer, "snowflake", rejected, acked, limit) == run_rejection_reads(
            renderer, "default", rejected, acked, limit
        ), (rejected, acked)


@pytest.mark.parametrize(
    ("dialect", "decoder"),
    [
        ("snowflake", "hex_decode_string"),
        ("bigquery", "from_hex"),
        ("redshift", "from_varbyte"),
        ("databricks", "unhex"),
    ],
)
def test_handed_values_are_decoded_from_hex(renderer: Renderer, dialect: str, decoder: str) -> None:
    """Checkpoint values travel as hex (warehouse.encode_cell); each dialect decodes them."""
    sql = renderer.macro(dialect, "braze_rows_sql", columns=rows_columns(ROWS))
    parse(sql, dialect)
    assert sql.lower().count(decoder) == len(ROW_NAMES) * (sql.count("union all") + 1), sql


def test_public_macros_are_documented_with_their_arguments() -> None:
    """macros/_macros.yml describes every public macro (no `_` prefix, no
    adapter prefix), with its arguments in order and types dbt's
    validate_macro_args accepts (the default from dbt 1.12)."""
    import yaml
    from dbt.parser.schemas import is_valid_type

    signatures = {}
    for path in (REPO_ROOT / "macros").rglob("*.sql"):
        for name, params in re.findall(r"{%-?\s*macro\s+(\w+)\(([^)]*)\)", path.read_text()):
            if not name.startswith("_") and "__" not in name:
                signatures[name] = [p.split("=")[0].strip() for p in params.split(",") if p.strip()]
    documented = yaml.safe_load((REPO_ROOT / "macros" / "_macros.yml").read_text())["macros"]
    assert sorted(m["name"] for m in documented) == sorted(signatures)
    for m in documented:
        assert m["description"].strip(), m["name"]
        assert [a["name"] for a in m["arguments"]] == signatures[m["name"]], m["name"]
        assert all(is_valid_type(a["type"]) and a["description"].strip() for a in m["arguments"]), m["name"]


def test_the_triggers_key_estimate_fits_the_syncs_memory_cap(renderer: Renderer) -> None:
    """DuckDB: the trigger's estimate of the keys (braze_log_sizes_sql, exact false) runs in
    constant memory where the exact count runs out (at 10M users, 100M state rows, under the
    sync's cap; here 3M rows under 20 MB), and is within a few percent of it."""
    tables = (
        "create schema analytics;"
        " create table analytics.braze_state as select 'm' as model_name,"
        "   'user-' || (i // 3) as braze_key, 'a' || (i % 3) as attribute from range(3000000) t (i);"
        " create table analytics.braze_fingerprints as select 'm' as model_name,"
        "   'user-' || (i % 1000000) as braze_key from range(1500000) t (i)"
    )
    estimate = str(renderer.warehouse.macro("braze_log_sizes_sql", model_name="m", exact=False))
    exact = str(renderer.warehouse.macro("braze_log_sizes_sql", model_name="m"))
    with duckdb.connect() as conn:
        conn.execute(tables)
        conn.execute("set memory_limit = '20MB'")
        state_rows, state_keys, fingerprint_rows, fingerprint_keys = conn.execute(estimate).fetchone()
        assert (state_rows, fingerprint_rows) == (3_000_000, 1_500_000)
        assert abs(state_keys / 3_000_000 - 1) < 0.1 and abs(fingerprint_keys / 1_000_000 - 1) < 0.1
        with pytest.raises(duckdb.OutOfMemoryException):
            conn.execute(exact).fetchone()
        conn.execute("reset memory_limit")
        assert conn.execute(exact).fetchone() == (3_000_000, 3_000_000, 1_500_000, 1_000_000)


def test_the_syncs_count_of_pending_users_fits_its_memory_cap(renderer: Renderer) -> None:
    """The users a sync sends are counted from braze_objects__<model> (one row per user), not
    by a distinct count of the pending relation's keys, which ran out of the sync's memory at
    10M users (here 1M users of three attributes under 20 MB); the counts are the same."""
    tables = (
        "create schema analytics;"
        " create table analytics.braze_pending__m as select 'user-' || (i // 3) as braze_key,"
        "   case when i < 2400000 then 'upsert' else 'removed' end as change_kind,"
        "   (i // 3) % 4 = 0 as is_new, null::varchar as value_text from range(3000000) t (i);"
        " insert into analytics.braze_pending__m values ('user-x', 'model_rows', false, '3');"
        " create table analytics.braze_objects__m as select braze_key, bool_or(is_new) as is_new"
        "   from analytics.braze_pending__m where change_kind = 'upsert' group by braze_key"
    )
    users = str(renderer.warehouse.macro("braze_pending_users_sql", model_name="m"))
    pending = renderer.warehouse.macro("braze_pending_relation", model_name="m")
    summary = str(renderer.warehouse.macro("braze_pending_summary_sql", relation=pending))
    with duckdb.connect() as conn:
        conn.execute(tables)
        conn.execute("set memory_limit = '20MB'")
        counted = dict(conn.execute(users).fetchall())
        assert counted == {"new": 200_000, "changed": 600_000, "removed": 200_000}
        with pytest.raises(duckdb.OutOfMemoryException):
            conn.execute(summary).fetchall()


def test_status_and_plan_count_what_is_pending_within_the_syncs_memory_cap(
    renderer: Renderer, tmp_path: Path
) -> None:
    """`status`'s pending counts and `plan`'s users sent whole come from
    braze_objects__<model> (one row per user, acknowledged users left out by key). Counted
    from the pending rows, each acknowledged row was matched against the state: right
    after a first sync (every row acknowledged), 1M users ran out of the CLI's DuckDB cap
    and took 34 s and 6 GB without it; here 500k users of three attributes under 20 MB.
    The counts are those of the pending rows, before the sync and after it."""
    tables = (
        REJECTION_TABLES + ";"
        " create table analytics.braze_pending__m as select 'user-' || (i // 3) as braze_key,"
        "   'a' || (i % 3) as attribute, 'upsert' as change_kind, (i // 3) % 4 = 0 as is_new,"
        "   'v' as value_text, 'string' as value_type, 'h' || i as value_hash, true as is_mapped,"
        "   timestamp '2026-12-01' as built_at from range(1500000) t (i);"
        " create table analytics.braze_objects__m as select braze_key, bool_or(is_new) as is_new,"
        "   count(*) as data_points, '' as attributes_json, '' as ack_attributes, '' as ack_hashes,"
        "   null::varchar as invalid_attribute, false as needs_check, 0 as subscription_changes,"
        "   0 as subscribes_withheld, max(built_at) as built_at"
        "   from analytics.braze_pending__m group by braze_key"
    )
    acknowledged = (
        "insert into analytics.braze_state select 'm', braze_key, attribute, value_hash,"
        " timestamp '2026-12-01 01:00', 'r' from analytics.braze_pending__m"
    )

    def rendered(macro: str, **kwargs: str) -> str:  # in the file's catalog, not in "memory"
        return str(renderer.warehouse.macro(macro, model_name="m", **kwargs)).replace('"memory".', "")

    counts = rendered("braze_pending_counts_sql", on_removed="unset")
    plan = rendered("braze_pending_identifier_change_sql", key_prefix="")
    upserts = rendered("braze_read_upserts_sql")
    by_rows = f"""select count(distinct case when is_new then braze_key end),
                         count(distinct case when not is_new then braze_key end), count(*)
                  from ({upserts}) upserts"""
    # a file, as a warehouse is: DuckDB keeps an in-memory database's tables within the cap
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as conn:
        conn.execute(tables)
        assert conn.execute(by_rows).fetchone() == (125_000, 375_000, 1_500_000)
        conn.execute("set memory_limit = '20MB'")
        assert conn.execute(counts).fetchone() == (125_000, 375_000, 1_500_000, 0, 0)
        assert conn.execute(plan).fetchone() == (0, 125_000)
        conn.execute("reset memory_limit")
        conn.execute(acknowledged)
        conn.execute("set memory_limit = '20MB'")
        assert conn.execute(counts).fetchone() == (0, 0, 0, 0, 0)
        with pytest.raises(duckdb.OutOfMemoryException):
            conn.execute(by_rows).fetchone()


def test_a_read_out_of_the_clis_duckdb_memory_cap_runs_again_without_it(renderer: Renderer) -> None:
    """The CLI caps DuckDB's memory so that the sync's streamed read stays flat, but some
    operators cannot spill (here a 60 MB string_agg; in `validate`, its scan of the latest
    state of 1M users): a one-shot read the cap fails runs again without it, and the cap is
    back for what follows."""
    warehouse = renderer.warehouse
    big = "select length(string_agg('user-' || i, ',')) from range(5000000) t (i)"
    expected = sum(len(f"user-{i}") for i in range(5_000_000)) + 4_999_999
    ((cap,),) = warehouse.fetch_all("select current_setting('memory_limit')")
    assert cap.replace(" ", "") in ("76.2MiB", "80.0MB"), cap  # dbt_access.DUCKDB_MEMORY_LIMIT
    with pytest.raises(DbtRuntimeError, match="Out of Memory"):
        warehouse._adapter.execute(big, fetch=True)  # the cap is what fails it
    assert warehouse.fetch_all(big) == [(expected,)]
    assert warehouse.fetch_all("select current_setting('memory_limit')") == [(cap,)]
