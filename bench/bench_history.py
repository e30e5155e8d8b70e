"""Benchmark: the hook's cost against the history of the acknowledgement logs.

    .venv/bin/python bench/bench_history.py                        # 1,000,000 users, 60 cycles
    .venv/bin/python bench/bench_history.py --users 20000 --cycles 8
    .venv/bin/python bench/bench_history.py --before               # compaction off (as before it)

A throwaway dbt project on DuckDB (bench_sync.py's helpers) with one model of U
users and three mapped attributes. Each cycle, 30% of the users get new values of
all three (three buckets of ten, a different three each cycle), then `dbt run` and
`dbt-braze sync` against the bundled emulator. Per cycle it prints the hook's own
time as dbt records it (run_results.json), the dbt run and sync seconds, the rows
of braze_state and braze_fingerprints, their live keys, and whether the sync
compacted. `--before` runs with compaction off (DBT_BRAZE_COMPACTION_RATIO=0,
the ops switch of docs/configuration.md): the logs then grow with the history.
It prints figures; it asserts nothing. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path

import duckdb
from bench_sync import (
    API_KEY,
    LOAD_AT_START,
    REPO_ROOT,
    Emulator,
    bench_env,
    code_fingerprint,
    dbt_run,
    fmt,
    log,
    machine_info,
    run_measured,
)

MODEL = "bench_users"
BUCKETS = 10
CHURN_BUCKETS = 3  # of ten: 30% of the users change each cycle


def changed_buckets(cycle: int) -> set[int]:
    return {(CHURN_BUCKETS * cycle + k) % BUCKETS for k in range(CHURN_BUCKETS)}


def model_sql(users: int, cycle: int) -> str:
    """Each user's values are those of the last cycle its bucket changed in (0: never)."""
    last = {}
    for b in range(BUCKETS):
        last[b] = max((c for c in range(1, cycle + 1) if b in changed_buckets(c)), default=0)
    version = "case i % 10 " + " ".join(f"when {b} then {v}" for b, v in last.items()) + " end"
    return textwrap.dedent(f"""\
        {{{{ config(materialized='table') }}}}
        select i as user_id,
               'plan-' || ({version}) as plan,
               cast(i % 1000 + 1000 * ({version}) as integer) as score,
               'Name ' || i || ' v' || ({version}) as first_name
        from range(1, {users + 1}) t(i)
        """)


def build_project(root: Path, users: int) -> None:
    (root / "models").mkdir(parents=True)
    (root / "dbt_project.yml").write_text(
        "name: braze_bench\nversion: '1.0.0'\nconfig-version: 2\nprofile: braze_bench\n"
        "model-paths: ['models']\nflags:\n  send_anonymous_usage_stats: false\n"
    )
    (root / "profiles.yml").write_text(
        f"braze_bench:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        f'      path: "{root / "warehouse.duckdb"}"\n      threads: 1\n'
    )
    (root / "packages.yml").write_text(f"packages:\n  - local: {REPO_ROOT}\n")
    (root / "dbt_packages").mkdir()
    (root / "dbt_packages" / "dbt_braze").symlink_to(REPO_ROOT)
    block = {
        "external_id": "user_id",
        "attributes": {"plan": "plan", "score": "score", "first_name": "first_name"},
    }
    schema = {"version": 2, "models": [{"name": MODEL, "config": {"meta": {"braze": block}}}]}
    (root / "models" / "schema.yml").write_text(json.dumps(schema, indent=2))
    (root / "models" / f"{MODEL}.sql").write_text(model_sql(users, 0))


