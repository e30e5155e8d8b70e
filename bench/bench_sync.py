"""Benchmark: `dbt run` + `dbt-braze sync` against the bundled Braze emulator.

    .venv/bin/python bench/bench_sync.py                      # 1,000,000 users, fast + latency
    .venv/bin/python bench/bench_sync.py --users 20000        # smoke run, well under a minute

Builds a throwaway dbt project on DuckDB (package installed as `dbt deps`
does for a `local:` package: a symlink), with one model of N users and ten
mapped attributes of mixed types, then measures three cases:

  (a) first full sync      every user is new
  (b) no changes           the model is rebuilt identical
  (c) 1% changed           one attribute changes for 1% of the users

For each case: `dbt run` with the package (its on-run-end hook computes the
diff) and without it (`--vars {dbt_braze_enabled: false}`), then
`dbt-braze sync` as a subprocess against the emulator, once per emulator mode
(fast: sink, no rate limit, no latency; latency: sink + N ms per request).
The dbt runs do not depend on the emulator, so they are done once per case
and the warehouse file is snapshotted before the syncs and restored for each
further mode. A hand-written full-resend script (baseline_full_resend.py)
runs in each mode for comparison.

It prints figures; it asserts nothing about timing. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = Path(__file__).resolve().parent
BIN_DIR = Path(sys.executable).parent
API_KEY = "bench-key-8c1d"
MODEL = "bench_users"
ID_COLUMN = "user_id"
# model column -> Braze attribute (10 attributes, mixed types)
ATTRIBUTES = {
    "email": "email",  # string
    "first_name": "first_name",  # string
    "plan": "plan_tier",  # string: the one that changes in case (c)
    "score": "score",  # integer
    "ltv": "ltv",  # decimal(12, 2)
    "engagement": "engagement",  # double
    "is_vip": "vip",  # boolean
    "signed_up_on": "signed_up_on",  # date
    "last_seen_at": "last_seen_at",  # timestamp
    "referrer": "referrer",  # nullable string (null for 1 user in 3)
}
CASES = [
    ("a", "(a) first full sync", 0),
    ("b", "(b) no changes", 0),
    ("c", "(c) {pct:g}% changed, 1 attr", None),  # pct filled from --change-pct
]

_T0 = time.perf_counter()
try:
    LOAD_AT_START = " ".join(Path("/proc/loadavg").read_text().split()[:3])
except OSError:
    LOAD_AT_START = "?"


def log(message: str) -> None:
    print(f"[{time.perf_counter() - _T0:7.1f}s] {message}", file=sys.stderr, flush=True)


# -- running and measuring a subprocess -----------------------------------------


@dataclass
class Measured:
    seconds: float
    returncode: int
    stdout: str
    stderr: str
    peak_rss_mb: float | None
    cpu_seconds: float | None


class _HwmPoller:
    """Polls /proc/<pid>/status VmHWM (peak RSS) until the process exits."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid, self.interval, self.peak_kb = pid, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        path = f"/proc/{self.pid}/status"
        while not self._stop.is_set():
            try:
                with open(path) as handle:
                    for line in handle:
                        if line.startswith("VmHWM:"):
                            self.peak_kb = max(self.peak_kb, int(line.split()[1]))
                            break
            except (OSError, ValueError):
                return
            self._stop.wait(self.interval)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak_kb


def run_measured(cmd: list[str], *, env: dict[str, str], cwd: Path, timeout: float | None = None) -> Measured:
    """Run `cmd`, timing it and measuring its peak RSS and CPU time.

    Peak RSS: the larger of the kernel's own figure for this child (wait4's
    ru_maxrss) and a /proc/<pid>/status VmHWM poller; CPU: user + system
    from wait4. stdout/stderr go to temp files, not pipes, so nothing blocks.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=err)
        poller = _HwmPoller(proc.pid) if Path(f"/proc/{proc.pid}").exists() else None
        rusage = None
        if hasattr(os, "wait4") and timeout is None:
            _, status, rusage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
        else:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        seconds = time.perf_counter() - started
        hwm_kb = poller.stop() if poller else 0
        peak_kb = max(hwm_kb, rusage.ru_maxrss if rusage else 0)
        out.seek(0)
        err.seek(0)
        return Measured(
            seconds=seconds,
            returncode=proc.returncode,
            stdout=out.read(),
            stderr=err.read(),
            peak_rss_mb=peak_kb / 1024 if peak_kb else None,
            cpu_seconds=(rusage.ru_utime + rusage.ru_stime) if rusage else None,
        )


# -- the emulator -----------------------------------------------------------------


def _http(url: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method="GET" if body is None else "POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


class _ServerProcess:
    """A server in a process of its own, so that it shares no GIL with anything."""

    proc: subprocess.Popen[str]

    def cpu_seconds(self) -> float | None:
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def _listen(self, cmd: list[str], prefix: str) -> str:
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # its one line: `<prefix><url>`
        if not line.startswith(prefix):
            self.proc.kill()
            raise RuntimeError(f"{cmd[1]} did not start: {line!r}")
        return line[len(prefix) :].strip()


class NullSink(_ServerProcess):
    """bench/null_sink.py: answers every request 201 success without reading the body's JSON,
    so a sync against it measures the client alone (its ceiling). It counts requests only:
    objects are the sync's own count (`--output json`)."""

    def __init__(self) -> None:
        self.url = self._listen([sys.executable, str(BENCH_DIR / "null_sink.py")], "null sink listening on ")
        self._base = 0

    def _count(self) -> int:
        return int(_http(self.url + "/_sink/stats")["requests"])

    def reset(self) -> None:
        self._base = self._count()

    def stats(self) -> dict[str, Any]:
        return {"track_requests": self._count() - self._base}


