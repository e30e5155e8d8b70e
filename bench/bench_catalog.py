"""Benchmark: a catalog kept equal to a model, `dbt run` + `dbt-braze sync` against the bundled emulator.

    .venv/bin/python bench/bench_catalog.py                  # 200,000 items
    .venv/bin/python bench/bench_catalog.py --items 5000     # smoke run

Builds a throwaway dbt project on DuckDB with one model of kind `catalog` (N items: an
id, a title, a description, a price, a stock count, a category, an in-stock flag and a
release date), creates the catalog in the emulator, then:

  (a) first sync     every item is created (POST, every field)
  (b) 1% of prices   --change-pct of the items get a new price; only those are sent (PATCH)

For each case it prints `dbt run`'s time (and the hook's), the sync's time, and the
requests and request-body bytes dbt-braze sent, measured from the emulator's request log
(the emulator runs in this process, without rate limits: the figures that matter here
are requests and bytes, not seconds).
Beside them, what a full re-upload would send for (b): every item, every field, 50 items
per request with PUT, computed from the model's rows with the same JSON encoding. It
asserts nothing. Shared machinery (measuring a process, the emulator process, dbt runs)
is bench_sync.py's.
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

import duckdb
from bench_sync import (
    API_KEY,
    LOAD_AT_START,
    REPO_ROOT,
    DbtRun,
    bench_env,
    code_fingerprint,
    dbt_run,
    fmt,
    log,
    machine_info,
    run_measured,
)

from dbt_braze.braze import MAX_CATALOG_ITEMS
from dbt_braze.emulator import ALL_PERMISSIONS, BrazeEmulator

MODEL = "bench_products"
CATALOG = "products"
FIELDS = {
    "title": "string",
    "description": "string",
    "price": "number",
    "stock": "number",
    "category": "string",
    "in_stock": "boolean",
    "released_on": "time",
}
# the request log must hold every request of a first sync (N / 50)
LOG_SIZE = 20_000


def model_sql(items: int) -> str:
    """N items; the price of --change-pct of them moves once `bench_change_pct` is set (case b)."""
    return textwrap.dedent(f"""\
        {{{{ config(materialized='table') }}}}
        select
            'sku-' || i as product_id,
            'Product ' || i as title,
            'A fine product, number ' || i || ', for every day of the year' as description,
            cast(i % 10000 as decimal(12, 2)) / 100
              + case when i % 100 < {{{{ var('bench_change_pct', 0) }}}} then 1 else 0 end as price,
            i % 500 as stock,
            ['tea', 'coffee', 'mugs', 'pots', 'gifts'][1 + i % 5] as category,
            i % 7 <> 0 as in_stock,
            date '2026-01-01' + cast(i % 365 as integer) as released_on
        from range(1, {items} + 1) t(i)
        """)


def build_project(root: Path, items: int) -> None:
    (root / "models").mkdir(parents=True)
    (root / "dbt_project.yml").write_text(
        "name: braze_catalog_bench\nversion: '1.0.0'\nconfig-version: 2\nprofile: braze_catalog_bench\n"
        "model-paths: ['models']\nflags:\n  send_anonymous_usage_stats: false\n"
    )
    (root / "profiles.yml").write_text(
        "braze_catalog_bench:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        f"      path: '{root / 'warehouse.duckdb'}'\n      threads: 1\n"
    )
    (root / "packages.yml").write_text(f"packages:\n  - local: {REPO_ROOT}\n")
    (root / "dbt_packages").mkdir()
    (root / "dbt_packages" / "dbt_braze").symlink_to(REPO_ROOT)  # what `dbt deps` does for local:
    (root / "models" / f"{MODEL}.sql").write_text(model_sql(items))
    block = {"kind": "catalog", "catalog": CATALOG, "id": "product_id", "fields": {f: f for f in FIELDS}}
    schema = {"version": 2, "models": [{"name": MODEL, "config": {"meta": {"braze": block}}}]}
    (root / "models" / "schema.yml").write_text(json.dumps(schema, indent=2))  # JSON is YAML


def encoded(items: list[dict[str, Any]]) -> int:
    """Bytes of one request body holding `items`, encoded as the client encodes them (compact)."""
    return len(json.dumps({"items": items}, separators=(",", ":"), ensure_ascii=False).encode())


def sync(root: Path, env: dict[str, str], emulator: BrazeEmulator) -> dict[str, Any]:
    """One sync; the requests and body bytes it sent, from the emulator's request log."""
    emulator.configure(requests_log_size=0)
    emulator.configure(requests_log_size=LOG_SIZE)  # emptied
    cmd = [sys.executable, "-m", "dbt_braze", "sync", "--project-dir", str(root), "--profiles-dir", str(root)]
    sync_env = {**env, "BRAZE_API_KEY": API_KEY, "BRAZE_REST_ENDPOINT": emulator.url}
    result = run_measured([*cmd, "--output", "json"], env=sync_env, cwd=root)
    if result.returncode != 0:
        raise SystemExit(
            f"sync failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    logged = [r for r in emulator.requests_log if "/catalogs/" in r.path]
    (report,) = json.loads(result.stdout)["models"]
    return {
        "seconds": result.seconds,
        "peak_rss_mb": result.peak_rss_mb,
        "requests": len(logged),
        "bytes": sum(encoded(r.body["items"]) for r in logged),
        "items": sum(len(r.body["items"]) for r in logged),
        "report": report,
    }


def full_reupload(root: Path) -> tuple[int, int]:
    """(requests, body bytes) of a PUT of every item with every field, 50 per request, as the
    JSON the sync renders would encode them (dates as YYYY-MM-DD, numbers as JSON numbers)."""
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as con:
        columns = ["product_id", *FIELDS]
        rows = con.execute(f"select {', '.join(columns)} from main.{MODEL} order by product_id").fetchall()
    requests = total = 0
    for start in range(0, len(rows), MAX_CATALOG_ITEMS):
        items = []
        for row in rows[start : start + MAX_CATALOG_ITEMS]:
            item: dict[str, Any] = {"id": row[0]}
            for name, value in zip(FIELDS, row[1:], strict=True):
                item[name] = value.isoformat() if hasattr(value, "isoformat") else value
                if hasattr(value, "as_integer_ratio") and not isinstance(value, (int, float)):
                    item[name] = float(value)  # a decimal: a JSON number
            items.append(item)
        requests += 1
        total += encoded(items)
    return requests, total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark a catalog: dbt run + dbt-braze sync on DuckDB.")
    parser.add_argument(
        "--items", type=int, default=200_000, help="items in the model (default: %(default)s)"
    )
    parser.add_argument(
        "--change-pct", type=int, default=1, help="items whose price changes in case (b), in %% (default: 1)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the project directory")
    args = parser.parse_args(argv)

    base = Path(tempfile.mkdtemp(prefix="dbt-braze-bench-catalog-"))
    root = base / "project"
    env = bench_env()
    info, fingerprint = machine_info(), code_fingerprint()
    rows: list[tuple[str, DbtRun, dict[str, Any]]] = []
    emulator = BrazeEmulator(api_keys={API_KEY: ALL_PERMISSIONS}).start()
    try:
        emulator.configure(rate_limit=None, catalog_rate_limit=None)
        emulator.create_catalog(CATALOG, FIELDS)
        build_project(root, args.items)
        log(f"project in {root}; {args.items:,} items; case (b) changes {args.change_pct}% of the prices")
        for label, pct in (
            ("(a) first sync", 0),
            (f"(b) {args.change_pct}% of prices changed", args.change_pct),
        ):
            run = dbt_run(root, env, {"bench_change_pct": pct})
            log(f"{label}: dbt run {run.seconds:.1f}s (hook {fmt(run.hook_seconds, '.1f')}s)")
            result = sync(root, env, emulator)
            log(f"{label}: sync {result['seconds']:.1f}s, {result['requests']:,} requests")
            rows.append((label, run, result))
        reupload_requests, reupload_bytes = full_reupload(root)
    finally:
        emulator.stop()
        if args.keep:
            log(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)

    print(f"\ndbt-braze catalog benchmark: {args.items:,} items, {len(FIELDS)} fields and the id")
    for line in info:
        print(line)
    load_at_end = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"load average at start: {LOAD_AT_START}, at end: {load_at_end}; code fingerprint {fingerprint}")
    headers = ["case", "dbt run (s)", "of which hook (s)", "sync (s)", "items sent", "requests", "body bytes"]
    table = [
        [
            label,
            fmt(run.seconds, ".2f"),
            fmt(run.hook_seconds, ".2f"),
            fmt(s["seconds"], ".2f"),
            fmt(s["items"]),
            fmt(s["requests"]),
            fmt(s["bytes"]),
        ]
        for label, run, s in rows
    ]
    table.append(
        [
            "full re-upload (PUT, computed)",
            "",
            "",
            "",
            fmt(args.items),
            fmt(reupload_requests),
            fmt(reupload_bytes),
        ]
    )
    widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(widths[i]) if i == 0 else h.rjust(widths[i]) for i, h in enumerate(headers)))
    print("  ".join("-" * w for w in widths))
    for row in table:
        print("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)))
    change = rows[-1][2]
    if change["requests"] and change["bytes"]:
        print(
            f"\n(b) against a full re-upload: {reupload_requests / change['requests']:,.0f}x fewer requests, "
            f"{reupload_bytes / change['bytes']:,.0f}x fewer bytes "
            f"({change['requests']:,} requests, {change['bytes']:,} bytes against "
            f"{reupload_requests:,} requests, {reupload_bytes:,} bytes)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
