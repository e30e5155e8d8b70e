"""Local checks of the objects the warehouse renders, unset objects, batching.

The typing rules themselves (contract, "What is sent") are rendered in SQL:
tests/unit/test_objects_sql.py runs them on DuckDB."""

from __future__ import annotations

from typing import Any

import pytest

from dbt_braze.braze import MAX_TRACK_OBJECTS
from dbt_braze.engine import batched
from dbt_braze.kinds.base import LocalRejection
from dbt_braze.kinds.users import check_object, unset_object


def user_object(body: str, *, invalid: str | None = None, needs_check: int = 0) -> tuple[Any, ...]:
    """A row as the warehouse returns it (the index constants of dbt_braze.rows)."""
    return ("1", True, 1, body, "a", "h", invalid, needs_check)


def test_a_plain_object_passes_unparsed() -> None:
    # no JSON-typed value: nothing to parse, even if the text were not JSON
    check_object(user_object('"a":{not parsed'))


def test_an_attribute_named_invalid_by_the_warehouse_is_rejected_with_its_reason() -> None:
    reason = "signed_up: infinity is not a date Braze can hold"
    with pytest.raises(LocalRejection, match=reason):
        check_object(user_object('"signed_up":"infinity"', invalid=reason))


@pytest.mark.parametrize("text", ['{"x": NaN}', "[1, Infinity]", '{"x": -Infinity}', "NaN", '{"x": 1e999}'])
def test_non_finite_numbers_in_json_values_are_rejected(text: str) -> None:
    with pytest.raises(LocalRejection):
        check_object(user_object('"doc":' + text, needs_check=1))


def test_invalid_json_is_rejected() -> None:
    with pytest.raises(LocalRejection, match="not valid JSON"):
        check_object(user_object('"doc":{not json', needs_check=1))


def test_valid_json_values_pass() -> None:
    check_object(user_object('"doc":{"a":[1,2.5,null,"x"],"big":1e300},"n":1', needs_check=1))


# -- unset objects ---------------------------------------------------------------------------------


def test_unset_object_sends_null_for_every_attribute() -> None:
    obj = unset_object({"external_id": "7"}, ["email", "plan_tier"])
    assert obj == {
        "external_id": "7",
        "_update_existing_only": True,
        "email": None,
        "plan_tier": None,
    }


# -- batching ------------------------------------------------------------------------------------


def test_batched_at_most_75_with_a_remainder() -> None:
    assert MAX_TRACK_OBJECTS == 75
    batches = list(batched(range(160), MAX_TRACK_OBJECTS))
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