class Emulator(_ServerProcess):
    """The bundled emulator in a process of its own, so that it shares no GIL with anything."""

    def __init__(self, *, latency_ms: float) -> None:
        self.latency_ms = latency_ms
        cmd = [
            sys.executable,
            "-m",
            "dbt_braze.emulator",
            "--port",
            "0",
            "--api-key",
            API_KEY,
            "--rate-limit",
            "0",
            "--sink",
            "--latency-ms",
            str(latency_ms),
        ]
        self.url = self._listen(cmd, "braze emulator listening on ")
        self.where = "separate process"
        # the request log is for debugging; keep it out of the way
        _http(self.url + "/_emulator/config", {"requests_log_size": 0})

    def reset(self) -> None:
        _http(self.url + "/_emulator/reset", {})

    def stats(self) -> dict[str, Any]:
        return _http(self.url + "/_emulator/stats")


# -- the dbt project ---------------------------------------------------------------


def model_sql(users: int, groups: int = 0) -> str:
    # subscription group k: subscribed for two users in three, flipped for the changed share
    states = "".join(
        f",\n    ((i + {k}) % 3 <> 0) <> (i % 100 < {{{{ var('bench_change_pct', 0) }}}}) as sg_{k}"
        for k in range(groups)
    )
    return textwrap.dedent(f"""\
        {{{{ config(materialized='table') }}}}
        select
            i as user_id,
            'user' || i || '@example.com' as email,
            'Name ' || i as first_name,
            case when i % 100 < {{{{ var('bench_change_pct', 0) }}}} then 'changed' else 'same' end as plan,
            cast(i % 1000 as integer) as score,
            cast(i * 1.25 as decimal(12, 2)) as ltv,
            cast(i % 17 as double) / 8 as engagement,
            (i % 2 = 0) as is_vip,
            date '2020-01-01' + cast(i % 2000 as integer) as signed_up_on,
            timestamp '2024-01-01 00:00:00' + to_seconds(i) as last_seen_at,
            case when i % 3 = 0 then null else 'ref-' || (i % 50) end as referrer{states}
        from range(1, {users + 1}) t(i)
        """)


def group_id(k: int) -> str:
    return f"00000000-0000-4000-8000-{k:012d}"


def braze_block(identifier: str, groups: int) -> dict[str, Any]:
    """The model's braze meta block: keyed by external_id (user_id) or email; an e-mail
    identifier cannot also be mapped as an attribute."""
    key = {"external_id": ID_COLUMN} if identifier == "external_id" else {"email": "email"}
    attributes = {c: a for c, a in ATTRIBUTES.items() if identifier == "external_id" or a != "email"}
    block: dict[str, Any] = {**key, "mode": "upsert", "on_removed": "ignore", "attributes": attributes}
    if groups:
        block["subscription_groups"] = {f"sg_{k}": group_id(k) for k in range(groups)}
    return block


def build_project(root: Path, users: int, identifier: str = "external_id", groups: int = 0) -> None:
    (root / "models").mkdir(parents=True)
    (root / "dbt_project.yml").write_text(
        textwrap.dedent("""\
        name: braze_bench
        version: "1.0.0"
        config-version: 2
        profile: braze_bench
        model-paths: ["models"]
        flags:
          send_anonymous_usage_stats: false
        """)
    )
    (root / "profiles.yml").write_text(
        textwrap.dedent(f"""\
        braze_bench:
          target: dev
          outputs:
            dev:
              type: duckdb
              path: "{root / "warehouse.duckdb"}"
              threads: 1
        """)
    )
    (root / "packages.yml").write_text(f"packages:\n  - local: {REPO_ROOT}\n")
    (root / "dbt_packages").mkdir()
    (root / "dbt_packages" / "dbt_braze").symlink_to(REPO_ROOT)  # what `dbt deps` does for local:
    (root / "models" / f"{MODEL}.sql").write_text(model_sql(users, groups))
    schema = {
        "version": 2,
        "models": [
            {
                "name": MODEL,
                "config": {"meta": {"braze": braze_block(identifier, groups)}},
            }
        ],
    }
    (root / "models" / "schema.yml").write_text(json.dumps(schema, indent=2))  # JSON is YAML


