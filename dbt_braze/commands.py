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
from dbt_braze.errors import (
    EXIT_OK,
    EXIT_USAGE,
    BrazeAuthError,
    MetaValidationError,
    SyncError,
    WarehouseError,
)
from dbt_braze.manifest import (
    BrazeModelNode,
    braze_models,
    load_manifest,
    manifest_path,
    select_models,
)

if TYPE_CHECKING:
    from dbt_braze.braze import BrazeClient
    from dbt_braze.cli import BrazeSettings
    from dbt_braze.settings import SyncSettings
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


def _validated(
    warehouse: Warehouse, nodes: list[BrazeModelNode]
) -> tuple[list[tuple[ModelSync, BrazeModelNode]], list[str], list[str]]:
    """Every block checked against the warehouse's real columns; all problems at once."""
    valid, problems, notes = [], [], []
    for node in nodes:
        columns = warehouse.columns(_relation(node))
        if columns is None:
            notes.append(
                f"{node.name}: relation {node.schema}.{node.alias} not built yet; columns not checked"
            )
        config, found = validate_model(
            node.name, node.unique_id, node.model_block, node.column_blocks, columns
        )
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
    print(
        f"{len(valid)} braze model(s) valid: {', '.join(c.model_name for c, _ in valid) or 'none'}", file=out
    )
    return EXIT_OK


def sync(
    project_dir: Path,
    profiles_dir: Path,
    target: str | None,
    *,
    select: list[str] | None,
    dry_run: bool,
    full_refresh: bool,
    braze: BrazeSettings | None,
    settings: SyncSettings,
    out: TextIO,
) -> int:

    nodes = _load_nodes(project_dir, select)
    if not nodes:
        print("no model declares a braze block: nothing to sync", file=out)
        return EXIT_OK
    client = _client(braze, settings) if braze is not None else None
    failures: list[str] = []
    try:
        with _open_warehouse(project_dir, profiles_dir, target) as warehouse:
            valid, problems, _ = _validated(warehouse, nodes)
            raise_if_problems(problems)
            for config, _node in valid:
                warehouse.require_pending(config.model_name)
            if dry_run:
                print("dry run: nothing is sent and nothing is changed", file=out)
            else:
                warehouse.ensure_tables()
            for config, node in valid:
                failure = _sync_one(
                    warehouse, client, config, node, settings, out, dry_run=dry_run, full_refresh=full_refresh
                )
                if failure:
                    failures.append(failure)
            if not dry_run:
                print(
                    f"run history: {warehouse.macro('braze_runs_relation')}; "
                    f"rejected rows: {warehouse.macro('braze_rejected_relation')}",
                    file=out,
                )
    finally:
        if client is not None:
            client.close()
    if failures:
        raise SyncError(
            f"{len(failures)} model(s) did not finish: " + "; ".join(failures),
            hint="what was not delivered stays pending; the next sync sends it",
        )
    return EXIT_OK


def _client(braze: BrazeSettings, settings: SyncSettings) -> BrazeClient:
    from dbt_braze.braze import BrazeClient, RateLimiter, RetryPolicy

    return BrazeClient(
        braze.endpoint,
        braze.api_key,
        retry=RetryPolicy(max_elapsed=settings.max_retry_seconds),
        limiter=RateLimiter(settings.requests_per_second or None),
        max_objects=settings.batch_size,
    )


def _sync_one(
    warehouse: Warehouse,
    client: BrazeClient | None,
    config: ModelSync,
    node: BrazeModelNode,
    settings: SyncSettings,
    out: TextIO,
    *,
    dry_run: bool,
    full_refresh: bool,
) -> str | None:
    """Sync one model under its lock; returns why it failed, or None."""
    from dbt_braze.engine import ModelReport, SyncEngine, SyncOptions
    from dbt_braze.report import model_summary
    from dbt_braze.runlog import RunLog

    relation = _relation(node)
    run = RunLog(warehouse, config.model_name, lease_seconds=settings.lock_lease_seconds)
    options = SyncOptions(
        dry_run=dry_run,
        full_refresh=full_refresh,
        run_id=run.run_id,
        checkpoint_objects=settings.checkpoint_objects,
        checkpoint_seconds=settings.checkpoint_seconds,
        batch_size=settings.batch_size,
        concurrency=settings.concurrency,
        max_rejection_rate=settings.max_rejection_rate,
        rejection_check_objects=settings.rejection_check_objects,
    )
    engine = SyncEngine(warehouse, client, options, heartbeat=run.heartbeat)
    report = ModelReport(config.model_name)
    if dry_run:
        print(model_summary(config, engine.sync_model(config, relation, report), dry_run=True), file=out)
        return None
    run.start()
    status, error = "interrupted", None
    try:
        if warehouse.pending_is_stale(config.model_name):
            # a sync that overlapped the last `dbt run` acknowledged after it: re-diff
            warehouse.rebuild_pending(config.model_name, relation, config.id_column, config.attributes)
        built_at = warehouse.pending_built_at(config.model_name)
        engine.sync_model(config, relation, report)
        if warehouse.pending_built_at(config.model_name) != built_at:
            # a `dbt run` rebuilt the pending changes while we sent: its diff may
            # predate our acknowledgements, so recompute it now that we are done
            warehouse.rebuild_pending(config.model_name, relation, config.id_column, config.attributes)
        status = "success"
    except SyncError as exc:
        status, error = "failed", str(exc)
        if isinstance(exc, (BrazeAuthError, WarehouseError)):
            raise
        return error
    finally:
        try:
            run.finish(status, report.counts(), error)
        finally:
            print(model_summary(config, report, dry_run=False), file=out)
    return None
