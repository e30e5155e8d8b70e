"""Human-readable summaries of a sync or a dry run."""

from __future__ import annotations

import json
from typing import Any

from dbt_braze.config import ModelSync
from dbt_braze.engine import ModelReport
from dbt_braze.rows import IdentifierChange


def model_summary(
    model: ModelSync, report: ModelReport, *, dry_run: bool, change: IdentifierChange | None = None
) -> str:
    if model.kind != "users":
        return _events_summary(model, report, dry_run=dry_run)
    verb = "would be" if dry_run else ""
    lines = [f"{report.model} ({model.id_field}, mode {model.mode}, on_removed {model.on_removed}):"]
    if change is not None and change.recorded_elsewhere:
        lines.append("  " + identifier_change_text(model, change))

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
    if report.users_forgotten:
        add(f"users {verb} forgotten".replace("  ", " "), report.users_forgotten)
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
        lines.append(f"    rejected {model.id_field}={key.removeprefix(model.key_prefix)}: {reason}")
    if report.users_forgotten:
        lines.append(
            f"  forgotten: users recorded under another identifier, which {model.id_field} cannot "
            "address: nothing is sent for them, their state is forgotten"
        )
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


def _events_summary(model: ModelSync, report: ModelReport, *, dry_run: bool) -> str:
    """Kinds events and purchases: sent at most once; unknown rows say what to do."""
    lines = [f"{report.model} (kind {model.kind}, {model.id_field}):"]

    def add(label: str, value: int) -> None:
        lines.append(f"  {label:<34}{value:>10,}")

    add(f"{model.kind} " + ("that would be sent" if dry_run else "sent"), report.events_sent)
    add("rows rejected", report.rows_rejected)
    add("outcome unknown in this run", report.events_unknown)
    add("outcome unknown in all", report.unknown_rows)
    add("changed after sending (not resent)", report.changed_after_sending)
    add("requests" + (" (estimated)" if dry_run else ""), report.requests)
    if report.withheld_null_rows or report.withheld_duplicate_keys:
        lines.append(
            f"  withheld, not sent: {report.withheld_null_rows:,} rows with a null identifier, event_id, "
            f"name or time, {report.withheld_duplicate_keys:,} duplicated event_ids "
            f"({report.withheld_duplicate_rows:,} rows)"
        )
    for key, reason in report.rejection_samples:
        lines.append(f"    rejected event_id={key}: {reason}")
    for key, reason in report.unknown_samples:
        lines.append(f"    unknown event_id={key}: {reason}")
    if report.unknown_rows:
        lines.append(
            "  rows whose outcome is unknown are never sent again by themselves: "
            "`dbt-braze sync --resend-unknown` sends them (possible duplicates), "
            "`--forget-unknown` records them as delivered"
        )
    if dry_run and report.sample_payloads:
        lines.append("  sample payloads:")
        lines += [f"    {json.dumps(p, sort_keys=False)}" for p in report.sample_payloads]
    return "\n".join(lines)


def identifier_change_text(model: ModelSync, change: IdentifierChange) -> str:
    """What `validate` and `plan` say of a model whose identifier changed since its state was recorded."""
    text = (
        f"{model.model_name}: its identifier changed since its state was recorded: "
        f"{change.recorded_elsewhere:,} users are held under another identifier, which "
        f"{model.id_field} cannot address (nothing is sent for them; their state is forgotten), "
        f"and {change.sent_whole:,} users will be sent whole, by {model.id_field}"
    )
    if model.on_removed != "ignore":
        text += (
            "; the mass-removal guard counts the change as removing every user: "
            "once checked, sync with --allow-removals"
        )
    return text


def identifier_json(model: ModelSync) -> dict[str, Any]:
    """The model's identifier: its kind (the field Braze objects carry), column and alias label."""
    return {"field": model.id_field, "column": model.id_column, "alias_label": model.alias_label}


