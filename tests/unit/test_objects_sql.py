"""The typing rules (contract, "What is sent") as the warehouse renders them: the
objects of macros/json.sql built by real dbt and run on an in-memory DuckDB, then
read back as JSON. The engine's unit tests serve objects from `render_objects`,
the same rules restated in Python; the last test holds the two together."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import duckdb
import pytest

from dbt_braze.kinds.base import LocalRejection
from dbt_braze.kinds.users import check_object
from dbt_braze.rows import (
    ACK_ATTRIBUTES,
    ACK_HASHES,
    ATTRIBUTES_JSON,
    DATA_POINTS,
    INVALID_ATTRIBUTE,
    IS_NEW,
    KEY,
    NEEDS_CHECK,
    ROW_SEPARATOR,
    SUBSCRIBES_WITHHELD,
    SUBSCRIPTION_CHANGES,
)

from fakes import Renderer, render_objects


@pytest.fixture(scope="module")
def renderer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Renderer]:
    rendering = Renderer(tmp_path_factory.mktemp("objects"))
    yield rendering
    rendering.close()


Change = tuple[str, str, str | None, str, str | None, bool]


def objects(renderer: Renderer, changes: list[Change]) -> list[Any]:
    connection = duckdb.connect()
    connection.execute(
        "create table changes (braze_key varchar, attribute varchar, value_text varchar,"
        " value_type varchar, value_hash varchar, is_new boolean)"
    )
    connection.executemany("insert into changes values (?, ?, ?, ?, ?, ?)", changes)
    sql = renderer.adapter.execute_macro(
        "braze_user_objects_sql",
        project="dbt_braze",
        kwargs={"rows_sql": "select * from changes"},
    )
    return sorted(connection.execute(str(sql)).fetchall())


def acknowledged(row: Any) -> dict[str, str]:
    """The acknowledgement lists as attribute -> hash ('' for none): every change, sent or withheld."""
    names, hashes = row[ACK_ATTRIBUTES].split(ROW_SEPARATOR), row[ACK_HASHES].split(ROW_SEPARATOR)
    assert (
        len(names) == len(hashes) == row[DATA_POINTS] + row[SUBSCRIPTION_CHANGES] + row[SUBSCRIBES_WITHHELD]
    )
    return dict(zip(names, hashes, strict=True))


def members(row: Any) -> Any:
    return json.loads("{" + row[ATTRIBUTES_JSON] + "}")


def sorted_members(row: Any) -> Any:
    """members, the group states by group id (DuckDB lists them in no particular order)."""
    found = members(row)
    found.get("subscription_groups", []).sort(key=lambda entry: entry["subscription_group_id"])
    return found


def one_value(renderer: Renderer, text: str | None, value_type: str) -> Any:
    (row,) = objects(renderer, [("u1", "value", text, value_type, "h", True)])
    check_object(row)
    return members(row)["value"]


STRINGS = ["plain", "", "Zoë Ñandú — 東京", "🎉👩‍💻", 'say "hi"', "it's", "back\\slash", "line\nbreak",
           "tab\there", "\x01control", "</script>", "NaN"]  # fmt: skip


@pytest.mark.parametrize("text", STRINGS)
def test_strings_arrive_unchanged(renderer: Renderer, text: str) -> None:
    value = one_value(renderer, text, "string")
    assert value == text
    assert type(value) is str


@pytest.mark.parametrize(
    "text", ["0", "-17", "9223372036854775808", "-170141183460469231731687303715884105728"]
)
def test_integers_stay_exact(renderer: Renderer, text: str) -> None:
    value = one_value(renderer, text, "integer")
    assert type(value) is int
    assert value == int(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("12.50", 12.5), ("-0.25", -0.25), ("1e+20", 1e20), ("1.0E20", 1e20), ("1E-3", 0.001), ("3.0", 3.0),
     ("123456789012345678901234567890", 123456789012345678901234567890)],
)  # fmt: skip
def test_numbers_become_json_numbers(renderer: Renderer, text: str, expected: float) -> None:
    assert one_value(renderer, text, "number") == expected


@pytest.mark.parametrize("text", ["NaN", "nan", "inf", "-inf", "Infinity", "-Infinity", "+inf"])
def test_non_finite_numbers_are_named_and_rejected_locally(renderer: Renderer, text: str) -> None:
    (row,) = objects(
        renderer, [("u1", "ltv", text, "number", "h", True), ("u1", "plan", "x", "string", "h", True)]
    )
    assert row[INVALID_ATTRIBUTE] == f"ltv: {text} is not a finite number; Braze accepts no NaN or infinity"
    with pytest.raises(LocalRejection, match="ltv: .* is not a finite number"):
        check_object(row)


@pytest.mark.parametrize(
    ("text", "value_type", "problem"),
    [
        ("infinity", "date", "not a date Braze can hold"),  # DuckDB and PostgreSQL infinity
        ("-infinity", "timestamp", "not a timestamp Braze can hold"),
        ("0045-03-15 BC", "date", "not a date"),  # PostgreSQL before year 1
        ("0001-06-01 (BC)", "date", "not a date"),  # DuckDB
        ("0000-06-01", "date", "not a date"),
        ("-044-03-15", "date", "not a date"),
        ("10000-01-01", "date", "not a date"),
        ("294277-01-01", "date", "not a date"),
        ("10000-01-01 00:00:00", "timestamp", "not a timestamp"),
        ("0000-01-01T00:00:00Z", "timestamp", "not a timestamp"),
        ("x" * 256, "string", "a string of 256 characters; Braze drops strings over 255"),
        ("é" * 300, "string", "a string of 300 characters"),
    ],
)
def test_values_braze_cannot_hold_are_named_with_the_reason(
    renderer: Renderer, text: str, value_type: str, problem: str
) -> None:
    (row,) = objects(
        renderer, [("u1", "v", text, value_type, "h", True), ("u1", "plan", "x", "string", "h", True)]
    )
    assert row[INVALID_ATTRIBUTE].startswith("v: ") and problem in row[INVALID_ATTRIBUTE]
    with pytest.raises(LocalRejection, match=problem):
        check_object(row)


@pytest.mark.parametrize(
    ("text", "value_type"),
    [("0001-01-01", "date"), ("9999-12-31", "date"), ("9999-12-31T23:59:59Z", "timestamp"),
     ("0001-01-01T00:00:00Z", "timestamp"), ("x" * 255, "string"), ("🎉" * 255, "string")],
)  # fmt: skip
def test_values_at_the_limits_are_sent(renderer: Renderer, text: str, value_type: str) -> None:
    """Braze's limit is in characters: 255 emoji (1,020 bytes) pass."""
    assert one_value(renderer, text, value_type) == text


