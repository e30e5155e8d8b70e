"""What each CLI command does, once its options are parsed.

Kept apart from cli.py so that tests and other tools can call a command with
plain arguments, and apart from the engine so that the engine knows nothing
of manifests, profiles or printing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from dbt_braze import __version__
from dbt_braze.config import ModelSync, raise_if_problems, validate_model
from dbt_braze.engine import RUN_COUNTS, sync_one
from dbt_braze.errors import (
    EXIT_OK,
    EXIT_SYNC_FAILED,
    EXIT_USAGE,
    BrazeError,
    ConfigError,
    MetaValidationError,
    MissingSettingError,
    SyncError,
    WarehouseError,
)
from dbt_braze.manifest import BrazeModelNode, braze_models, load_manifest, manifest_path, select_models
from dbt_braze.report import identifier_change_text, identifier_json, model_summary, report_json
from dbt_braze.rows import RelationRef
from dbt_braze.selection import Project, resolve_models
from dbt_braze.settings import BrazeSettings, SyncMode, SyncSettings

if TYPE_CHECKING:
    from dbt_braze.braze import BrazeClient
    from dbt_braze.store import Store


@dataclass(frozen=True)
class SyncRequest:
    select: list[str] | None
    mode: SyncMode
    braze: BrazeSettings | None  # None: a dry run needs no Braze
    settings: SyncSettings
    output: str = "text"  # text | json


def _target_path(project_dir: Path) -> str:
    """Where dbt wrote manifest.json: $DBT_TARGET_PATH, else dbt_project.yml's target-path."""
    if os.environ.get("DBT_TARGET_PATH"):
        return os.environ["DBT_TARGET_PATH"]
    from dbt_braze.settings import read_dbt_project

    return str(read_dbt_project(project_dir).get("target-path") or "target")


def _load_nodes(project: Project, select: list[str] | None) -> list[BrazeModelNode]:
    if not (project.project_dir / "dbt_project.yml").is_file():
        raise ConfigError(
            f"no dbt_project.yml in {project.project_dir}",
            hint="run from your dbt project, or pass --project-dir",
        )
    manifest = load_manifest(manifest_path(project.project_dir, _target_path(project.project_dir)))
    models = braze_models(manifest)
    if not select:
        return models
    if all(name.isidentifier() for name in select):  # plain model names: no need to ask dbt
        return select_models(models, select)
    names = set(resolve_models(project, select))
    return [m for m in models if m.name in names]


def _relation(node: BrazeModelNode) -> RelationRef:
    return RelationRef(node.database, node.schema, node.alias)


def _validated(
    warehouse: Store, nodes: list[BrazeModelNode]
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
            node.name, node.unique_id, node.model_block, node.column_blocks, columns, node.materialized
        )
        problems += found
        if config is not None:
            valid.append((config, node))
    return valid, problems, notes


def _open_warehouse(project: Project, *, base_macros_only: bool = False) -> Store:
    from dbt_braze.dbt_access import DbtAccess, Target
    from dbt_braze.store import Store

    manifest = manifest_path(project.project_dir, _target_path(project.project_dir))
    target = Target(project.project_dir, project.profiles_dir, project.target, manifest)
    warehouse = Store(DbtAccess(target, base_macros_only=base_macros_only))
    if not base_macros_only and warehouse.package_version != __version__:
        # the hook computed the pending changes with those macros; this CLI reads
        # and acknowledges them with its own: two versions may disagree on the layout
        warehouse.close()
        raise ConfigError(
            f"the dbt_braze package installed in this project is version {warehouse.package_version}, "
            f"but this dbt-braze CLI is version {__version__}",
            hint="install the same version of both: point packages.yml at the dbt package of this "
            "CLI (`dbt-braze init` adds it; remove the old entry first), run `dbt deps`, then `dbt run`",
        )
    return warehouse


# -- validate ------------------------------------------------------------------


def validate(project: Project, *, out: TextIO) -> int:
    """Exit 0 when every block is valid, 2 otherwise (the contract), including
    when the warehouse cannot be reached to check the columns."""
    nodes = _load_nodes(project, None)
    try:
        with _open_warehouse(project) as warehouse:
            valid, problems, notes = _validated(warehouse, nodes)
            if not problems:
                notes += _identifier_changes(warehouse, valid)
    except WarehouseError as exc:
        raise ConfigError(f"cannot validate against the warehouse: {exc.message}", hint=exc.hint) from exc
    catalog_problems, catalog_notes = _catalog_field_problems([config for config, _ in valid])
    problems += catalog_problems
    notes += catalog_notes
    for note in notes:
        print(f"note: {note}", file=out)
    if problems:
        print(str(MetaValidationError(problems)), file=out)
        return EXIT_USAGE
    names = ", ".join(c.model_name for c, _ in valid) or "none"
    print(f"{len(valid)} braze model(s) valid: {names}", file=out)
    return EXIT_OK


