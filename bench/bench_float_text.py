"""Benchmark: DuckDB's normalized text of floats (PostgreSQL's, macros/duckdb_floats.sql)
against a plain `cast(x as varchar)`.

    .venv/bin/python bench/bench_float_text.py                  # 1,000,000 values per set, 1 thread
    .venv/bin/python bench/bench_float_text.py --rows 100000 --threads 4

Renders `braze_normalized_text('x', 'number')` through dbt (a throwaway
project with the package installed as a `local:` package does: a symlink),
then times `select sum(length(<text>)) from <set>` in an in-memory DuckDB,
best of --repeat, CPU time of the process (DuckDB's threads included), for
each set of values:

  money        round(random() * 10000, 2): prices, scores (DOUBLE)
  unit         random(): 16-17 digits in [0, 1)
  magnitudes   +-random() * 10^k, k uniform in [-20, 20)
  bit patterns random 64-bit patterns: every magnitude, half of them >= 2^53
  floats       the magnitudes as FLOAT (float4)

and the time DuckDB takes to bind and plan the text of one column (a query
over one row). Then the cost in a whole `dbt run`: a model of --wide double
columns (1,000 rows) mapped to Braze, run twice (the second finds nothing
changed), against the same model with DECIMAL columns, whose text is a plain
cast. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import random
import struct
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import duckdb

REPO_ROOT = Path(__file__).resolve().parents[1]

SETS = {
    "money": "select cast(round(random() * 10000, 2) as double) as x from range({rows})",
    "unit": "select random() as x from range({rows})",
    "magnitudes": "select {magnitude} as x from range({rows})",
    "bit patterns": None,  # built in Python
    "floats": "select cast({magnitude} as float) as x from range({rows})",
}
MAGNITUDE = "(random() * 2 - 1) * pow(10, floor(random() * 40 - 20))"


def write_project(root: Path) -> None:
    """A throwaway dbt project on DuckDB with the package installed (a symlink, as `local:` does)."""
    (root / "models").mkdir()
    (root / "dbt_project.yml").write_text(
        textwrap.dedent("""\
            name: bench_float_text
            version: "1.0.0"
            config-version: 2
            profile: bench_float_text
            model-paths: ["models"]
            flags:
              send_anonymous_usage_stats: false
            """)
    )
    (root / "profiles.yml").write_text(
        "bench_float_text:\n  target: dev\n  outputs:\n    dev:\n"
        f"      type: duckdb\n      path: {root / 'bench.duckdb'}\n      threads: 1\n"
    )
    (root / "dbt_packages").mkdir()
    (root / "dbt_packages" / "dbt_braze").symlink_to(REPO_ROOT)
    os.environ["DO_NOT_TRACK"] = "1"


def compiled_text_sql() -> str:
    """The SQL the package renders for a `number` attribute of column x, on DuckDB."""
    from dbt.cli.main import dbtRunner

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_project(root)
        inline = "select {{ dbt_braze.braze_normalized_text('x', 'number') }} as t from vals"
        dirs = ["--project-dir", str(root), "--profiles-dir", str(root)]
        with contextlib.redirect_stdout(io.StringIO()), contextlib.chdir(root):
            result = dbtRunner().invoke(["compile", "--quiet", "--inline", inline, *dirs])
        if not result.success:
            raise SystemExit(f"dbt compile failed: {result.exception}")
        sql: str = result.result.results[0].node.compiled_code
    return sql[len("select ") : sql.rindex(" as t from vals")].strip()


def wide_model_runs(columns: int, column_type: str) -> tuple[float, float]:
    """Wall seconds of two `dbt run`s of a model of `columns` columns of
    `column_type` (1,000 rows), every column mapped to a Braze attribute."""
    from dbt.cli.main import dbtRunner

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_project(root)
        values = ", ".join(f"cast(i * 1.5 + {c} as {column_type}) as c{c}" for c in range(columns))
        (root / "models" / "wide.sql").write_text(f"select i as user_id, {values} from range(1000) t(i)")
        attributes = "".join(f"\n              c{c}: a{c}" for c in range(columns))
        (root / "models" / "schema.yml").write_text(
            "version: 2\nmodels:\n  - name: wide\n    config:\n      meta:\n        braze:\n"
            f"          external_id: user_id\n          attributes:{attributes}\n"
        )
        dirs = ["--project-dir", str(root), "--profiles-dir", str(root)]
        seconds = []
        for _ in range(2):
            started = time.monotonic()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.chdir(root):
                result = dbtRunner().invoke(["run", "--quiet", *dirs])
            if not result.success:
                raise SystemExit(f"dbt run failed: {result.exception}")
            seconds.append(time.monotonic() - started)
    return seconds[0], seconds[1]


def bit_patterns(rows: int) -> list[float]:
    rng = random.Random(7)
    return [struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0] for _ in range(rows)]


def best_cpu_seconds(conn: duckdb.DuckDBPyConnection, sql: str, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        conn.execute(sql).fetchall()
        best = min(best, time.process_time() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--wide", type=int, default=40, help="columns of the whole-run model (0: skip)")
    args = parser.parse_args()

    text = compiled_text_sql()
    conn = duckdb.connect()
    conn.execute(f"set threads = {args.threads}")
    for name, sql in SETS.items():
        table = name.replace(" ", "_")
        if sql is None:
            conn.execute(
                f"create table {table} as select unnest(cast(? as double[])) as x", [bit_patterns(args.rows)]
            )
        else:
            conn.execute(f"create table {table} as {sql.format(rows=args.rows, magnitude=MAGNITUDE)}")
    conn.execute("create table one_row as select 0.1 as x")

    print(
        f"duckdb {duckdb.__version__}, python {platform.python_version()}, {platform.machine()}, "
        f"{args.threads} thread(s), {args.rows:,} values per set, best of {args.repeat} (CPU time)"
    )
    with contextlib.suppress(OSError):
        print(f"load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    print(f"rendered text: {len(text):,} characters")
    print(f"\n{'set':<14}{'cast s':>9}{'text s':>9}{'cast us':>9}{'text us':>9}{'ratio':>8}")
    for name in SETS:
        table = name.replace(" ", "_")
        plain = best_cpu_seconds(conn, f"select sum(length(cast(x as varchar))) from {table}", args.repeat)
        ours = best_cpu_seconds(conn, f"select sum(length({text})) from {table}", args.repeat)
        per = 1e6 / args.rows
        print(f"{name:<14}{plain:9.2f}{ours:9.2f}{plain * per:9.2f}{ours * per:9.2f}{ours / plain:8.1f}")
    bind = best_cpu_seconds(conn, f"select {text} from one_row", max(args.repeat, 5))
    print(f"\nbind and plan, one column, one row: {bind * 1000:.0f} ms")
    if args.wide:
        print(f"\ndbt run, model of {args.wide} columns x 1,000 rows (wall s)")
        print(f"{'columns':<16}{'first':>8}{'nothing changed':>17}")
        for column_type in ("double", "decimal(18,6)"):
            first, second = wide_model_runs(args.wide, column_type)
            print(f"{column_type:<16}{first:8.1f}{second:17.1f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