def test_booleans_dates_timestamps_json_and_null(renderer: Renderer) -> None:
    assert one_value(renderer, "true", "boolean") is True
    assert one_value(renderer, "false", "boolean") is False
    assert one_value(renderer, "2026-11-28", "date") == "2026-11-28"
    assert one_value(renderer, "2026-11-28T10:15:00Z", "timestamp") == "2026-11-28T10:15:00Z"
    doc = '{"a": 1, "b": [true, null, "x"], "c": {"d": 1.5}, "big": 123456789012345678901234567890}'
    assert one_value(renderer, doc, "json") == json.loads(doc)
    assert one_value(renderer, None, "string") is None
    assert one_value(renderer, None, "json") is None


def test_json_values_are_checked_for_nan(renderer: Renderer) -> None:
    (row,) = objects(renderer, [("u1", "doc", "[1, NaN]", "json", "h", True)])
    assert row[NEEDS_CHECK] == 1
    with pytest.raises(LocalRejection):
        check_object(row)


def test_one_row_per_user_with_aligned_acknowledgement_lists(renderer: Renderer) -> None:
    changes: list[Change] = [
        ("b'2", "plan", "gold", "string", "h-b-plan", False),
        ("a1", "score", "7", "integer", "h-a-score", True),
        ("b'2", "email", None, "string", None, False),
        ("a1", "email", "a@x.io", "string", "h-a-email", True),
    ]
    rows = objects(renderer, changes)
    assert [row[KEY] for row in rows] == ["a1", "b'2"]
    first, second = rows
    assert (first[IS_NEW], first[DATA_POINTS], second[IS_NEW], second[DATA_POINTS]) == (True, 2, False, 2)
    assert members(second) == {"email": None, "plan": "gold"}
    # in no particular order, but the two lists line up
    assert acknowledged(first) == {"email": "h-a-email", "score": "h-a-score"}
    assert acknowledged(second) == {"email": "", "plan": "h-b-plan"}  # a removed value: no hash


def test_the_engine_tests_fake_renders_what_the_sql_renders(renderer: Renderer) -> None:
    changes: list[Change] = [
        (f"u{i}", attribute, text, value_type, f"h{i}{attribute}", i % 2 == 0)
        for i, text in enumerate(STRINGS)
        for attribute, value_type in (("name", "string"), ("ltv", "number"), ("doc", "json"))
        if value_type == "string" or text == "NaN"
    ] + [("u99", "ltv", "12.50", "number", "h", False), ("u99", "vip", "true", "boolean", "h", False)]
    changes += [
        ("u99", f"{GROUP}a", "unsubscribed", "subscription", "h", False),
        ("u99", f"{GROUP}b", "subscribed:withheld", "subscription", "h", False),
        ("u98", f"{GROUP}a", "subscribed", "subscription", "h", True),
        ("u97", f"{GROUP}a", "subscribed:withheld", "subscription", "h", True),
    ]
    from_sql = objects(renderer, changes)
    restated = render_objects(changes)
    assert len(from_sql) == len(restated)
    compared = (
        KEY,
        IS_NEW,
        DATA_POINTS,
        INVALID_ATTRIBUTE,
        NEEDS_CHECK,
        SUBSCRIPTION_CHANGES,
        SUBSCRIBES_WITHHELD,
    )
    for ours, theirs in zip(from_sql, restated, strict=True):
        assert sorted_members(ours) == sorted_members(theirs)
        assert tuple(ours[i] for i in compared) == tuple(theirs[i] for i in compared)
        assert acknowledged(ours) == acknowledged(theirs)