def report_json(
    model: ModelSync,
    report: ModelReport,
    *,
    dry_run: bool,
    error: str | None,
    change: IdentifierChange | None = None,
) -> dict[str, Any]:
    """The machine-readable form of one model's sync or plan; `change` (a plan's): whether the
    model's identifier changed since its state was recorded."""
    document: dict[str, Any] = {
        "model": report.model,
        "id_field": model.id_field,
        "identifier": identifier_json(model),
        "mode": model.mode,
        "on_removed": model.on_removed,
        "status": "planned" if dry_run else ("failed" if error else "success"),
        "error": error,
    }
    document.update(report.counts())
    document.update(
        attributes_sent=report.attributes_sent,
        attributes_updated=report.attributes_updated,
        users_forgotten=report.users_forgotten,
        subscription_changes=report.subscription_changes,
        subscribes_withheld=report.subscribes_withheld,
        withheld_null_rows=report.withheld_null_rows,
        withheld_duplicate_keys=report.withheld_duplicate_keys,
        withheld_duplicate_rows=report.withheld_duplicate_rows,
        rejection_samples=[{"key": k, "reason": r} for k, r in report.rejection_samples],
        seconds=round(report.seconds, 3),
    )
    if model.kind == "users":
        document["compacted"] = report.compacted  # the logs compacted after the sync
    if model.kind != "users":
        document.update(
            kind=model.kind,
            events_sent=report.events_sent,
            events_unknown=report.events_unknown,
            unknown_rows=report.unknown_rows,
            unknown_samples=[{"key": k, "reason": r} for k, r in report.unknown_samples],
            changed_after_sending=report.changed_after_sending,
        )
    if dry_run:
        document["sample_payloads"] = report.sample_payloads
    if change is not None:
        document["identifier_change"] = change._asdict() if change.recorded_elsewhere else None
    return document


def status_text(models: list[dict[str, Any]]) -> str:
    """`dbt-braze status` for people."""
    if not models:
        return "no model declares a braze block"
    lines: list[str] = []
    for m in models:
        identifier = m["identifier"]
        by = f"{identifier['field']}: {identifier['column']}"
        if identifier["alias_label"] is not None:
            by += f" (label {identifier['alias_label']})"
        lines.append(f"{m['model']} ({by}, mode {m['mode']}, on_removed {m['on_removed']})")
        pending = m["pending"]
        if pending is None:
            lines.append("  pending: none computed yet (run `dbt run`)")
        elif "kind" in m:
            lines.append(
                f"  kind {m['kind']}: {pending['new_rows']:,} new rows pending, "
                f"{m['delivered']:,} delivered, {m['unknown']:,} unknown, "
                f"{m['changed_after_sending']:,} changed after sending"
            )
            if m["unknown"]:
                lines.append(
                    "  unknown: Braze may or may not have them; `dbt-braze sync --resend-unknown` or "
                    "`--forget-unknown`"
                )
        else:
            groups = pending["subscription_groups"]
            states = f", {groups:,} subscription group states" if groups else ""
            lines.append(
                f"  pending: {pending['new_users']:,} new users, {pending['changed_users']:,} changed users "
                f"({pending['attributes']:,} attributes{states}), {pending['removed_users']:,} removed users"
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
            if run.get("subscription_changes"):
                counts += f", {run['subscription_changes']:,} subscription changes"
            error = f" — {run['error']}" if run["error"] else ""
            lines.append(f"  run {run['started_at']} {run['status']:<11} {counts}{error}")
        lines.append(f"  rejected: {m['rejected_users']:,} users")
        if m.get("logs"):
            logs = m["logs"]
            lines.append(
                f"  logs: braze_state {logs['state_rows']:,} rows for {logs['state_keys']:,} keys, "
                f"braze_fingerprints {logs['fingerprint_rows']:,} rows for {logs['fingerprint_keys']:,} users"
            )
        for r in m["rejected_samples"]:
            lines.append(f"    {r['key']}: {r['reason']} ({r['rejected_at']})")
    return "\n".join(lines)
