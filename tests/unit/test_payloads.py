"""Typing rules (contract, "What is sent") and the shape of `/users/track` attributes objects."""

from __future__ import annotations

import json

import pytest

from dbt_braze.payloads import (
    MAX_OBJECTS_PER_REQUEST,
    AttributeChange,
    LocalRejection,
    UserChange,
    batched,
    build_object,
    data_points,
    to_braze_value,
    unset_object,
)

# -- to_braze_value -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["plain", "", "Zoë Ñandú — 東京", "🎉👩‍💻", 'say "hi"', "it's", "back\\slash", "line\nbreak"],
)
@pytest.mark.parametrize("value_type", ["text", None])
def test_strings_are_sent_unchanged(text: str, value_type: str | None) -> None:
    value = to_braze_value(text, value_type)
    assert value == text
    assert type(value) is str
    assert json.loads(json.dumps(value)) == text


def test_numeric_looking_text_stays_a_string() -> None:
    assert to_braze_value("00042", "text") == "00042"
    assert to_braze_value("NaN", "text") == "NaN"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("-17", -17),
        ("9223372036854775807", 2**63 - 1),
        ("9223372036854775808", 2**63),
        ("-170141183460469231731687303715884105728", -(2**127)),
        ("123456789012345678901234567890123456789", 123456789012345678901234567890123456789),
    ],
)
def test_integers_stay_exact(text: str, expected: int) -> None:
    value = to_braze_value(text, "integer")
    assert type(value) is int
    assert value == expected
    assert json.dumps(value) == str(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("12.50", 12.5), ("-0.25", -0.25), ("1e+20", 1e20), ("1E-3", 0.001), ("3.0", 3.0)],
)
def test_decimals_become_json_numbers(text: str, expected: float) -> None:
    value = to_braze_value(text, "number")
    assert type(value) is float
    assert value == expected


def test_decimal_38_0_keeps_every_digit() -> None:
    value = to_braze_value("123456789012345678901234567890", "number")
    assert type(value) is int
    assert value == 123456789012345678901234567890
    assert json.dumps(value) == "123456789012345678901234567890"


def test_integer_typed_text_with_a_fraction_falls_back_to_a_number() -> None:
    assert to_braze_value("12.0", "integer") == 12.0


@pytest.mark.parametrize("text", ["NaN", "nan", "inf", "-inf", "Infinity", "-Infinity", "+inf"])
@pytest.mark.parametrize("value_type", ["number", "integer"])
def test_non_finite_numbers_are_rejected_locally_with_a_reason(text: str, value_type: str) -> None:
    with pytest.raises(LocalRejection) as info:
        to_braze_value(text, value_type)
    assert isinstance(info.value, ValueError)
    assert text in str(info.value)
    assert "finite" in str(info.value)


def test_number_too_large_for_a_float_is_rejected() -> None:
    with pytest.raises(LocalRejection, match="too large"):
        to_braze_value("1e400", "number")


def test_not_a_number_is_rejected() -> None:
    with pytest.raises(LocalRejection, match="not a number"):
        to_braze_value("twelve", "number")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("false", False), ("t", True), ("f", False), ("TRUE", True), ("False", False)],
)
def test_booleans(text: str, expected: bool) -> None:
    assert to_braze_value(text, "boolean") is expected


def test_not_a_boolean_is_rejected() -> None:
    with pytest.raises(LocalRejection, match="not a boolean"):
        to_braze_value("yes-ish", "boolean")


def test_dates_and_timestamps_stay_iso_text() -> None:
    assert to_braze_value("2026-11-28", "date") == "2026-11-28"
    assert to_braze_value("2026-11-28T10:15:00Z", "timestamp") == "2026-11-28T10:15:00Z"
    assert to_braze_value("2026-11-28T10:15:00.123456Z", "timestamp") == "2026-11-28T10:15:00.123456Z"