def _identifier_changes(warehouse: Store, valid: list[tuple[ModelSync, BrazeModelNode]]) -> list[str]:
    """A note for each built model whose identifier changed since its state was recorded."""
    from dbt_braze.errors import NotBuiltError

    notes = []
    for config, node in valid:
        try:
            change = warehouse.identifier_change(config, _relation(node))
        except NotBuiltError:  # noted already: not built yet
            continue
        if change.recorded_elsewhere:
            notes.append(identifier_change_text(config, change))
    return notes


def _catalog_field_problems(models: list[ModelSync]) -> tuple[list[str], list[str]]:
    """Problems and notes of the catalog models' fields, as Braze has them (GET /catalogs):
    a catalog that does not exist, mapped fields it lacks (Braze would refuse every item
    that names one). Without BRAZE_API_KEY and BRAZE_REST_ENDPOINT, a note that the
    check was skipped."""
    catalogs = [model for model in models if model.kind == "catalog"]
    if not catalogs:
        return [], []
    try:
        braze = BrazeSettings.from_env()
    except MissingSettingError:
        names = ", ".join(model.model_name for model in catalogs)
        note = (
            f"catalog fields not checked ({names}): no BRAZE_API_KEY and BRAZE_REST_ENDPOINT, "
            "so this check against Braze's catalogs was skipped"
        )
        return [], [note]
    client = _client(braze, SyncSettings())
    problems: list[str] = []
    fields_of: dict[str, dict[str, str] | None] = {}
    try:
        for model in catalogs:
            name = model.catalog or ""
            if name not in fields_of:
                fields_of[name] = client.catalog_fields(name)
            fields = fields_of[name]
            if fields is None:
                problems.append(
                    f"{model.model_name}: config.meta.braze.catalog: Braze has no catalog `{name}`; "
                    "create it in Braze (Data Settings > Catalogs) with the mapped fields, or fix the name"
                )
                continue
            for mapping in model.attributes:
                if mapping.attribute not in fields:
                    problems.append(
                        f"{model.model_name}: config.meta.braze.fields.{mapping.column}: the catalog "
                        f"`{name}` has no field `{mapping.attribute}` (Braze would refuse every item "
                        f"that sends it); add the field in Braze, or map one of: {', '.join(sorted(fields))}"
                    )
    except BrazeError as exc:
        problems.append(f"cannot read the catalogs' fields from Braze: {exc.message}")
    finally:
        client.close()
    return problems, []


# -- sync and plan ---------------------------------------------------------------


def sync(project: Project, request: SyncRequest, *, out: TextIO) -> int:
    nodes = _load_nodes(project, request.select)
    if not nodes:
        _emit(request, out, [], "no selected model declares a braze block: nothing to sync")
        return EXIT_OK
    client = _client(request.braze, request.settings) if request.braze is not None else None
    reports: list[dict[str, Any]] = []
    failures: list[str] = []
    try:
        with _open_warehouse(project) as warehouse:
            valid, problems, _ = _validated(warehouse, nodes)
            raise_if_problems(problems)
            if request.mode.dry_run:  # a plan checks the catalogs' fields, as validate does
                catalog_problems, catalog_notes = _catalog_field_problems([config for config, _ in valid])
                raise_if_problems(catalog_problems)
                for note in catalog_notes:
                    _say(request, out, f"note: {note}")
            for config, _node in valid:
                warehouse.require_pending(config.model_name)
            if request.mode.dry_run:
                _say(request, out, "dry run: nothing is sent and nothing is changed")
            else:
                warehouse.ensure_tables()
            for config, node in valid:
                # a plan says when the model's identifier changed (validate does too)
                change = warehouse.identifier_change(config) if request.mode.dry_run else None
                report, failure = sync_one(
                    warehouse,
                    client,
                    config,
                    _relation(node),
                    request.settings,
                    request.mode,
                    progress_to=sys.stderr,
                )
                reports.append(
                    report_json(config, report, dry_run=request.mode.dry_run, error=failure, change=change)
                )
                _say(request, out, model_summary(config, report, dry_run=request.mode.dry_run, change=change))
                if request.mode.full_refresh and config.kind in ("events", "purchases"):
                    _say(
                        request,
                        out,
                        f"  --full-refresh: no effect on kind {config.kind}: a row is never sent twice",
                    )
                if failure:
                    failures.append(failure)
                    _say(request, out, f"  failed: {failure}")
            if not request.mode.dry_run:
                _say(
                    request,
                    out,
                    f"run history: {warehouse.relation_name('braze_runs_relation')}; "
                    f"rejected rows: {warehouse.relation_name('braze_rejected_relation')}",
                )
    finally:
        if client is not None:
            client.close()
    _emit(request, out, reports, None, exit_code=EXIT_SYNC_FAILED if failures else EXIT_OK)
    if failures and request.output == "json":
        return EXIT_SYNC_FAILED  # the document above says which models failed and why
    if failures:
        raise SyncError(
            f"{len(failures)} model(s) did not finish",
            hint="what was not delivered stays pending; the next sync sends it "
            "(events whose outcome is unknown excepted: see above what to do about them)",
        )
    return EXIT_OK