def dbt_executable() -> str:
    candidate = BIN_DIR / "dbt"
    return str(candidate) if candidate.exists() else (shutil.which("dbt") or "dbt")


@dataclass
class DbtRun:
    seconds: float
    model_seconds: float | None
    hook_seconds: float | None
    peak_rss_mb: float | None
    hook_log: str = ""


def dbt_parse(root: Path, env: dict[str, str], variables: dict[str, Any] | None = None) -> float:
    """`dbt parse` (not counted): the next `dbt run` with the same vars then parses as an
    hourly job's does, partially. Different vars force a full re-parse (~4 s here), which
    the bench's alternating runs (with and without the package, a change share per case)
    would otherwise pay on every run and a scheduled job never does."""
    cmd = [dbt_executable(), "parse", "--project-dir", str(root), "--profiles-dir", str(root)]
    if variables is not None:
        cmd += ["--vars", json.dumps(variables)]
    result = run_measured(cmd, env=env, cwd=root)
    if result.returncode != 0:
        raise SystemExit(f"dbt parse failed ({result.returncode}):\n{result.stdout[-4000:]}")
    return result.seconds


def dbt_run(root: Path, env: dict[str, str], variables: dict[str, Any]) -> DbtRun:
    cmd = [
        dbt_executable(),
        "run",
        "--project-dir",
        str(root),
        "--profiles-dir",
        str(root),
        "--vars",
        json.dumps(variables),
    ]
    result = run_measured(cmd, env=env, cwd=root)
    if result.returncode != 0:
        raise SystemExit(
            f"dbt run failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}"
        )
    # run_results.json lists the model and, as an `operation.dbt_braze.*on-run-end*`
    # result, the package's hook (its work happens while the hook is rendered).
    model_seconds = hook_seconds = None
    try:
        run_results = json.loads((root / "target" / "run_results.json").read_text())
        results = run_results.get("results", [])
        model_seconds = sum(
            r.get("execution_time") or 0 for r in results if str(r.get("unique_id")).startswith("model.")
        )
        hooks = [r for r in results if "dbt_braze-on-run-end" in str(r.get("unique_id"))]
        hook_seconds = sum(r.get("execution_time") or 0 for r in hooks) if hooks else None
    except (OSError, ValueError):
        pass
    hook_log = " | ".join(
        line.split("dbt_braze: ", 1)[1].strip()
        for line in result.stdout.splitlines()
        if "dbt_braze: " in line
    )
    return DbtRun(result.seconds, model_seconds, hook_seconds, result.peak_rss_mb, hook_log)


# -- one measured sync -------------------------------------------------------------


@dataclass
class SyncRun:
    label: str
    seconds: float
    objects: int
    requests: int
    data_points: int
    peak_rss_mb: float | None
    cpu_seconds: float | None
    emulator_cpu_seconds: float | None
    max_concurrent: int
    statuses: dict[str, int]
    reported: dict[str, int] = field(default_factory=dict)
    overlaps: int = 0
    engine_seconds: float | None = None  # from the run history the sync writes, if any
    subscription_changes: int = 0  # group states Braze received: no data points

    @property
    def objects_per_second(self) -> float | None:
        return self.objects / self.seconds if self.objects and self.seconds > 0 else None


def measured_against(
    emulator: Emulator | NullSink, label: str, cmd: list[str], env: dict[str, str], cwd: Path
) -> tuple[SyncRun, Measured]:
    emulator.reset()
    cpu_before = emulator.cpu_seconds()
    result = run_measured(cmd, env=env, cwd=cwd)
    cpu_after = emulator.cpu_seconds()
    stats = emulator.stats()
    run = SyncRun(
        label=label,
        seconds=result.seconds,
        objects=int(stats.get("objects_accepted", 0)),
        requests=int(stats.get("track_requests", 0)),
        data_points=int(stats.get("data_points", 0)),
        peak_rss_mb=result.peak_rss_mb,
        cpu_seconds=result.cpu_seconds,
        emulator_cpu_seconds=None if cpu_before is None or cpu_after is None else cpu_after - cpu_before,
        max_concurrent=int(stats.get("max_concurrent_requests", 0)),
        statuses={str(k): v for k, v in (stats.get("status_counts") or {}).items()},
        overlaps=int(stats.get("same_user_overlaps", 0)),
        subscription_changes=int(stats.get("subscription_changes", 0)),
    )
    return run, result


def parse_sync_report(text: str) -> dict[str, int]:
    """Totals over the models of the document `dbt-braze sync --output json` prints; empty when
    there is none (a command stopped by an error prints no document)."""
    try:
        models = json.loads(text)["models"]
    except (ValueError, KeyError, TypeError):
        return {}
    return {
        name: sum(int(model.get(key) or 0) for model in models)
        for name, key in (
            ("requests", "requests"),
            ("data_points", "data_points"),
            ("created", "users_created"),
            ("updated", "users_updated"),
            ("subscription_changes", "subscription_changes"),
            ("subscribes_withheld", "subscribes_withheld"),
        )
    }


