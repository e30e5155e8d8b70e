"""What each CLI command does, once its options are parsed.

Kept apart from cli.py so that tests and other tools can call a command with
plain arguments, and apart from the engine so that the engine knows nothing
of manifests, profiles or printing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import yaml

from dbt_braze.config import ModelSync, raise_if_problems, validate_model
from dbt_braze.errors import EXIT_OK, EXIT_USAGE, MetaValidationError
from dbt_braze.manifest import BrazeModelNode, braze_models, load_manifest, manifest_path, select_models

if TYPE_CHECKING:
    from dbt_braze.cli import BrazeSettings
    from dbt_braze.warehouse import RelationRef, Warehouse


def _target_path(project_dir: Path) -> str:
    """Where dbt wrote manifest.json: $DBT_TARGET_PATH, else dbt_project.yml's target-path."""
    if os.environ.get("DBT_TARGET_PATH"):
        return os.environ["DBT_TARGET_PATH"]
    project_file = project_dir / "dbt_project.yml"
    try:
        project = yaml.safe_load(project_file.read_text()) or {}
    except (OSError, yaml.YAMLError):
        project = {}
    return str(project.get("target-path") or "target")


def _load_nodes(project_dir: Path, select: list[str] | None) -> list[BrazeModelNode]:
    manifest = load_manifest(manifest_path(project_dir, _target_path(project_dir)))
    return select_models(braze_models(manifest), select)


def _relation(node: BrazeModelNode) -> RelationRef:
    from dbt_braze.warehouse import RelationRef

    return RelationRef(node.database, node.schema, node.alias)


def _validated(warehouse: Warehouse, nodes: list[BrazeModelNode]) -> tuple[list[tuple[ModelSync, BrazeModelNode]], list[str], list[str]]:
    """Every block checked against the warehouse's real columns; all problems at once."""
    valid, problems, notes = [], [], []
    for node in nodes:
        columns = warehouse.columns(_relation(node))
        if columns is None:
            notes.append(f"{node.name}: relation {node.schema}.{node.alias} not built yet; columns not checked")
        config, found = validate_model(node.name, node.unique_id, node.model_block, node.column_blocks, columns)
        problems += found
        if config is not None:
            valid.append((config, node))
    return valid, problems, notes


def _open_warehouse(project_dir: Path, profiles_dir: Path, target: str | None) -> Warehouse:
    from dbt_braze.warehouse import Target, Warehouse

    return Warehouse(Target(project_dir, profiles_dir, target))


def validate(project_dir: Path, profiles_dir: Path, target: str | None, *, out: TextIO) -> int:
    nodes = _load_nodes(project_dir, None)
    with _open_warehouse(project_dir, profiles_dir, target) as warehouse:
        valid, problems, notes = _validated(warehouse, nodes)
    for note in notes:
        print(f"note: {note}", file=out)
    if problems:
        print(str(MetaValidationError(problems)), file=out)
        return EXIT_USAGE
    print(f"{len(valid)} braze model(s) valid: {', '.join(c.model_name for c, _ in valid) or 'none'}", file=out)
    return EXIT_OK


def sync(project_dir: Path, profiles_dir: Path, target: str | None, *, select: list[str] | None,
         dry_run: bool, full_refresh: bool, braze: BrazeSettings | None, out: TextIO) -> int:
    from dbt_braze.engine import SyncEngine, SyncOptions
    from dbt_braze.report import model_summary

    nodes = _load_nodes(project_dir, select)
    if not nodes:
        print("no model declares a braze block: nothing to sync", file=out)
        return EXIT_OK
    client = None
    if braze is not None:
        from dbt_braze.braze import BrazeClient

        client = BrazeClient(braze.endpoint, braze.api_key)
    options = SyncOptions(dry_run=dry_run, full_refresh=full_refresh)
    try:
        with _open_warehouse(project_dir, profiles_dir, target) as warehouse:
            valid, problems, _ = _validated(warehouse, nodes)
            raise_if_problems(problems)
            for config, node in valid:
                warehouse.require_pending(config.model_name)
            if not dry_run:
                warehouse.ensure_tables()
            engine = SyncEngine(warehouse, client, options)
            if dry_run:
                print("dry run: nothing is sent and nothing is changed", file=out)
            for config, node in valid:
                report = engine.sync_model(config, _relation(node))
                print(model_summary(config, report, dry_run=dry_run), file=out)
    finally:
        if client is not None:
            client.close()
    return EXIT_OK