def _say(request: SyncRequest, out: TextIO, text: str) -> None:
    if request.output == "text":
        print(text, file=out)


def _emit(
    request: SyncRequest,
    out: TextIO,
    reports: list[dict[str, Any]],
    note: str | None,
    *,
    exit_code: int = EXIT_OK,
) -> None:
    if request.output == "json":
        document = {
            "command": "plan" if request.mode.dry_run else "sync",
            "exit_code": exit_code,
            "models": reports,
        }
        print(json.dumps(document, indent=2, default=str), file=out)
    elif note:
        print(note, file=out)


def _client(braze: BrazeSettings, settings: SyncSettings) -> BrazeClient:
    from dbt_braze.braze import BrazeClient, RateLimiter, RetryPolicy

    return BrazeClient(
        braze.endpoint,
        braze.api_key,
        retry=RetryPolicy(max_elapsed=settings.max_retry_seconds),
        limiter=RateLimiter(settings.requests_per_second or None),
        catalog_limiter=RateLimiter(settings.catalog_requests_per_second or None),
        max_objects=settings.batch_size,
    )


# -- run: dbt build, then sync what built ------------------------------------------


def build_then_sync(project: Project, request: SyncRequest, *, out: TextIO) -> int:
    """`dbt build` the selection (dbt prints its own log), then sync the braze models that built."""
    from dbt_braze.dbt_access import invoke_dbt

    args = ["build", *project.dbt_args(), *(["--select", *request.select] if request.select else [])]
    # with --output json, stdout carries the JSON document only: dbt's log goes to stderr
    redirect = (
        contextlib.redirect_stdout(sys.stderr) if request.output == "json" else contextlib.nullcontext()
    )
    with redirect:
        result = invoke_dbt(args)
    outcome: Any = result.result  # RunExecutionResult for `build`
    if outcome is None:
        raise ConfigError(
            f"dbt build could not start: {result.exception}",
            hint="run `dbt build` yourself to see dbt's full error",
        )
    built = {
        r.node.unique_id: r.node.name
        for r in outcome.results
        if r.node.resource_type == "model" and str(r.status) == "success"
    }
    # a model whose tests failed is not sent: bad data would cost data points to undo
    gated = {
        built[dep]
        for r in outcome.results
        if r.node.resource_type == "test" and str(r.status) in ("fail", "error")
        for dep in r.node.depends_on.nodes
        if dep in built
    }
    for name in sorted(gated):
        print(f"dbt-braze: {name}: not synced, its tests failed", file=sys.stderr)
    built_names = set(built.values()) - gated
    braze_names = [m.name for m in _load_nodes(project, None) if m.name in built_names]
    if not braze_names:
        print("dbt-braze: no braze model built successfully: nothing to sync", file=sys.stderr)
        return EXIT_OK if result.success else EXIT_SYNC_FAILED
    code = sync(
        project,
        dataclasses.replace(request, select=braze_names),
        out=out,
    )
    if not result.success:
        print("dbt-braze: dbt build had failures; only the models that built were synced", file=sys.stderr)
        return EXIT_SYNC_FAILED
    return code


# -- status ------------------------------------------------------------------------------


def status(project: Project, *, select: list[str] | None, output: str, out: TextIO) -> int:
    from dbt_braze.report import status_text

    nodes = _load_nodes(project, select)
    models: list[dict[str, Any]] = []
    with _open_warehouse(project) as warehouse:
        valid, problems, _ = _validated(warehouse, nodes)
        raise_if_problems(problems)
        warehouse.ensure_tables()
        for config, _node in valid:
            models.append(_model_status(warehouse, config))
    if output == "json":
        print(json.dumps({"command": "status", "models": models}, indent=2, default=str), file=out)
    else:
        print(status_text(models), file=out)
    return EXIT_OK


