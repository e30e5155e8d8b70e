"""Benchmark: events sent at most once, `dbt run` + `dbt-braze sync` against the bundled emulator.

    .venv/bin/python bench/bench_events.py                    # 1,000,000 events
    .venv/bin/python bench/bench_events.py --events 20000     # smoke run

Builds a throwaway dbt project on DuckDB with one model of kind `events` (N rows:
an event id, a user, one of five event names, a timestamp and two properties;
`backfill: all`), then measures two cases:

  (a) first sync      every row is sent (backfill all)
  (b) 1% new rows     the model grows by --new-pct of N rows; only those are sent

For each case: `dbt run` without the package's hook (the model alone) and with it
(the hook computes the pending events by an anti-join against the events log),
then `dbt-braze sync` as a subprocess against the emulator in sink mode (no
latency, no rate limit). It prints events/s, requests, the hook's own time (as
dbt records it), peak RSS of each process, and the (b) cycle (`dbt run` with
the package + sync), which the issue wants under 15 s on two cores. It asserts
nothing about timing. Shared machinery (measuring a process, the emulator
process, dbt runs) is bench_sync.py's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

from bench_sync import (
    API_KEY,
    LOAD_AT_START,
    REPO_ROOT,
    DbtRun,
    Emulator,
    bench_env,
    code_fingerprint,
    dbt_run,
    fmt,
    log,
    machine_info,
    run_measured,
)

MODEL = "bench_events"
CYCLE_BUDGET_SECONDS = 15.0  # issue 14: the 1%-new-rows dbt run + sync on two cores


def model_sql(events: int) -> str:
    """N events, plus `bench_new_rows` more once the var is set (case b)."""
    return textwrap.dedent(f"""\
        {{{{ config(materialized='table') }}}}
        select
            'evt-' || i as event_id,
            cast(i % 50000 as varchar) as user_id,
            ['order_placed', 'trial_started', 'ticket_closed', 'plan_changed', 'login'][1 + i % 5]
                as event_name,
            timestamp '2026-01-01 00:00:00' + to_seconds(i) as occurred_at,
            cast(i % 10000 as decimal(12, 2)) / 100 as amount,
            case when i % 3 = 0 then 'pro' else 'free' end as plan
        from range(1, {events} + 1 + {{{{ var('bench_new_rows', 0) }}}}) t(i)
        """)


def build_project(root: Path, events: int) -> None:
    (root / "models").mkdir(parents=True)
    (root / "dbt_project.yml").write_text(
        "name: braze_events_bench\nversion: '1.0.0'\nconfig-version: 2\nprofile: braze_events_bench\n"
        "model-paths: ['models']\nflags:\n  send_anonymous_usage_stats: false\n"
    )
    (root / "profiles.yml").write_text(
        "braze_events_bench:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        f"      path: '{root / 'warehouse.duckdb'}'\n      threads: 1\n"
    )
    (root / "packages.yml").write_text(f"packages:\n  - local: {REPO_ROOT}\n")
    (root / "dbt_packages").mkdir()
    (root / "dbt_packages" / "dbt_braze").symlink_to(REPO_ROOT)  # what `dbt deps` does for local:
    (root / "models" / f"{MODEL}.sql").write_text(model_sql(events))
    block = {
        "kind": "events",
        "external_id": "user_id",
        "event_id": "event_id",
        "name": "event_name",
        "time": "occurred_at",
        "properties": {"amount": "amount", "plan": "plan"},
        "backfill": "all",
    }
    schema = {"version": 2, "models": [{"name": MODEL, "config": {"meta": {"braze": block}}}]}
    (root / "models" / "schema.yml").write_text(json.dumps(schema, indent=2))  # JSON is YAML


def sync(root: Path, env: dict[str, str], emulator: Emulator) -> dict[str, Any]:
    emulator.reset()
    cmd = [sys.executable, "-m", "dbt_braze", "sync", "--project-dir", str(root), "--profiles-dir", str(root)]
    sync_env = {**env, "BRAZE_API_KEY": API_KEY, "BRAZE_REST_ENDPOINT": emulator.url}
    result = run_measured([*cmd, "--output", "json", "--requests-per-second", "0"], env=sync_env, cwd=root)
    if result.returncode != 0:
        raise SystemExit(
            f"sync failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    stats = emulator.stats()
    (report,) = json.loads(result.stdout)["models"]
    return {
        "seconds": result.seconds,
        "peak_rss_mb": result.peak_rss_mb,
        "cpu_seconds": result.cpu_seconds,
        "events": int(stats.get("events_accepted", 0)),
        "requests": int(stats.get("track_requests", 0)) - int(stats.get("empty_track_requests", 0)),
        "report": report,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark events: dbt run + dbt-braze sync on DuckDB.")
    parser.add_argument(
        "--events", type=int, default=1_000_000, help="rows in the model (default: %(default)s)"
    )
    parser.add_argument(
        "--new-pct", type=float, default=1.0, help="rows added in case (b), in %% of N (default: %(default)s)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the project directory")
    args = parser.parse_args(argv)

    base = Path(tempfile.mkdtemp(prefix="dbt-braze-bench-events-"))
    root = base / "project"
    env = bench_env()
    info, fingerprint = machine_info(), code_fingerprint()
    new_rows = int(args.events * args.new_pct / 100)
    rows: list[tuple[str, DbtRun, DbtRun, dict[str, Any]]] = []
    emulator = Emulator(latency_ms=0.0)
    try:
        build_project(root, args.events)
        log(f"project in {root}; {args.events:,} events; case (b) adds {new_rows:,}")
        for label, added in (
            ("(a) first sync, backfill all", 0),
            (f"(b) {args.new_pct:g}% new rows", new_rows),
        ):
            variables = {"bench_new_rows": added}
            without = dbt_run(root, env, {**variables, "dbt_braze_enabled": False})
            with_pkg = dbt_run(root, env, variables)
            log(f"{label}: dbt run {with_pkg.seconds:.1f}s (hook {fmt(with_pkg.hook_seconds, '.1f')}s)")
            result = sync(root, env, emulator)
            log(f"{label}: sync {result['seconds']:.1f}s, {result['events']:,} events")
            rows.append((label, with_pkg, without, result))
    finally:
        emulator.stop()
        if args.keep:
            log(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)

    print(f"\ndbt-braze events benchmark: {args.events:,} events (kind events, backfill all), 2 properties")
    for line in info:
        print(line)
    load_at_end = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"load average at start: {LOAD_AT_START}, at end: {load_at_end}; code fingerprint {fingerprint}")
    headers = [
        "case",
        "dbt run w/ pkg (s)",
        "w/o pkg (s)",
        "of which hook (s)",
        "dbt peak RSS (MB)",
        "sync (s)",
        "events sent",
        "events/s",
        "requests",
        "sync peak RSS (MB)",
        "sync CPU (s)",
    ]
    table = [
        [
            label,
            fmt(w.seconds, ".2f"),
            fmt(wo.seconds, ".2f"),
            fmt(w.hook_seconds, ".2f"),
            fmt(w.peak_rss_mb),
            fmt(s["seconds"], ".2f"),
            fmt(s["events"]),
            fmt(s["events"] / s["seconds"] if s["seconds"] else None),
            fmt(s["requests"]),
            fmt(s["peak_rss_mb"]),
            fmt(s["cpu_seconds"], ".1f"),
        ]
        for label, w, wo, s in rows
    ]
    widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(widths[i]) if i == 0 else h.rjust(widths[i]) for i, h in enumerate(headers)))
    print("  ".join("-" * w for w in widths))
    for row in table:
        print("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)))
    (_, w, _, s) = rows[-1]
    cycle = w.seconds + s["seconds"]
    verdict = "under" if cycle < CYCLE_BUDGET_SECONDS else "OVER"
    print(
        f"(b) cycle, dbt run with the package + sync: {cycle:.1f} s "
        f"({verdict} the {CYCLE_BUDGET_SECONDS:g} s budget); "
        f"events sent in (b): {s['events']:,} of {new_rows:,} new rows"
    )
    for label, _, _, s in rows:
        report = s["report"]
        extra = {k: v for k, v in report.items() if "unknown" in k or "changed_after" in k}
        print(f"  {label}: sync report {json.dumps(extra)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