def _run_history(db: Path) -> dict[str, float | None]:
    """run_id -> seconds from its start to its end, from the run history table the
    sync keeps in the warehouse (best effort: empty if there is no such table)."""
    try:
        import duckdb

        with duckdb.connect(str(db), read_only=True) as conn:
            rows = conn.execute(
                "select run_id, epoch(max(ended_at)) - epoch(min(started_at)) "
                "from main.braze_sync_runs group by run_id"
            ).fetchall()
        return {str(run_id): None if seconds is None else float(seconds) for run_id, seconds in rows}
    except Exception:
        return {}


def engine_seconds(db: Path, before: dict[str, float | None]) -> float | None:
    """Start-to-end time of the sync run(s) recorded since `before`. The rest of
    the sync's wall time is process start-up: imports, manifest, dbt adapter."""
    new = [s for run_id, s in _run_history(db).items() if run_id not in before]
    if not new or any(s is None for s in new):
        return None
    return sum(s for s in new if s is not None)


def sync_flags(concurrency: int | None, max_rps: float | None) -> list[str]:
    flags = ["--output", "json"]
    if concurrency is not None:
        flags += ["--concurrency", str(concurrency)]
    if max_rps is not None:
        flags += ["--requests-per-second", f"{max_rps:g}"]
    return flags


def run_sync(
    emulator: Emulator | NullSink, label: str, root: Path, env: dict[str, str], flags: list[str]
) -> SyncRun:
    cmd = [
        sys.executable,
        "-m",
        "dbt_braze",
        "sync",
        "--project-dir",
        str(root),
        "--profiles-dir",
        str(root),
        *flags,
    ]
    sync_env = {**env, "BRAZE_API_KEY": API_KEY, "BRAZE_REST_ENDPOINT": emulator.url}
    history = _run_history(root / "warehouse.duckdb")
    run, result = measured_against(emulator, label, cmd, sync_env, root)
    run.reported = parse_sync_report(result.stdout)
    if isinstance(emulator, NullSink):  # it counts no objects: the sync's own count
        run.objects = run.reported.get("created", 0) + run.reported.get("updated", 0)
    run.engine_seconds = engine_seconds(root / "warehouse.duckdb", history)
    if result.returncode != 0:
        log(f"  !! dbt-braze sync exited {result.returncode} after {result.seconds:.1f}s")
        log("  stdout tail: " + result.stdout[-1500:].replace("\n", "\n      "))
        log("  stderr tail: " + result.stderr[-3000:].replace("\n", "\n      "))
        run.label += f" [exit {result.returncode}]"
    return run


def run_baseline(
    emulator: Emulator | NullSink, root: Path, env: dict[str, str], limit: int | None
) -> SyncRun:
    cmd = [
        sys.executable,
        str(BENCH_DIR / "baseline_full_resend.py"),
        "--db",
        str(root / "warehouse.duckdb"),
        "--table",
        f"main.{MODEL}",
        "--id-column",
        ID_COLUMN,
    ]
    for column, attribute in ATTRIBUTES.items():
        cmd += ["--map", f"{column}={attribute}"]
    if limit:
        cmd += ["--limit", str(limit)]
    base_env = {**env, "BRAZE_API_KEY": API_KEY, "BRAZE_REST_ENDPOINT": emulator.url}
    run, result = measured_against(emulator, "baseline full resend", cmd, base_env, root)
    if isinstance(emulator, NullSink):  # it counts no objects: the baseline's own count
        with contextlib.suppress(ValueError, IndexError, KeyError):
            run.objects = int(json.loads(result.stdout.strip().splitlines()[-1])["objects_sent"])
    if result.returncode != 0:
        log(f"  !! baseline exited {result.returncode}: {result.stderr[-2000:]}")
        run.label += f" [exit {result.returncode}]"
    return run


# -- printing ----------------------------------------------------------------------


def fmt(value: float | int | None, spec: str = ",.0f") -> str:
    if value is None:
        return "-"
    return format(value, spec)