def _model_status(warehouse: Store, config: ModelSync) -> dict[str, Any]:
    from dbt_braze.errors import NotBuiltError

    name = config.model_name
    runs = [
        dict(zip(RUN_COLUMNS, row, strict=True))
        for row in warehouse.fetch_macro("braze_recent_runs_sql", model_name=name, limit=5)
    ]
    if config.kind != "users":
        return _event_model_status(warehouse, config, runs)
    try:
        warehouse.require_pending(name)
        counts = warehouse.fetch_macro(
            "braze_pending_counts_sql", model_name=name, on_removed=config.on_removed
        )[0]
        pending: dict[str, Any] | None = dict(
            zip(
                ("new_users", "changed_users", "attributes", "subscription_groups", "removed_users"),
                counts,
                strict=True,
            )
        )
        withheld = warehouse.withheld(name)
    except NotBuiltError:
        pending, withheld = None, []
    rejected = warehouse.fetch_macro("braze_rejected_summary_sql", model_name=name, limit=5)
    rejected_total = warehouse.fetch_macro("braze_rejected_count_sql", model_name=name)[0][0]
    return {
        "model": name,
        "identifier": identifier_json(config),
        "mode": config.mode,
        "on_removed": config.on_removed,
        "recent_runs": runs,
        "pending": pending,
        "withheld": [
            {"kind": kind, "key": key, "rows": rows} for kind, key, rows in withheld if kind != "model_rows"
        ],
        "rejected_users": int(rejected_total or 0),
        "rejected_samples": [{"key": k, "reason": r, "rejected_at": t} for k, r, t in rejected],
        # the acknowledgement logs against their keys (compaction keeps them near 1:1)
        "logs": warehouse.log_sizes(name).as_json(),
    }


def _event_model_status(warehouse: Store, config: ModelSync, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """`status` of a model of kind events or purchases: its ids by latest status, with the unknown."""
    from dbt_braze.errors import NotBuiltError

    name = config.model_name
    statuses = warehouse.event_statuses(name)
    try:
        warehouse.require_pending(name)
        counts: dict[str, int] | None = warehouse.event_counts(name)
        withheld = warehouse.withheld(name)
    except NotBuiltError:
        counts, withheld = None, []
    return {
        "model": name,
        "kind": config.kind,
        "identifier": identifier_json(config),
        "mode": config.mode,
        "on_removed": config.on_removed,
        "recent_runs": runs,
        "pending": None if counts is None else {"new_rows": counts.get("pending", 0)},
        "changed_after_sending": None if counts is None else counts.get("changed_after_sending", 0),
        "withheld": [
            {"kind": kind, "key": key, "rows": rows} for kind, key, rows in withheld if kind != "model_rows"
        ],
        "delivered": statuses.get("delivered", 0),
        "unknown": statuses.get("unknown", 0) + statuses.get("in_flight", 0),
        "rejected_users": statuses.get("rejected", 0),
        "rejected_samples": [],
    }


# the columns of macro braze_recent_runs_sql, in order
RUN_COLUMNS = ("run_id", "status", "started_at", "ended_at", *RUN_COUNTS, "error")


# -- init --------------------------------------------------------------------------------


def init(project: Project, *, model: str | None, source: str | None, out: TextIO) -> int:
    from dbt_braze.scaffold import add_package, meta_example, package_source

    print(add_package(project.project_dir, package_source(source)), file=out)
    if model is None:
        return EXIT_OK
    manifest = load_manifest(manifest_path(project.project_dir, _target_path(project.project_dir)))
    node = next(
        (
            n
            for n in (manifest.get("nodes") or {}).values()
            if n.get("resource_type") == "model" and n.get("name") == model
        ),
        None,
    )
    if node is None:
        raise ConfigError(
            f"no model named {model} in the manifest",
            hint="check the name, and run `dbt parse` after adding the model",
        )
    with _open_warehouse(project, base_macros_only=True) as warehouse:  # before `dbt deps`
        columns = warehouse.columns(
            RelationRef(node.get("database"), node["schema"], node.get("alias") or model)
        )
    columns = columns or list(node.get("columns") or {})
    if not columns:
        raise ConfigError(
            f"{model} is not built and documents no columns", hint=f"run `dbt run --select {model}` first"
        )
    print(f"\n# add to the schema.yml of {model}:", file=out)
    print(meta_example(model, columns), file=out)
    return EXIT_OK
