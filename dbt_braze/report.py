"""Human-readable summaries of a sync or a dry run."""

from __future__ import annotations

import json

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
    add(f"attributes {verb} unset".replace("  ", " "), report.attributes_unset)
    add(f"users {verb} deleted".replace("  ", " "), report.users_deleted)
    add("rows rejected", report.rows_rejected)
    add("requests" + (" (estimated)" if dry_run else ""), report.requests)
    add("data points" + (" (estimated)" if dry_run else " sent"), report.data_points)
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