# -- subscription groups (macros/subscriptions.sql) ---------------------------------------------------

GROUP = "$subscription_group:"


def test_group_states_follow_the_attributes_and_are_no_data_points(renderer: Renderer) -> None:
    rows = objects(
        renderer,
        [
            ("u1", "plan", "gold", "string", "h1", True),
            ("u1", f"{GROUP}news-1", "unsubscribed", "subscription", "h2", True),
            ("u1", f'{GROUP}it\'s \\ "odd"', "subscribed", "subscription", "h3", True),
            ("u1", f"{GROUP}sms-2", "subscribed:withheld", "subscription", "h4", True),
            ("u2", f"{GROUP}news-1", "subscribed", "subscription", "h5", False),
            ("u3", f"{GROUP}news-1", "subscribed:withheld", "subscription", "h6", False),
        ],
    )
    first, second, third = rows
    check_object(first)
    assert sorted_members(first) == {
        "plan": "gold",
        "subscription_groups": [
            {"subscription_group_id": 'it\'s \\ "odd"', "subscription_state": "subscribed"},
            {"subscription_group_id": "news-1", "subscription_state": "unsubscribed"},
        ],
    }
    assert (first[DATA_POINTS], first[SUBSCRIPTION_CHANGES], first[SUBSCRIBES_WITHHELD]) == (1, 2, 1)
    assert set(acknowledged(first)) == {"plan", f"{GROUP}news-1", f'{GROUP}it\'s \\ "odd"', f"{GROUP}sms-2"}
    # groups alone: no attribute member before them
    assert members(second) == {
        "subscription_groups": [{"subscription_group_id": "news-1", "subscription_state": "subscribed"}]
    }
    assert (second[DATA_POINTS], second[SUBSCRIPTION_CHANGES]) == (0, 1)
    # a withheld subscribe alone: nothing to send, still acknowledged
    assert third[ATTRIBUTES_JSON] == "" and third[SUBSCRIBES_WITHHELD] == 1
    assert acknowledged(third) == {f"{GROUP}news-1": "h6"}


@pytest.mark.parametrize("text", ["maybe", "true", "Subscribed", "1", ""])
def test_a_group_value_that_is_no_state_is_named_with_its_group_and_rejected(
    renderer: Renderer, text: str
) -> None:
    (row,) = objects(
        renderer,
        [
            ("u1", "plan", "gold", "string", "h", True),
            ("u1", f"{GROUP}news-1", text, "subscription", "h", True),
        ],
    )
    assert row[INVALID_ATTRIBUTE] == (
        f"subscription group news-1: {text} is not a subscription state; "
        "the column takes true or subscribed, false or unsubscribed, or null (no change)"
    )
    assert "news-1" not in row[ATTRIBUTES_JSON]
    with pytest.raises(LocalRejection, match="subscription group news-1"):
        check_object(row)


@pytest.mark.parametrize("name", ["email_subscribe", "push_subscribe"])
def test_email_and_push_subscribe_take_only_brazes_three_states(renderer: Renderer, name: str) -> None:
    for good in ("opted_in", "subscribed", "unsubscribed", None):
        (row,) = objects(renderer, [("u1", name, good, "string", "h", True)])
        check_object(row)
    for bad in ("yes", "true", "Opted_In"):
        (row,) = objects(renderer, [("u1", name, bad, "string", "h", True)])
        reason = (
            f"{name}: {bad} is not a subscription state Braze takes: opted_in, subscribed or unsubscribed"
        )
        assert row[INVALID_ATTRIBUTE] == reason
    (row,) = objects(renderer, [("u1", "plan", "yes", "string", "h", True)])  # any other attribute: free
    assert row[INVALID_ATTRIBUTE] is None


def test_acknowledgement_lists_unnest_aligned_with_empty_hashes_as_null(renderer: Renderer) -> None:
    connection = duckdb.connect()
    connection.execute("create table objects (braze_key varchar, ack_attributes varchar, ack_hashes varchar)")
    sep = ROW_SEPARATOR
    connection.executemany(
        "insert into objects values (?, ?, ?)",
        [("k1", "plan", ""), ("k2", f"a{sep}b{sep}c", f"h-a{sep}{sep}h-c")],
    )
    sql = renderer.adapter.execute_macro(
        "braze_unnest_acks_sql", project="dbt_braze", kwargs={"objects_sql": "select * from objects"}
    )
    assert sorted(connection.execute(str(sql)).fetchall()) == [
        ("k1", "plan", None),
        ("k2", "a", "h-a"),
        ("k2", "b", None),
        ("k2", "c", "h-c"),
    ]