def test_json_text_becomes_json_values() -> None:
    assert to_braze_value('{"a": 1, "b": [true, null, "x"], "c": {"d": 1.5}}', "json") == {
        "a": 1,
        "b": [True, None, "x"],
        "c": {"d": 1.5},
    }
    assert to_braze_value('["red", "green"]', "json") == ["red", "green"]
    assert to_braze_value("[]", "json") == []
    assert to_braze_value('{"big": 123456789012345678901234567890}', "json") == {
        "big": 123456789012345678901234567890
    }
    assert to_braze_value('"🎉 \\"q\\""', "json") == '🎉 "q"'


@pytest.mark.parametrize("text", ['{"x": NaN}', "[1, Infinity]", '{"x": -Infinity}', "NaN", '{"x": 1e999}'])
def test_non_finite_numbers_in_json_are_rejected(text: str) -> None:
    with pytest.raises(LocalRejection):
        to_braze_value(text, "json")


def test_invalid_json_is_rejected() -> None:
    with pytest.raises(LocalRejection, match="not valid JSON"):
        to_braze_value("{not json", "json")


@pytest.mark.parametrize("value_type", ["text", "integer", "number", "boolean", "date", "json", None])
def test_null_stays_null(value_type: str | None) -> None:
    assert to_braze_value(None, value_type) is None


# -- objects --------------------------------------------------------------------------------------


def change(key: str, *values: tuple[str, str | None, str | None]) -> UserChange:
    return UserChange(key, tuple(AttributeChange(key, a, t, vt, f"h-{a}") for a, t, vt in values))


def test_build_object_upsert() -> None:
    obj = build_object(
        "external_id",
        change(
            "42",
            ("email", "a@example.com", "text"),
            ("ltv", "12.50", "number"),
            ("gone", None, "text"),
        ),
        update_only=False,
    )
    assert obj == {"external_id": "42", "email": "a@example.com", "ltv": 12.5, "gone": None}
    assert list(obj)[0] == "external_id"
    assert "_update_existing_only" not in obj


def test_build_object_sends_the_identifier_as_a_string() -> None:
    obj = build_object("external_id", UserChange(42, ()), update_only=False)  # type: ignore[arg-type]
    assert obj == {"external_id": "42"}


def test_build_object_update_mode() -> None:
    obj = build_object("braze_id", change("b-1", ("vip", "t", "boolean")), update_only=True)
    assert obj == {"braze_id": "b-1", "_update_existing_only": True, "vip": True}


def test_build_object_propagates_local_rejection() -> None:
    with pytest.raises(LocalRejection):
        build_object("external_id", change("1", ("ltv", "NaN", "number")), update_only=False)


def test_unset_object_sends_null_for_every_attribute() -> None:
    obj = unset_object("external_id", "7", ["email", "plan_tier"])
    assert obj == {
        "external_id": "7",
        "_update_existing_only": True,
        "email": None,
        "plan_tier": None,
    }


def test_data_points_count_attributes_only() -> None:
    assert data_points({"external_id": "1", "_update_existing_only": True, "a": 1, "b": None}) == 2
    assert data_points({"braze_id": "x", "a": 1}) == 1
    assert data_points({"external_id": "1"}) == 0
    assert data_points(unset_object("external_id", "1", ["a", "b", "c"])) == 3


# -- batching ------------------------------------------------------------------------------------


def test_batched_at_most_75_with_a_remainder() -> None:
    assert MAX_OBJECTS_PER_REQUEST == 75
    batches = list(batched(range(160), MAX_OBJECTS_PER_REQUEST))
    assert [len(b) for b in batches] == [75, 75, 10]
    assert [x for b in batches for x in b] == list(range(160))


def test_batched_exact_multiple_and_empty() -> None:
    assert [len(b) for b in batched(range(150), 75)] == [75, 75]
    assert list(batched([], 75)) == []
    assert list(batched(iter("abc"), 1)) == [["a"], ["b"], ["c"]]


@pytest.mark.parametrize("size", [0, -1])
def test_batched_refuses_sizes_below_one(size: int) -> None:
    with pytest.raises(ValueError):
        list(batched([1, 2], size))