def code_fingerprint() -> str:
    """A hash of the code the benchmark exercises (dbt_braze/ and macros/ as on
    disk), to tell when someone changed it while the benchmark ran."""
    import hashlib

    digest = hashlib.sha1()
    for path in sorted([*(REPO_ROOT / "dbt_braze").rglob("*.py"), *(REPO_ROOT / "macros").rglob("*.sql")]):
        digest.update(str(path.relative_to(REPO_ROOT)).encode())
        with contextlib.suppress(OSError):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def machine_info() -> list[str]:
    cpu_model = "?"
    mem = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GB"
                break
    except OSError:
        pass

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    try:
        rev = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--", "dbt_braze", "macros"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        rev += " (+ uncommitted changes in dbt_braze/ or macros/)" if dirty else ""
    except OSError:
        rev = "?"
    return [
        f"machine: {os.cpu_count()} cores ({cpu_model}), {mem} RAM, {platform.platform()}",
        f"python {platform.python_version()}; dbt-core {version('dbt-core')}, "
        f"dbt-duckdb {version('dbt-duckdb')}, duckdb {version('duckdb')}, urllib3 {version('urllib3')}; "
        f"dbt-braze {version('dbt-braze')} at {rev}, code fingerprint {code_fingerprint()}",
    ]


def print_mode_table(
    title: str,
    rows: list[tuple[str, DbtRun, DbtRun, SyncRun]],
    baseline: SyncRun | None,
    change_pct: float,
    users: int,
) -> None:
    headers = [
        "case",
        "dbt run w/ pkg (s)",
        "w/o pkg (s)",
        "of which hook (s)",
        "sync (s)",
        "of which engine (s)",
        "objects/s",
        "requests",
        "data points",
        "peak RSS (MB)",
        "sync CPU (s)",
        "emu CPU (s)",
    ]
    table: list[list[str]] = []
    for label, with_pkg, without_pkg, sync in rows:
        table.append(
            [
                label,
                fmt(with_pkg.seconds, ".2f"),
                fmt(without_pkg.seconds, ".2f"),
                fmt(with_pkg.hook_seconds, ".2f"),
                fmt(sync.seconds, ".2f"),
                fmt(sync.engine_seconds, ".2f"),
                fmt(sync.objects_per_second),
                fmt(sync.requests),
                fmt(sync.data_points),
                fmt(sync.peak_rss_mb, ".0f"),
                fmt(sync.cpu_seconds, ".1f"),
                fmt(sync.emulator_cpu_seconds, ".1f"),
            ]
        )
    if baseline is not None:
        table.append(
            [
                baseline.label,
                "",
                "",
                "",
                fmt(baseline.seconds, ".2f"),
                "",
                fmt(baseline.objects_per_second),
                fmt(baseline.requests),
                fmt(baseline.data_points),
                fmt(baseline.peak_rss_mb, ".0f"),
                fmt(baseline.cpu_seconds, ".1f"),
                fmt(baseline.emulator_cpu_seconds, ".1f"),
            ]
        )
    widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(headers)]
    print()
    print(title)
    print("  ".join(h.ljust(widths[0]) if i == 0 else h.rjust(widths[i]) for i, h in enumerate(headers)))
    print("  ".join("-" * w for w in widths))
    for row in table:
        print("  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)))

    by_case = {label[:3]: (w, wo, s) for label, w, wo, s in rows}
    notes: list[str] = []
    for label, _, _, sync in rows:
        extra = []
        if sync.max_concurrent:
            extra.append(f"max {sync.max_concurrent} concurrent requests")
        if sync.overlaps:
            extra.append(f"{sync.overlaps} SAME-USER OVERLAPS")
        bad = {k: v for k, v in sync.statuses.items() if not k.startswith("2")}
        if bad:
            extra.append(f"non-2xx: {bad}")
        rep = sync.reported
        if rep and (rep.get("requests") != sync.requests or rep.get("data_points") != sync.data_points):
            extra.append(f"sync reported requests={rep.get('requests')} data points={rep.get('data_points')}")
        if rep.get("subscription_changes") or rep.get("subscribes_withheld") or sync.subscription_changes:
            extra.append(
                f"subscription changes {sync.subscription_changes:,} received by the emulator "
                f"({rep.get('subscription_changes', 0):,} reported), no data points; "
                f"{rep.get('subscribes_withheld', 0):,} subscribes withheld (unsubscribe_only)"
            )
        if extra:
            notes.append(f"  {label[:3]} " + "; ".join(extra))
    if baseline is not None and baseline.max_concurrent:
        notes.append(f"  baseline: max {baseline.max_concurrent} concurrent requests")
    if notes:
        print("notes:")
        print("\n".join(notes))
    if baseline is None:
        return
    # a baseline run on the first rows only (latency mode): per-row cost is constant, so scale
    scale = users / baseline.objects if 0 < baseline.objects < users else 1.0
    baseline_points = baseline.data_points * scale
    baseline_seconds = baseline.seconds * scale
    scaled = ""
    if scale != 1.0:
        scaled = f"; it sent the first {fmt(baseline.objects)} rows, time and data points scaled x{scale:.1f}"
    print(
        f"baseline: resends all {fmt(baseline.objects * scale)} users x {len(ATTRIBUTES)} attributes "
        f"every run, so its figures are the same for (a), (b) and (c){scaled}"
    )

    def ratio(a: float | None, b: float | None, spec: str = ".2f") -> str:
        if a is None or b is None:
            return "-"
        if b == 0:
            return "inf"
        return format(a / b, spec) + "x"

    for key in ("(a)", "(b)", "(c)"):
        if key not in by_case:
            continue
        with_pkg, without_pkg, sync = by_case[key]
        hook = with_pkg.hook_seconds
        if hook is None:
            hook = with_pkg.seconds - without_pkg.seconds
        print(
            f"{key} data points baseline / dbt-braze: {ratio(baseline_points, sync.data_points)}"
            f" ({fmt(baseline_points)} vs {fmt(sync.data_points)});"
            f" time to deliver: baseline {baseline_seconds:.1f}s"
            f" vs dbt-braze hook {hook:+.1f}s + sync {sync.seconds:.1f}s"
            f" = {hook + sync.seconds:.1f}s"
        )
    if "(a)" in by_case:
        sync = by_case["(a)"][2]
        print(
            f"throughput (a) dbt-braze objects/s / baseline objects/s: "
            f"{ratio(sync.objects_per_second, baseline.objects_per_second)}"
            f" ({fmt(sync.objects_per_second)} vs {fmt(baseline.objects_per_second)})"
        )


# -- main ----------------------------------------------------------------------------


def bench_env() -> dict[str, str]:
    """The benchmark's commands' environment: no tracking, and none of the caller's Braze or
    dbt settings (the project, its profile and the emulator are the benchmark's own)."""
    env = {**os.environ, "DO_NOT_TRACK": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    for name in ("BRAZE_API_KEY", "BRAZE_REST_ENDPOINT", "DBT_TARGET_PATH", "DBT_PROFILES_DIR"):
        env.pop(name, None)
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Benchmark dbt run + dbt-braze sync on DuckDB against the emulator."
    )
    parser.add_argument(
        "--users", type=int, default=1_000_000, help="rows in the model (default: %(default)s)"
    )
    parser.add_argument(
        "--modes", default="fast,latency", help="comma list of fast, latency (default: %(default)s)"
    )
    parser.add_argument(
        "--latency-ms", type=float, default=50.0, help="per request in latency mode (default: %(default)s)"
    )
    parser.add_argument(
        "--change-pct",
        type=float,
        default=1.0,
        help="share of users changed in case (c) (default: %(default)s)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="passed to `dbt-braze sync --concurrency` if given (default: the sync's own default)",
    )
    parser.add_argument(
        "--max-rps",
        type=float,
        default=0.0,
        help="passed as --requests-per-second: the client-side cap; 0 (default) = none, to "
        "measure the client's own ceiling",
    )
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the hand-written full-resend baseline"
    )
    parser.add_argument(
        "--baseline-rows-latency",
        type=int,
        default=100_000,
        help="in latency mode the sequential baseline sends only this many rows (at ~1,500 objects/s, "
        "a million would take 11 minutes); its time and data points are scaled to all users "
        "(default: %(default)s; 0 = all)",
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where to build the project (default: a temp dir)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the project directory")
    parser.add_argument(
        "--no-ceiling",
        action="store_true",
        help="skip the ceiling: case (a) synced again against bench/null_sink.py, a sink that does no work",
    )
    parser.add_argument(
        "--identifier",
        choices=("external_id", "email"),
        default="external_id",
        help="what the model is keyed by (default: %(default)s); with email, the email column is the "
        "identifier and not an attribute, and there is no baseline (it sends by external_id)",
    )
    parser.add_argument(
        "--subscription-groups",
        type=int,
        default=0,
        help="subscription group columns to map (default: %(default)s): each subscribed for two "
        "users in three, flipped for the changed share in case (c), under unsubscribe_only",
    )
    args = parser.parse_args(argv)
    if args.identifier != "external_id":
        args.no_baseline = True

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for mode in modes:
        if mode not in ("fast", "latency"):
            parser.error(f"unknown mode {mode!r}")
    latency = {"fast": 0.0, "latency": args.latency_ms}

    base = args.workdir or Path(tempfile.mkdtemp(prefix="dbt-braze-bench-"))
    root = base / "project"
    if root.exists():
        parser.error(f"{root} already exists")
    env = bench_env()

    flags = sync_flags(args.concurrency, args.max_rps)
    info = machine_info()  # at the start: the code measured is the code as it was then
    fingerprint = code_fingerprint()
    emulators: dict[str, Emulator] = {}
    results: dict[str, list[tuple[str, DbtRun, DbtRun, SyncRun]]] = {m: [] for m in modes}
    baselines: dict[str, SyncRun] = {}
    ceiling: dict[str, SyncRun] = {}  # "sync" and "baseline" against the null sink
    null_sink: NullSink | None = None
    hook_logs: list[str] = []
    try:
        build_project(root, args.users, args.identifier, args.subscription_groups)
        log(
            f"project in {root}; {args.users:,} users keyed by {args.identifier}, "
            f"{args.subscription_groups} subscription groups; modes {modes}; sync flags {flags}"
        )
        for mode in modes:
            emulators[mode] = Emulator(latency_ms=latency[mode])
            log(
                f"emulator {mode}: {emulators[mode].url} ({emulators[mode].where}, sink, no rate limit, "
                f"latency {latency[mode]:g} ms)"
            )
        if not args.no_ceiling:
            null_sink = NullSink()
            log(f"null sink: {null_sink.url} (separate process, answers every request, does no work)")
        log(f"warm-up dbt parse: {dbt_parse(root, env):.1f}s (not counted)")

        db = root / "warehouse.duckdb"
        snapshot = base / "snapshot.duckdb"
        for key, template, pct in CASES:
            pct = args.change_pct if pct is None else pct
            label = template.format(pct=args.change_pct)
            # each run after a parse with its own vars: as a scheduled job's, partially parsed
            without_vars = {"dbt_braze_enabled": False, "bench_change_pct": pct}
            dbt_parse(root, env, without_vars)
            without_pkg = dbt_run(root, env, without_vars)
            log(
                f"{label}: dbt run without package {without_pkg.seconds:.1f}s "
                f"(model {fmt(without_pkg.model_seconds, '.1f')}s)"
            )
            dbt_parse(root, env, {"bench_change_pct": pct})
            with_pkg = dbt_run(root, env, {"bench_change_pct": pct})
            log(
                f"{label}: dbt run with package    {with_pkg.seconds:.1f}s "
                f"(model {fmt(with_pkg.model_seconds, '.1f')}s, hook {fmt(with_pkg.hook_seconds, '.1f')}s); "
                f"hook said: {with_pkg.hook_log or '?'}"
            )
            hook_logs.append(f"{label}: {with_pkg.hook_log or '?'}")
            ceiling_here = null_sink is not None and key == "a"
            if len(modes) > 1 or ceiling_here:
                for suffix in ("", ".wal"):
                    Path(str(snapshot) + suffix).unlink(missing_ok=True)
                    if Path(str(db) + suffix).exists():
                        shutil.copyfile(str(db) + suffix, str(snapshot) + suffix)
            for index, mode in enumerate(modes):
                if index > 0:  # every mode syncs from the same warehouse state
                    restore(snapshot, db)
                sync = run_sync(emulators[mode], label, root, env, flags)
                log(
                    f"{label}: sync [{mode}] {sync.seconds:.1f}s "
                    f"(engine {fmt(sync.engine_seconds, '.1f')}s), "
                    f"{sync.objects:,} objects, {sync.requests:,} requests, "
                    f"{sync.data_points:,} data points, peak RSS {fmt(sync.peak_rss_mb, '.0f')} MB"
                )
                results[mode].append((label, with_pkg, without_pkg, sync))
            if ceiling_here and null_sink is not None:  # the same first sync, the client alone
                restore(snapshot, db)
                ceiling["sync"] = run_sync(null_sink, label + " vs null sink", root, env, flags)
                c = ceiling["sync"]
                log(
                    f"{label}: sync [null sink] {c.seconds:.1f}s, {c.objects:,} objects, "
                    f"{c.requests:,} requests, peak RSS {fmt(c.peak_rss_mb, '.0f')} MB"
                )
        if not args.no_baseline:
            for mode in modes:
                limit = args.baseline_rows_latency if mode == "latency" else None
                limit = limit if limit and limit < args.users else None
                baselines[mode] = run_baseline(emulators[mode], root, env, limit)
                b = baselines[mode]
                log(
                    f"baseline [{mode}] {b.seconds:.1f}s, {b.objects:,} objects, {b.requests:,} requests, "
                    f"{b.data_points:,} data points"
                )
            if null_sink is not None:
                ceiling["baseline"] = run_baseline(null_sink, root, env, None)
                log(f"baseline [null sink] {ceiling['baseline'].seconds:.1f}s")
    finally:
        for emulator in emulators.values():
            emulator.stop()
        if null_sink is not None:
            null_sink.stop()
        if not args.keep and args.workdir is None:
            shutil.rmtree(base, ignore_errors=True)
        elif args.keep:
            log(f"kept {base}")

    print()
    print(
        f"dbt-braze benchmark: {args.users:,} users x {len(ATTRIBUTES)} attributes "
        f"(string x4 incl. 1 nullable, integer, decimal, double, boolean, date, timestamp)"
    )
    if args.identifier != "external_id" or args.subscription_groups:
        mapped = len(braze_block(args.identifier, 0)["attributes"])
        print(
            f"keyed by {args.identifier}: {mapped} of those attributes mapped (an identifier is no "
            f"attribute); {args.subscription_groups} subscription groups (unsubscribe_only)"
        )
    for line in info:
        print(line)
    try:
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        load = "?"
    print(
        f"load average at start: {LOAD_AT_START}, at end: {load} (other processes compete for the cores: "
        "figures are only comparable on a quiet machine)"
    )
    if code_fingerprint() != fingerprint:
        print(
            f"WARNING: dbt_braze/ or macros/ changed while the benchmark ran (fingerprint {fingerprint} -> "
            f"{code_fingerprint()}): later phases may have run different code"
        )
    print(f"sync flags: {' '.join(flags)}")
    print(
        "dbt runs are shared by the modes (they do not touch Braze); each mode's syncs start from the same "
        "warehouse snapshot."
    )
    print(
        "each dbt run follows an uncounted `dbt parse` with the same vars, so it parses partially, as "
        "a scheduled job's run does (the bench's runs alternate their vars; new vars cost a full re-parse)"
    )
    print("pending changes computed by the hook:")
    for line in hook_logs:
        print(f"  {line}")
    for mode in modes:
        title = (
            f"== mode {mode}: emulator sink, no rate limit, "
            f"{'no latency' if latency[mode] == 0 else f'{latency[mode]:g} ms per request'} =="
        )
        print_mode_table(title, results[mode], baselines.get(mode), args.change_pct, args.users)
    print_ceiling(ceiling)
    print_summary(results, baselines, ceiling, args.users, (LOAD_AT_START, load))
    return 0


def restore(snapshot: Path, db: Path) -> None:
    """The warehouse file (and its WAL) as the snapshot holds it."""
    for suffix in ("", ".wal"):
        Path(str(db) + suffix).unlink(missing_ok=True)
        if Path(str(snapshot) + suffix).exists():
            shutil.copyfile(str(snapshot) + suffix, str(db) + suffix)


def print_ceiling(ceiling: dict[str, SyncRun]) -> None:
    if not ceiling:
        return
    print()
    print(
        "== ceiling: case (a) again, against bench/null_sink.py (answers 201, reads no JSON, does no work) =="
    )
    for name, run in (
        ("dbt-braze sync", ceiling.get("sync")),
        ("baseline full resend", ceiling.get("baseline")),
    ):
        if run is None:
            continue
        print(
            f"{name}: {run.seconds:.2f}s, {fmt(run.objects)} objects, "
            f"{fmt(run.objects_per_second)} objects/s, {fmt(run.requests)} requests, "
            f"peak RSS {fmt(run.peak_rss_mb, '.0f')} MB, "
            f"CPU {fmt(run.cpu_seconds, '.1f')}s, sink CPU {fmt(run.emulator_cpu_seconds, '.1f')}s"
        )


def print_summary(
    results: dict[str, list[tuple[str, DbtRun, DbtRun, SyncRun]]],
    baselines: dict[str, SyncRun],
    ceiling: dict[str, SyncRun],
    users: int,
    load: tuple[str, str],
) -> None:
    """The figures of issue 16 (items 3 to 5) in one place, from the fast mode."""
    rows = {label[:3]: (with_pkg, sync) for label, with_pkg, _, sync in results.get("fast", [])}
    if not rows:
        return
    print()
    print(f"== summary ({users:,} users, fast mode; load average at start {load[0]}, at end {load[1]}) ==")
    a, b, c = rows.get("(a)"), rows.get("(b)"), rows.get("(c)")
    baseline = baselines.get("fast")
    if a is not None:
        line = f"first full sync: dbt-braze {fmt(a[1].objects_per_second)} objects/s"
        if baseline is not None and baseline.objects_per_second and a[1].objects_per_second:
            line += (
                f", baseline {fmt(baseline.objects_per_second)} objects/s in the same run "
                f"(dbt-braze / baseline {a[1].objects_per_second / baseline.objects_per_second:.2f}x)"
            )
        print(line)
    if ceiling.get("sync") is not None:
        line = f"ceiling (sink doing no work): dbt-braze {fmt(ceiling['sync'].objects_per_second)} objects/s"
        if ceiling.get("baseline") is not None:
            line += f", baseline {fmt(ceiling['baseline'].objects_per_second)} objects/s"
        print(line)
    hooks = [f"{key} {fmt(run[0].hook_seconds, '.2f')}s" for key, run in rows.items()]
    print("hook, as dbt records it: " + ", ".join(hooks))
    if b is not None and c is not None:
        print(
            f"the run right after the first sync (b): dbt run {b[0].seconds:.2f}s (hook "
            f"{fmt(b[0].hook_seconds, '.2f')}s) vs a 1% run (c): dbt run {c[0].seconds:.2f}s (hook "
            f"{fmt(c[0].hook_seconds, '.2f')}s)"
        )
    if c is not None:
        print(
            f"1% cycle (c): dbt run {c[0].seconds:.2f}s + sync {c[1].seconds:.2f}s = "
            f"{c[0].seconds + c[1].seconds:.2f}s"
        )
    peaks = [f"{key} {fmt(run[1].peak_rss_mb, '.0f')} MB" for key, run in rows.items()]
    print("sync peak RSS: " + ", ".join(peaks))


if __name__ == "__main__":
    raise SystemExit(main())