def sync(root: Path, env: dict[str, str], emulator: Emulator) -> tuple[float, list[str]]:
    cmd = [sys.executable, "-m", "dbt_braze", "sync", "--project-dir", str(root), "--profiles-dir", str(root)]
    sync_env = {**env, "BRAZE_API_KEY": API_KEY, "BRAZE_REST_ENDPOINT": emulator.url}
    result = run_measured([*cmd, "--output", "json", "--requests-per-second", "0"], env=sync_env, cwd=root)
    if result.returncode != 0:
        raise SystemExit(
            f"sync failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    (report,) = json.loads(result.stdout)["models"]
    return result.seconds, list(report.get("compacted") or [])


def log_sizes(db: Path) -> dict[str, int]:
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute(
            """select (select count(*) from braze_state),
                      (select count(*) from (select distinct braze_key, attribute from braze_state)),
                      (select count(*) from braze_fingerprints),
                      (select count(*) from (select distinct braze_key from braze_fingerprints))"""
        ).fetchone()
    assert row is not None
    return dict(
        zip(("state_rows", "state_keys", "fingerprint_rows", "fingerprint_keys"), map(int, row), strict=True)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark: the hook's time against the logs' history.")
    parser.add_argument(
        "--users", type=int, default=1_000_000, help="users in the model (default: %(default)s)"
    )
    parser.add_argument(
        "--cycles", type=int, default=60, help="churn cycles after the first sync (default: %(default)s)"
    )
    parser.add_argument("--before", action="store_true", help="compaction off, as before it existed")
    parser.add_argument("--keep", action="store_true", help="keep the project directory")
    args = parser.parse_args(argv)

    base = Path(tempfile.mkdtemp(prefix="dbt-braze-bench-history-"))
    root = base / "project"
    env = bench_env()
    env["DBT_BRAZE_COMPACTION_RATIO"] = "0" if args.before else env.get("DBT_BRAZE_COMPACTION_RATIO", "2")
    info, fingerprint = machine_info(), code_fingerprint()
    rows: list[list[str]] = []
    hooks: list[float] = []
    ratios: list[float] = []
    emulator = Emulator(latency_ms=0.0)
    try:
        build_project(root, args.users)
        mode = (
            "compaction OFF (before)"
            if args.before
            else f"compaction ratio {env['DBT_BRAZE_COMPACTION_RATIO']}"
        )
        log(f"project in {root}; {args.users:,} users, {args.cycles} cycles of 30% churn; {mode}")
        for cycle in range(args.cycles + 1):  # cycle 0: the first, full sync
            (root / "models" / f"{MODEL}.sql").write_text(model_sql(args.users, cycle))
            run = dbt_run(root, env, {})
            sync_seconds, compacted = sync(root, env, emulator)
            sizes = log_sizes(root / "warehouse.duckdb")
            hooks.append(run.hook_seconds or 0.0)
            ratios.append(sizes["state_rows"] / max(sizes["state_keys"], 1))
            ratios.append(sizes["fingerprint_rows"] / max(sizes["fingerprint_keys"], 1))
            row = [
                str(cycle),
                fmt(run.hook_seconds, ".2f"),
                fmt(run.seconds, ".2f"),
                fmt(sync_seconds, ".2f"),
                fmt(sizes["state_rows"]),
                fmt(sizes["state_keys"]),
                fmt(sizes["fingerprint_rows"]),
                fmt(sizes["fingerprint_keys"]),
                "+".join(compacted) or "-",
            ]
            rows.append(row)
            log("  ".join(row))
    finally:
        emulator.stop()
        if args.keep:
            log(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)

    print(
        f"\ndbt-braze history benchmark: {args.users:,} users, {args.cycles} cycles, 30% churn, 3 attributes"
    )
    print(f"mode: {mode}")
    for line in info:
        print(line)
    load_at_end = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"load average at start: {LOAD_AT_START}, at end: {load_at_end}; code fingerprint {fingerprint}")
    headers = [
        "cycle",
        "hook (s)",
        "dbt run (s)",
        "sync (s)",
        "state rows",
        "state keys",
        "fp rows",
        "fp keys",
        "compacted",
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(h.rjust(widths[i]) for i, h in enumerate(headers)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.rjust(widths[i]) for i, c in enumerate(row)))
    if len(hooks) > 2:
        # cycle 0 is the first sync (every user new) and cycle 1 the first churn: compare
        # the last cycle with the second churn cycle
        print(
            f"\nhook: last cycle {hooks[-1]:.2f}s, second cycle {hooks[2]:.2f}s "
            f"({hooks[-1] / hooks[2]:.2f}x); largest log rows per key after a sync: {max(ratios):.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
