"""Values Braze cannot hold (issue 11, item 6) are rejected locally with the reason,
never sent as a string nor as a null that would unset the attribute, and `dbt run`
does not fail on them; a DuckDB fixed-size ARRAY arrives as a JSON list; a string
over 255 characters is rejected, or cut to 255 with `truncate_strings: true`.

One dbt project with two models (the second truncates), two `dbt run`s and two syncs.
"""

from __future__ import annotations

import json

import pytest

from dbt_braze.emulator import BrazeEmulator

from golden import golden_json
from harness import DbtProject

pytestmark = pytest.mark.integration

LONG = "".join(chr(ord("a") + i % 26) for i in range(299)) + "é"  # 300 characters, 301 bytes

COLUMNS = {"signed_up_on": "date", "last_seen_at": "timestamp", "last_login_at": "timestamp with time zone"}
# user_id: the columns' values as SQL (null where not given); for a bad row, the reason's start
GOOD: dict[int, dict[str, str]] = {
    1: {
        "signed_up_on": "'2024-01-01'",
        "last_seen_at": "'2024-01-01 10:15:00'",
        "last_login_at": "'2024-01-01 10:15:00+01:00'",
        "name": "'Ann'",
    },
    2: {"signed_up_on": "'0001-01-01'", "last_seen_at": "'9999-12-31 23:59:59'", "name": "'Bob'"},
    3: {"name": "'Cy'"},
}
BAD: dict[int, tuple[dict[str, str], str]] = {
    4: ({"signed_up_on": "'infinity'", "name": "'Dee'"}, "signed_up_on: infinity is not a date"),
    5: ({"signed_up_on": "'-infinity'"}, "signed_up_on: -infinity is not a date"),
    6: ({"signed_up_on": "date '0001-01-01' - 1"}, "signed_up_on: 0001-12-31"),  # year 0 (1 BC)
    7: ({"signed_up_on": "'10000-01-01'"}, "signed_up_on: 10000-01-01 is not a date"),
    8: ({"signed_up_on": "'294277-01-01'"}, "signed_up_on: 294277-01-01 is not a date"),  # past timestamps
    9: ({"last_seen_at": "'infinity'"}, "last_seen_at: infinity is not a timestamp"),
    10: ({"last_seen_at": "'10000-01-01 00:00:00'"}, "last_seen_at: 10000-01-01"),
    11: ({"name": f"'{LONG}'"}, "name: a string of 300 characters; Braze drops strings over 255"),
    12: ({"last_login_at": "'-infinity'"}, "last_login_at: -infinity is not a timestamp"),
}


def model_sql(kind: str, offset: int = 0, fixes: dict[int, dict[str, str]] | None = None) -> str:
    rows = {**{k: v[0] for k, v in BAD.items()}, **GOOD}
    for user_id, values in (fixes or {}).items():
        rows[user_id] = {**rows[user_id], **values}
    types = {**COLUMNS, "name": "varchar(400)"}
    selects = [
        f"select {user_id + offset} as user_id, "
        + ", ".join(f"cast({values.get(c, 'null')} as {t}) as {c}" for c, t in types.items())
        for user_id, values in sorted(rows.items())
    ]
    sql = "\nunion all\n".join(selects)
    if kind == "duckdb":  # a fixed-size array: JSON, the same text as a LIST
        sql = f"select *, [user_id, 2, null]::INTEGER[3] as scores from ({sql}) t"
    return sql


def block(**extra: object) -> dict[str, object]:
    return {
        "external_id": "user_id",
        "attributes": {name: name for name in (*COLUMNS, "name")},
        **extra,
    }


def write(project: DbtProject, fixes: dict[int, dict[str, str]] | None = None) -> None:
    project.write_model(model_sql(project.kind, fixes=fixes))
    project.write_model(model_sql(project.kind, offset=100), name="braze_users_cut")
    main, cut = block(), block(truncate_strings=True)
    if project.kind == "duckdb":
        for b in (main, cut):
            b["attributes"] = {**b["attributes"], "scores": "scores"}  # type: ignore[dict-item]
    project.write_schema(
        [
            {"name": "braze_users", "config": {"meta": {"braze": main}}},
            {"name": "braze_users_cut", "config": {"meta": {"braze": cut}}},
        ]
    )


def sent_objects(emulator: BrazeEmulator) -> list[dict[str, object]]:
    return [
        obj for path, body, _ in emulator.requests_log if path == "/users/track" for obj in body["attributes"]
    ]


def test_values_braze_cannot_hold_are_rejected_locally(project: DbtProject, emulator: BrazeEmulator) -> None:
    write(project)
    project.dbt("run")  # PostgreSQL: to_char of year 294277 failed the run
    if project.kind == "duckdb":  # INTEGER[3] has the text, and so the hash, of a LIST
        _, text, digest = golden_json()["integer_list"]  # [1,2,null]
        pending = "select value_text, value_hash from braze_pending__braze_users where attribute = 'scores'"
        assert project.query(pending + " and braze_key = '1'") == [(text, digest)]
    result = project.braze("sync")
    assert result.exit_code == 0, result.output

    rejected = set(project.query("select distinct braze_key, reason from braze_rejected"))
    by_key = {key: reason for key, reason in rejected}
    assert len(by_key) == len(rejected)  # one reason per user
    # model 1 rejects every bad row; the truncating model all but the long string
    expected = {str(k): v[1] for k, v in BAD.items()} | {
        str(k + 100): v[1] for k, v in BAD.items() if k != 11
    }
    assert set(by_key) == set(expected), by_key
    for key, problem in expected.items():
        assert by_key[key].startswith("rejected before sending: ") and problem in by_key[key], by_key[key]

    profiles = emulator.profiles
    sent = sent_objects(emulator)
    assert not {str(k) for k in BAD} & set(profiles)
    assert {str(o["external_id"]) for o in sent} == {"1", "2", "3", "101", "102", "103", "111"}
    assert "infinity" not in json.dumps(sent)
    assert all(value is not None for obj in sent for value in obj.values())  # nothing unset
    assert profiles["1"]["signed_up_on"] == "2024-01-01"
    assert profiles["1"]["last_seen_at"] == "2024-01-01T10:15:00Z"
    assert profiles["1"]["last_login_at"] == "2024-01-01T09:15:00Z"
    assert profiles["2"]["signed_up_on"] == "0001-01-01"
    assert profiles["2"]["last_seen_at"] == "9999-12-31T23:59:59Z"
    assert profiles["111"]["name"] == LONG[:255]  # truncate_strings: the first 255 characters
    if project.kind == "duckdb":
        assert profiles["1"]["scores"] == [1, 2, None] and profiles["111"]["scores"] == [111, 2, None]

    # rejected values stay rejected; once one changes, that user goes out whole
    write(project, fixes={4: {"signed_up_on": "'2025-05-05'"}})
    project.dbt("run")
    before = len(sent_objects(emulator))
    assert project.braze("sync").exit_code == 0
    assert [o["external_id"] for o in sent_objects(emulator)[before:]] == ["4"]
    assert emulator.profiles["4"] == {"signed_up_on": "2025-05-05", "name": "Dee"} | (
        {"scores": [4, 2, None]} if project.kind == "duckdb" else {}
    )

    # --full-refresh reads the model itself, by the same rules
    before = len(sent_objects(emulator))
    assert project.braze("sync", "--full-refresh").exit_code == 0
    resent = {str(o["external_id"]): o for o in sent_objects(emulator)[before:]}
    assert set(resent) == {"1", "2", "3", "4", "101", "102", "103", "111"}
    assert resent["111"]["name"] == LONG[:255]
