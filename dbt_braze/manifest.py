"""Find the models that declare a `braze` block, from dbt's manifest.json.

Reading the JSON artifact (rather than re-parsing the project) is fast and
uses exactly what the last `dbt run` used. dbt 1.10+ mirrors `meta` into
`config.meta`; we read `config.meta` first and fall back to the legacy `meta`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbt_braze.config import BlockSource
from dbt_braze.errors import ConfigError, NotBuiltError


@dataclass(frozen=True)
class BrazeModelNode:
    name: str
    unique_id: str
    database: str | None
    schema: str
    alias: str
    model_block: BlockSource
    column_blocks: dict[str, BlockSource] = field(default_factory=dict)
    materialized: str | None = None


def _braze_block(node: dict[str, Any], prefix: str = "") -> BlockSource | None:
    config_meta = (node.get("config") or {}).get("meta") or {}
    if "braze" in config_meta:
        return BlockSource(f"{prefix}config.meta.braze", config_meta["braze"])
    legacy_meta = node.get("meta") or {}
    if "braze" in legacy_meta:
        return BlockSource(f"{prefix}meta.braze", legacy_meta["braze"])
    return None


def manifest_path(project_dir: Path, target_path: str = "target") -> Path:
    return project_dir / target_path / "manifest.json"


def load_manifest(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise NotBuiltError(
            f"no dbt manifest at {path}",
            hint="run `dbt run` (or `dbt parse`) in the project first",
        )
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot read the dbt manifest at {path}: {exc}", hint="run `dbt parse` to write it again"
        ) from exc
    return manifest


def braze_models(manifest: dict[str, Any]) -> list[BrazeModelNode]:
    """Every model with a model-level `braze` block (or column-level ones), by name."""
    found = []
    for unique_id, node in (manifest.get("nodes") or {}).items():
        if node.get("resource_type") != "model":
            continue
        column_blocks: dict[str, BlockSource] = {}
        for column_name, column in (node.get("columns") or {}).items():
            source = _braze_block(column, prefix=f"columns.{column_name}.")
            if source is not None:
                column_blocks[column_name] = source
        model_block = _braze_block(node)
        if model_block is None and not column_blocks:
            continue
        found.append(
            BrazeModelNode(
                name=node["name"],
                unique_id=unique_id,
                database=node.get("database"),
                schema=node["schema"],
                alias=node.get("alias") or node["name"],
                # column-level mappings with no model block: report the missing identifier
                model_block=model_block or BlockSource("config.meta.braze", {}),
                column_blocks=column_blocks,
                materialized=(node.get("config") or {}).get("materialized"),
            )
        )
    return sorted(found, key=lambda n: n.name)


def select_models(models: list[BrazeModelNode], names: list[str] | None) -> list[BrazeModelNode]:
    if not names:
        return models
    by_name = {m.name: m for m in models}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        known = ", ".join(by_name) or "none"
        raise ConfigError(
            f"--select names no model with a braze block: {', '.join(unknown)}",
            hint=f"models with a braze block: {known}",
        )
    return [by_name[n] for n in names]
