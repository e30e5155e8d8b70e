"""Human-readable summaries of a sync or a dry run."""

from __future__ import annotations

import json
from typing import Any

from dbt_braze.config import ModelSync
from dbt_braze.engine import ModelReport


def model_summary(model: ModelSync, report: ModelReport, *, dry_run: bool) -> str:
    verb = "would be" if dry_run else ""
    lines = [f"{report.model} ({model.id_field}, mode {model.mode}, on_removed {model.on_removed}):"]

    def add(label: str, value: int) -> None:
        lines.append(f"  {label:<34}{value:>10,}")

    if model.update_only:
        add(
            f"users {verb} updated (update-only)".replace("  ", " "),
            report.users_created + report.users_updated,
        )
    else:
        add(f"users {verb} created".replace("  ", " "), report.users_created)
        add(f"users {verb} updated".replace("  ", " "), report.users_updated)
    add(f"attributes {verb} updated".replace("  ", " "), report.attributes_updated)
    add(f"attributes {verb} unset".replace("  ", " "), report.attributes_unset)
    add(f"users {verb} deleted".replace("  ", " "), report.users_deleted)
    add("rows rejected", report.rows_rejected)
    add("requests" + (" (estimated)" if dry_run else ""), report.requests)
    add("data points" + (" (estimated)" if dry_run else " sent"), report.data_points)
    if model.subscription_groups:  # not data points: lines of their own
        add(f"subscription changes {'would be sent' if dry_run else 'sent'}", report.subscription_changes)
        if model.subscriptions == "unsubscribe_only":
            add("subscribes withheld, not sent", report.subscribes_withheld)
    if report.withheld_null_rows or report.withheld_duplicate_keys:
        lines.append(
            f"  withheld, not sent: {report.withheld_null_rows:,} rows with a null identifier, "
            f"{report.withheld_duplicate_keys:,} duplicated identifiers "
            f"({report.withheld_duplicate_rows:,} rows)"
        )
        if report.duplicate_samples:
            lines.append("    duplicated: " + ", ".join(report.duplicate_samples))
    for key, reason in report.rejection_samples:
        lines.append(f"    rejected {model.id_field}={key}: {reason}")
    if report.removed_ignored:
        lines.append("  removed rows: ignored (on_removed: ignore)")
    if dry_run and report.sample_payloads:
        lines.append("  sample payloads:")
        lines += [f"    {json.dumps(p, sort_keys=False)}" for p in report.sample_payloads]
    if model.update_only and not dry_run:
        lines.append(
            "  note: update mode cannot tell which users Braze did not know (it ignores them silently)"
        )
    return "\n".join(lines)


def report_json(model: ModelSync, report: ModelReport, *, dry_run: bool, error: str | None) -> dict[str, Any]:
    """The machine-readable form of one model's sync or plan."""
    document: dict[str, Any] = {
        "model": report.model,
        "id_field": model.id_field,
        "mode": model.mode,
        "on_removed": model.on_removed,
        "status": "planned" if dry_run else ("failed" if error else "success"),
        "error": error,
    }
    document.update(report.counts())
    document.update(
        attributes_sent=report.attributes_sent,
        attributes_updated=report.attributes_updated,
        subscription_changes=report.subscription_changes,
        subscribes_withheld=report.subscribes_withheld,
        withheld_null_rows=report.withheld_null_rows,
        withheld_duplicate_keys=report.withheld_duplicate_keys,
        withheld_duplicate_rows=report.withheld_duplicate_rows,
        rejection_samples=[{"key": k, "reason": r} for k, r in report.rejection_samples],
        seconds=round(report.seconds, 3),
    )
    if dry_run:
        document["sample_payloads"] = report.sample_payloads
    return document


def status_text(models: list[dict[str, Any]]) -> str:
    """`dbt-braze status` for people."""
    if not models:
        return "no model declares a braze block"
    lines: list[str] = []
    for m in models:
        lines.append(f"{m['model']} (mode {m['mode']}, on_removed {m['on_removed']})")
        pending = m["pending"]
        if pending is None:
            lines.append("  pending: none computed yet (run `dbt run`)")
        else:
            lines.append(
                f"  pending: {pending['new_users']:,} new users, {pending['changed_users']:,} changed users "
                f"({pending['attributes']:,} attributes), {pending['removed_users']:,} removed users"
            )
        for w in m["withheld"]:
            what = "null identifier" if w["kind"] == "withheld_null" else f"duplicated identifier {w['key']}"
            lines.append(f"  withheld: {w['rows']:,} rows with a {what}")
        if not m["recent_runs"]:
            lines.append("  runs: never synced")
        for run in m["recent_runs"]:
            counts = (
                f"{run['users_created'] or 0:,} created, {run['users_updated'] or 0:,} updated, "
                f"{run['rows_rejected'] or 0:,} rejected, {run['data_points'] or 0:,} data points"
            )
            error = f" — {run['error']}" if run["error"] else ""
            lines.append(f"  run {run['started_at']} {run['status']:<11} {counts}{error}")
        lines.append(f"  rejected: {m['rejected_users']:,} users")
        for r in m["rejected_samples"]:
            lines.append(f"    {r['key']}: {r['reason']} ({r['rejected_at']})")
    return "\n".join(lines)
