"""Start-up: commands take the macros from target/manifest.json while the macro files are as
dbt read them, and parse the files again as soon as one was added, changed or removed, or the
manifest was written by another dbt (the time it saves: bench/bench_startup.py)."""

from __future__ import annotations

import gc
import json
from typing import Any

import pytest
from dbt.parser.manifest import ManifestLoader

from dbt_braze.dbt_access import DbtAccess
from dbt_braze.emulator import BrazeEmulator
from dbt_braze.rows import RelationRef

from harness import DbtProject, braze_model, users_sql

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)]

HELPER = """
{# a helper of the project's own #}
{% macro shout(text) %}{{ text | upper }}{% endmacro %}
"""


def test_macros_come_from_a_current_manifest_and_from_the_files_once_one_changed(
    project: DbtProject, emulator: BrazeEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project.root / "macros").mkdir()
    helper = project.root / "macros" / "helpers.sql"
    helper.write_text(HELPER)
    project.write_model(users_sql(5))
    project.write_schema([braze_model()])
    project.dbt("run")
    parsed: list[bool] = []
    load_macros = ManifestLoader.load_macros

    def counting(*args: Any, **kwargs: Any) -> Any:
        parsed.append(True)
        return load_macros(*args, **kwargs)

    monkeypatch.setattr(ManifestLoader, "load_macros", counting)

    def parses(*args: str) -> bool:
        """Whether `dbt-braze ARGS` (which must succeed) parsed the macro files."""
        parsed.clear()
        result = project.braze(*args)
        assert result.exit_code == 0, result.output
        return bool(parsed)

    # current manifest: the macros it recorded serve every command that queries
    assert not parses("validate")
    assert not parses("status")
    assert not parses("plan")
    plan = json.loads(project.braze("plan", "--output", "json").output)
    assert plan["models"][0]["users_created"] == 5

    # text between the blocks is not a macro: still current
    helper.write_text("-- reformatted\n" + HELPER)
    assert not parses("validate")
    # a block changed, added or removed: the files are read again
    helper.write_text(HELPER.replace("upper", "lower"))
    assert parses("validate")
    helper.write_text(HELPER + "{% macro whisper(text) %}{{ text | lower }}{% endmacro %}\n")
    assert parses("validate")
    helper.write_text("")
    assert parses("validate")
    (project.root / "macros" / "new.sql").write_text("{%- macro new_one() -%} 1 {%- endmacro %}\n")
    assert parses("status")

    # once dbt has read them again, current again; unless another dbt version wrote it
    project.dbt("parse")
    assert not parses("validate")
    manifest = project.root / "target" / "manifest.json"
    document = json.loads(manifest.read_text())
    document["metadata"]["dbt_version"] = "1.0.0"
    manifest.write_text(json.dumps(document))
    assert parses("validate")


def test_the_collector_leaves_the_set_up_alone_while_the_warehouse_is_open(
    project: DbtProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The objects of dbt's set-up, which live as long as the adapter, are set aside from the
    cyclic collector (its walks over them were a sixth of `plan`'s CPU time) while the
    warehouse is open, and handed back when it closes: a process that opens many frees them."""
    project.write_model(users_sql(5))
    project.write_schema([braze_model()])
    project.dbt("run")
    seen: list[tuple[int, bool]] = []
    columns = DbtAccess.columns

    def recording(self: DbtAccess, ref: RelationRef) -> list[str] | None:
        seen.append((gc.get_freeze_count(), gc.isenabled()))
        return columns(self, ref)

    monkeypatch.setattr(DbtAccess, "columns", recording)
    result = project.braze("validate")
    assert result.exit_code == 0, result.output
    assert seen and all(frozen > 0 and enabled for frozen, enabled in seen)
    assert gc.get_freeze_count() == 0
    assert gc.isenabled()
