"""Switching dbt version must not trigger a full resend.

The package supports dbt-core 1.10 to 1.12; the main venv runs 1.11 (1.12
cannot be installed here: shared/dbt-notes.md). These tests run the same
project under dbt-core 1.10 with its own dbt-postgres and the oldest
dbt-adapters it accepts (another set of dbt's global macros), from a venv
that scripts/dbt-venv builds once into .venv-dbt-1.10 (~20 s, needs the
package index; later runs reuse it).

PostgreSQL, not DuckDB: an older dbt-duckdb pins an older duckdb, which may
not open a file the main venv's duckdb wrote.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from dbt_braze.emulator import BrazeEmulator

from golden import JSON_MODELS, VALUES_MODEL, golden_json, golden_values
from harness import REPO_ROOT, DbtProject, braze_model

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("warehouse", ["postgres"], indirect=True)]

DBT_VERSION = "1.10"
VENV = REPO_ROOT / f".venv-dbt-{DBT_VERSION}"


@pytest.fixture(scope="module")
def dbt_1_10() -> Path:
    """bin/dbt of the dbt-core 1.10 venv, built on first use."""
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "dbt-venv"), DBT_VERSION, str(VENV)],
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, (
        f"scripts/dbt-venv {DBT_VERSION} could not provide dbt-core {DBT_VERSION} "
        f"(exit {proc.returncode}); the first run needs the package index:\n{proc.stderr[-4000:]}"
    )
    print(f"\ndbt {DBT_VERSION} venv ready in {time.monotonic() - started:.1f} s: {proc.stdout.strip()}")
    return Path(proc.stdout.strip().splitlines()[-1]) / "bin" / "dbt"


def write_models(project: DbtProject) -> dict[str, dict[str, tuple[str, str, str]]]:
    """One user holding every supported scalar type (braze_users) and every JSON
    shape PostgreSQL has (braze_json_users); returns their golden upserts."""
    expected = {"braze_users": golden_values(), "braze_json_users": golden_json()}
    # PostgreSQL writes timestamps inside composites and documents itself (as in test_json_stability)
    expected["braze_json_users"].pop("dated_record")
    project.write_model(VALUES_MODEL, "braze_users")
    project.write_model(JSON_MODELS["postgres"], "braze_json_users")
    models = []
    for name, golden in expected.items():
        model = braze_model(attributes={attribute: attribute for attribute in golden})
        model["name"] = name
        models.append(model)
    project.write_schema(models)
    return expected


def run_dbt_1_10(project: DbtProject, dbt: Path) -> str:
    """`dbt run` of the project with the 1.10 venv's dbt, as a user would type it."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    proc = subprocess.run(
        [str(dbt), "run", "--project-dir", str(project.root), "--profiles-dir", str(project.root)],
        cwd=project.root,
        env={**env, **project.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"dbt {DBT_VERSION} run failed:\n{proc.stdout[-4000:]}"
    assert f"Running with dbt={DBT_VERSION}." in proc.stdout, proc.stdout[:2000]
    return proc.stdout


def pending(project: DbtProject, model: str) -> list[tuple[Any, ...]]:
    return project.query(
        "select change_kind, attribute, value_type, value_text, value_hash "
        f"from braze_pending__{model} order by change_kind, attribute"
    )


def test_dbt_1_10_computes_the_golden_texts_and_hashes(project: DbtProject, dbt_1_10: Path) -> None:
    """The most direct evidence: on a fresh schema, dbt 1.10 normalizes and
    hashes every value to the texts pinned under dbt 1.11."""
    expected = write_models(project)
    run_dbt_1_10(project, dbt_1_10)
    for model, golden in expected.items():
        found = {
            attribute: (value_type, text, digest)
            for kind, attribute, value_type, text, digest in pending(project, model)
            if kind == "upsert"
        }
        assert found == golden, model


def test_state_acknowledged_under_dbt_1_11_leaves_nothing_pending_under_dbt_1_10(
    project: DbtProject, emulator: BrazeEmulator, dbt_1_10: Path
) -> None:
    write_models(project)
    project.dbt("run")
    assert project.braze("sync").exit_code == 0
    sent = emulator.stats()["objects_sent"]
    assert sent > 0

    # The sync recorded the fingerprints of the rows Braze accepted; forgotten here, so
    # that dbt 1.10 compares every attribute's hash with the acknowledged one.
    project.query(
        "insert into braze_fingerprints (model_name, braze_key, fingerprint, recorded_at) "
        "select model_name, braze_key, null, max(recorded_at) + interval '1 second' "
        "from braze_fingerprints group by model_name, braze_key"
    )
    output = run_dbt_1_10(project, dbt_1_10)
    for model in ("braze_users", "braze_json_users"):
        rows = pending(project, model)
        # a
        # `fingerprint` row is its verdict "unchanged", an `upsert` a resend (`model_rows`
        # and `state_rows` are the summary rows every pending relation holds).
        kinds = sorted(kind for kind, *_ in rows)
        assert kinds == ["fingerprint", "model_rows", "state_rows"], (model, rows)
        assert f"dbt_braze: {model}: nothing pending" in output

    assert project.braze("sync").exit_code == 0
    assert emulator.stats()["objects_sent"] == sent

    # The fingerprints dbt 1.10 recorded are dbt 1.11's too: not even a diff.
    project.dbt("run")
    for model in ("braze_users", "braze_json_users"):
        assert sorted(kind for kind, *_ in pending(project, model)) == ["model_rows", "state_rows"], model
