"""Finding the models with a `braze` block in a hand-written manifest.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dbt_braze.config import BlockSource
from dbt_braze.errors import EXIT_USAGE, ConfigError, NotBuiltError
from dbt_braze.manifest import (
    braze_models,
    load_manifest,
    manifest_path,
    select_models,
)

BLOCK = {"external_id": "user_id", "attributes": {"email": "email"}}


def model_node(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "resource_type": "model",
        "name": name,
        "database": "analytics",
        "schema": "marts",
        "alias": None,
        "package_name": "shop",
        "config": {"meta": {}},
        "meta": {},
        "columns": {},
        **extra,
    }


def manifest() -> dict[str, Any]:
    return {
        "metadata": {"dbt_version": "1.10.0"},
        "nodes": {
            "model.shop.users_config": model_node("users_config", config={"meta": {"braze": BLOCK}}),
            "model.shop.users_legacy": model_node(
                "users_legacy", meta={"braze": {"braze_id": "bid"}}, alias="users_legacy_v2"
            ),
            "model.shop.users_columns": model_node(
                "users_columns",
                columns={
                    "plan": {
                        "name": "plan",
                        "config": {"meta": {"braze": {"attribute": "plan_tier"}}},
                    },
                    "email": {"name": "email", "meta": {"braze": {"attribute": "email"}}},
                    "other": {"name": "other", "meta": {"owner": "x"}},
                },
            ),
            "model.shop.no_braze": model_node(
                "no_braze", config={"meta": {"owner": "data"}}, meta={"owner": "data"}
            ),
            "seed.shop.braze_seed": {
                "resource_type": "seed",
                "name": "braze_seed",
                "schema": "marts",
                "config": {"meta": {"braze": BLOCK}},
            },
            "snapshot.shop.braze_snap": {
                "resource_type": "snapshot",
                "name": "braze_snap",
                "schema": "snapshots",
                "meta": {"braze": BLOCK},
            },
            "test.shop.not_null_users": {"resource_type": "test", "name": "not_null_users"},
        },
        "sources": {},
    }


def test_braze_models_finds_config_legacy_and_column_level_blocks() -> None:
    found = braze_models(manifest())
    assert [m.name for m in found] == ["users_columns", "users_config", "users_legacy"]
    by_name = {m.name: m for m in found}

    config_model = by_name["users_config"]
    assert config_model.unique_id == "model.shop.users_config"
    assert config_model.model_block == BlockSource("config.meta.braze", BLOCK)
    assert config_model.column_blocks == {}
    assert (config_model.database, config_model.schema, config_model.alias) == (
        "analytics",
        "marts",
        "users_config",
    )

    legacy = by_name["users_legacy"]
    assert legacy.model_block == BlockSource("meta.braze", {"braze_id": "bid"})
    assert legacy.alias == "users_legacy_v2"

    columns_only = by_name["users_columns"]
    assert columns_only.column_blocks == {
        "plan": BlockSource("columns.plan.config.meta.braze", {"attribute": "plan_tier"}),
        "email": BlockSource("columns.email.meta.braze", {"attribute": "email"}),
    }
    # no model block: an empty one, so validation reports the missing identifier
    assert columns_only.model_block == BlockSource("config.meta.braze", {})


def test_config_meta_wins_over_legacy_meta() -> None:
    m = manifest()
    m["nodes"]["model.shop.users_config"]["meta"] = {"braze": {"external_id": "legacy"}}
    (node,) = [n for n in braze_models(m) if n.name == "users_config"]
    assert node.model_block.path == "config.meta.braze"
    assert node.model_block.block == BLOCK


def test_non_models_and_models_without_blocks_are_ignored() -> None:
    names = {m.name for m in braze_models(manifest())}
    assert "no_braze" not in names
    assert "braze_seed" not in names
    assert "braze_snap" not in names
    assert "not_null_users" not in names


def test_empty_manifest_has_no_models() -> None:
    assert braze_models({}) == []
    assert braze_models({"nodes": {}}) == []


def test_select_models_keeps_the_requested_order() -> None:
    models = braze_models(manifest())
    assert select_models(models, None) == models
    assert select_models(models, []) == models
    selected = select_models(models, ["users_legacy", "users_config"])
    assert [m.name for m in selected] == ["users_legacy", "users_config"]


def test_select_models_unknown_name_names_the_known_models() -> None:
    models = braze_models(manifest())
    with pytest.raises(ConfigError) as info:
        select_models(models, ["users_config", "usrs"])
    error = info.value
    assert error.exit_code == EXIT_USAGE == 2
    text = str(error)
    assert "usrs" in text
    assert "users_config, " not in error.message  # only the unknown name in the message
    for name in ("users_columns", "users_config", "users_legacy"):
        assert name in (error.hint or "")
    assert "no_braze" not in text


def test_select_models_with_no_braze_models_at_all() -> None:
    with pytest.raises(ConfigError) as info:
        select_models([], ["users"])
    assert "none" in (info.value.hint or "")


def test_load_manifest_missing_path_says_run_dbt_run(tmp_path: Path) -> None:
    path = manifest_path(tmp_path)
    assert path == tmp_path / "target" / "manifest.json"
    with pytest.raises(NotBuiltError) as info:
        load_manifest(path)
    assert isinstance(info.value, ConfigError)
    assert info.value.exit_code == 2
    assert str(path) in str(info.value)
    assert "dbt run" in (info.value.hint or "")


def test_load_manifest_reads_json(tmp_path: Path) -> None:
    path = manifest_path(tmp_path, "custom_target")
    path.parent.mkdir()
    path.write_text(json.dumps(manifest()))
    loaded = load_manifest(path)
    assert [m.name for m in braze_models(loaded)] == [
        "users_columns",
        "users_config",
        "users_legacy",
    ]


def test_load_manifest_unreadable_json_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text("{truncated")
    with pytest.raises(ConfigError) as info:
        load_manifest(path)
    assert not isinstance(info.value, NotBuiltError)
    assert info.value.exit_code == 2
    assert "dbt parse" in (info.value.hint or "")


def test_braze_models_carry_the_materialization() -> None:
    nodes = {
        "model.shop.eph": model_node("eph", config={"meta": {"braze": BLOCK}, "materialized": "ephemeral"}),
        "model.shop.plain": model_node("plain", config={"meta": {"braze": BLOCK}}),
    }
    found = {m.name: m.materialized for m in braze_models({"nodes": nodes})}
    assert found == {"eph": "ephemeral", "plain": None}
