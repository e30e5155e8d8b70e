"""Identifiers reach Braze and the state exactly as the model holds them.

Keys cross from the warehouse to the sync (a read) and back (checkpoints),
whatever characters they contain: an acknowledgement must land on the key
that was sent, never on a look-alike, and an empty identifier is withheld
like a null one.
"""

from __future__ import annotations

import pytest

from dbt_braze.emulator import BrazeEmulator

from harness import DbtProject

pytestmark = pytest.mark.integration

CONTROL = [*range(1, 32), 127]


def key_expressions(kind: str) -> list[str]:
    """SQL text expressions of the model's identifiers (each unique)."""
    keys = [f"'c' || chr({code}) || 'c'" for code in CONTROL]
    keys += [
        "'a' || chr(31) || 'b'",  # the old separator, and its old reading `a b`
        "'a b'",
        "'a' || chr(31) || chr(31) || 'b'",
        "'O''Brien'",
        "'back\\slash\\'",
        "'\"quoted\"'",
        "'Zoë 🚀 東京'",
        "'x' || chr(10) || 'x' || chr(13) || chr(10)",
        "' padded '",
        "'616263'",  # looks like hex
    ]
    if kind == "duckdb":  # PostgreSQL text cannot hold NUL (chr(0) is an error there)
        keys.append("'nul' || chr(0) || 'nul'")
    return keys


def test_every_identifier_round_trips_and_empty_ones_are_withheld(
    project: DbtProject, emulator: BrazeEmulator
) -> None:
    keys = key_expressions(project.kind)
    rows = [f"select {expr} as user_id, 'plan {i}' as plan" for i, expr in enumerate(keys)]
    rows += ["select '' as user_id, 'empty' as plan", "select null as user_id, 'null' as plan"]
    project.write_model("\nunion all\n".join(rows))
    project.write_schema(
        [
            {
                "name": "braze_users",
                "config": {"meta": {"braze": {"external_id": "user_id", "attributes": {"plan": "plan"}}}},
            }
        ]
    )
    run = project.dbt("run")
    assert "2 rows with a null identifier" in run.output

    expected = {key: f"plan {i}" for i, key in enumerate(project.query("select " + ", ".join(keys))[0])}
    assert len(expected) == len(keys)

    result = project.braze("sync")
    assert result.exit_code == 0, result.output
    assert "2 rows with a null identifier" in result.output
    profiles = emulator.profiles
    assert {key: profile.get("plan") for key, profile in profiles.items()} == expected
    assert emulator.stats()["objects_received"] == len(keys)  # each once, '' never

    state = project.query("select braze_key, value_hash from braze_state where attribute = 'plan'")
    assert sorted(key for key, _ in state) == sorted(expected)
    assert all(value_hash for _, value_hash in state)
    assert project.query("select count(*) from braze_rejected") == [(0,)]

    # nothing is left pending, on the next sync nor after the next `dbt run`
    requests = emulator.stats()["requests"]
    assert project.braze("sync").exit_code == 0
    project.dbt("run")
    assert project.braze("sync").exit_code == 0
    assert emulator.stats()["requests"] == requests
