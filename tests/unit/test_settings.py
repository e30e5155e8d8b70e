"""Sync settings: flags, then environment, then project vars; invalid ones named."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbt_braze.cli import main
from dbt_braze.errors import ConfigError
from dbt_braze.settings import SyncSettings, read_dbt_project, resolve_settings


def test_cli_beats_env_beats_project_vars(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "dbt_project.yml").write_text(
        "name: p\nvars:\n  dbt_braze_concurrency: 3\n  dbt_braze_batch_size: 50\n"
        "  dbt_braze_checkpoint_objects: 7\n"
    )
    monkeypatch.setenv("DBT_BRAZE_BATCH_SIZE", "60")
    monkeypatch.setenv("DBT_BRAZE_CHECKPOINT_OBJECTS", "8")
    settings = resolve_settings(tmp_path, {"checkpoint_objects": 9})
    assert (settings.concurrency, settings.batch_size, settings.checkpoint_objects) == (3, 60, 9)


def test_a_bad_value_names_its_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBT_BRAZE_CONCURRENCY", "many")
    with pytest.raises(ConfigError, match="DBT_BRAZE_CONCURRENCY"):
        resolve_settings(tmp_path, {})


def test_limits_are_checked() -> None:
    with pytest.raises(ConfigError, match="batch_size"):
        SyncSettings(batch_size=76)
    with pytest.raises(ConfigError, match="lock_lease_seconds"):
        SyncSettings(max_retry_seconds=300, lock_lease_seconds=200)


def test_dbt_project_is_read_in_one_place_for_vars_and_target_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "dbt_project.yml").write_text(
        "name: p\ntarget-path: out_dir\nvars:\n  dbt_braze_concurrency: 3\n"
    )
    monkeypatch.delenv("DBT_TARGET_PATH", raising=False)
    monkeypatch.delenv("DBT_BRAZE_CONCURRENCY", raising=False)
    assert read_dbt_project(tmp_path)["target-path"] == "out_dir"
    assert resolve_settings(tmp_path, {}).concurrency == 3
    assert main(["plan", "--project-dir", str(tmp_path)]) == 2
    assert f"no dbt manifest at {tmp_path / 'out_dir' / 'manifest.json'}" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n", "", "name: [unclosed\n"])
def test_a_dbt_project_that_is_not_a_mapping_reads_as_empty(
    text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """dbt names what is wrong with the file; dbt-braze takes the defaults and never fails on it."""
    (tmp_path / "dbt_project.yml").write_text(text)
    monkeypatch.delenv("DBT_TARGET_PATH", raising=False)
    assert read_dbt_project(tmp_path) == {}
    assert resolve_settings(tmp_path, {}) == SyncSettings()
    assert main(["plan", "--project-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"no dbt manifest at {tmp_path / 'target' / 'manifest.json'}" in err, err
