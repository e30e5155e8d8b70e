"""Sync settings: flags, then environment, then project vars; invalid ones named."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbt_braze.errors import ConfigError
from dbt_braze.settings import SyncSettings, resolve_settings


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
