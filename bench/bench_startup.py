"""Benchmark: how long `dbt-braze validate`, `plan`, `status` and `--version` take to start,
next to `dbt ls` on the same project (the issue wants none of them slower than `dbt ls`).

    .venv/bin/python bench/bench_startup.py                       # this checkout, 5 runs each
    .venv/bin/python bench/bench_startup.py --repo /work/main     # and another, in the same sitting

For each checkout (this one, then every --repo), a throwaway copy of the demo project
(integration_tests/) with its own DuckDB file and the dbt package of that checkout (a
`dbt deps`-style symlink), built once with that checkout's `dbt build`. Then the commands run
as the user runs them (that checkout's .venv/bin/dbt and dbt-braze, a subprocess each), round
after round, every command of every checkout once per round, so that a change in the machine's
load falls on all of them alike. It prints, per command, the median and the fastest wall time
and the median CPU time (user + system, less sensitive to other processes on the cores), each
median over that checkout's `dbt ls`, and between checkouts this one's over the first --repo's
(before/after). With --phases, where this checkout's start-up goes (imports, dbt's
project and profile, the adapter, the macros, the connection), in a process of its own.

It prints the load average at start and end, each checkout's commit, and asserts nothing
about timing; every command must exit 0 (else it stops and prints the command's output).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
COMMANDS = [
    ("dbt ls", ["dbt", "ls"]),
    ("dbt-braze validate", ["dbt-braze", "validate"]),
    ("dbt-braze plan", ["dbt-braze", "plan"]),
    # JSON: main before 885bcfb failed to print the text status of the demo's events model
    ("dbt-braze status", ["dbt-braze", "status", "--output", "json"]),
    ("dbt-braze --version", ["dbt-braze", "--version"]),
]


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def git_commit(repo: Path) -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True).stdout.strip()

    dirty = git("status", "--porcelain", "--", "dbt_braze", "macros")
    return git("rev-parse", "--short", "HEAD") + (" (+ uncommitted changes)" if dirty else "")


@dataclass
class Checkout:
    repo: Path
    project: Path
    env: dict[str, str]
    wall: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)

    @property
    def bin(self) -> Path:
        return self.repo / ".venv" / "bin"

    @property
    def label(self) -> str:
        return f"{self.repo.name} {git_commit(self.repo)}"

    def run(self, argv: list[str]) -> tuple[float, float]:
        """Wall and CPU seconds of one command, which must exit 0."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        proc = subprocess.run(
            [str(self.bin / argv[0]), *argv[1:]],
            cwd=self.project,
            env=self.env,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            command = " ".join([str(self.bin / argv[0]), *argv[1:]])
            sys.exit(f"{command} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return wall, cpu


def prepare(repo: Path, workdir: Path, demo: Path) -> Checkout:
    """A copy of the demo project `demo` with the dbt package of `repo`, built by `repo`'s dbt.
    Every checkout runs the same demo, the first one's: an older checkout may not know the
    kinds a newer demo declares."""
    if not (repo / ".venv" / "bin" / "dbt-braze").is_file():
        sys.exit(f"{repo}/.venv/bin/dbt-braze not found: run scripts/bootstrap in {repo}")
    project = workdir / f"demo-{len(list(workdir.iterdir()))}"
    shutil.copytree(demo, project, ignore=shutil.ignore_patterns("target", "dbt_packages", "logs"))
    (project / "packages.yml").write_text(f"packages:\n  - local: {repo}\n")
    (project / "dbt_packages").mkdir()
    (project / "dbt_packages" / "dbt_braze").symlink_to(repo)  # what `dbt deps` does for local:
    env = {
        **os.environ,
        "DO_NOT_TRACK": "1",
        "DBT_PROFILES_DIR": str(project),
        "DBT_BRAZE_DUCKDB_PATH": str(project / "demo.duckdb"),
    }
    for name in ("DBT_TARGET_PATH", "BRAZE_API_KEY", "BRAZE_REST_ENDPOINT"):
        env.pop(name, None)
    checkout = Checkout(repo, project, env)
    print(f"building the demo project for {checkout.label} in {project} ...", file=sys.stderr, flush=True)
    checkout.run(["dbt", "build", "--quiet"])
    return checkout


PHASES = r"""
import os, sys, time
from argparse import Namespace
from pathlib import Path
marks = [time.perf_counter()]
def mark(label):
    marks.append(time.perf_counter()); print(f"  {marks[-1] - marks[-2]:6.3f} s  {label}")
import dbt_braze.commands
mark("import dbt_braze.commands (config, engine, report: no dbt)")
from dbt.adapters.factory import get_adapter, register_adapter, reset_adapters
from dbt.config.runtime import RuntimeConfig
from dbt.context.providers import generate_runtime_macro_context
from dbt.flags import set_from_args
from dbt.mp_context import get_mp_context
from dbt_common.context import set_invocation_context
mark("import dbt (adapter factory, project config, macro context)")
from dbt_braze.dbt_access import _quiet_dbt_events, macros_from_manifest
args = Namespace(project_dir=".", profiles_dir=".", target=None, profile=None, threads=None, vars={},
                 send_anonymous_usage_stats=False)
set_invocation_context(os.environ); set_from_args(args, {}); _quiet_dbt_events()
config = RuntimeConfig.from_args(args)
mark("RuntimeConfig.from_args (dbt_project.yml, profiles.yml, packages)")
register_adapter(config, get_mp_context()); adapter = get_adapter(config)
mark("register the adapter (imports dbt-duckdb)")
from dbt.parser.manifest import ManifestLoader
mark("import dbt's manifest loader")
parsed = ManifestLoader.load_macros(config, adapter.connections.set_query_header)
mark(f"parse the macro files ({len(parsed.macros)} macros; before)")
recorded = macros_from_manifest(Path("target/manifest.json").resolve(), config, str(adapter.type()))
assert recorded is not None, "the manifest's macros are not current"
mark(f"macros from target/manifest.json, files checked ({len(recorded.macros)} macros; after)")
adapter.set_macro_resolver(recorded); adapter.set_macro_context_generator(generate_runtime_macro_context)
adapter.acquire_connection("bench"); adapter.execute("select 1", fetch=True)
mark("open the connection, select 1")
adapter.execute_macro("braze_pending_relation", project="dbt_braze", kwargs={"model_name": "braze_users"})
mark("first macro rendered")
"""


def print_phases(checkout: Checkout) -> None:
    print(f"\nwhere the start-up goes ({checkout.label}; one process, in order):")
    proc = subprocess.run(
        [str(checkout.bin / "python"), "-c", PHASES],
        cwd=checkout.project,
        env=checkout.env,
        capture_output=True,
        text=True,
    )
    print(proc.stdout.rstrip() or proc.stderr[-2000:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each command (default 5)")
    parser.add_argument(
        "--repo", type=Path, action="append", default=[], help="another checkout to time too (its .venv)"
    )
    parser.add_argument("--phases", action="store_true", help="also where this checkout's start-up goes")
    parser.add_argument("--keep", action="store_true", help="keep the throwaway projects")
    options = parser.parse_args()

    load_at_start = load_average()
    workdir = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    try:
        # the other checkouts first: "before", then this one, "after"
        repos = [repo.resolve() for repo in [*options.repo, REPO_ROOT]]
        checkouts = [prepare(repo, workdir, repos[0] / "integration_tests") for repo in repos]
        print(f"timing {options.runs} round(s) ...", file=sys.stderr, flush=True)
        for _ in range(options.runs):
            for checkout in checkouts:
                for name, argv in COMMANDS:
                    wall, cpu = checkout.run(argv)
                    checkout.wall.setdefault(name, []).append(wall)
                    checkout.cpu.setdefault(name, []).append(cpu)
        load_at_end = load_average()

        print(f"bench_startup: {options.runs} runs of each command, interleaved; demo project on DuckDB")
        print(f"load average at start: {load_at_start}; at end: {load_at_end}; {os.cpu_count()} cores")
        for checkout in checkouts:
            print(f"\n{checkout.label} ({checkout.bin})")
            ls, ls_cpu = (statistics.median(runs["dbt ls"]) for runs in (checkout.wall, checkout.cpu))
            print(
                f"  {'command':<22}{'median s':>10}{'min s':>8}{'/ dbt ls':>10}{'cpu s':>8}{'/ dbt ls':>10}"
            )
            for name, _ in COMMANDS:
                median, cpu = statistics.median(checkout.wall[name]), statistics.median(checkout.cpu[name])
                print(
                    f"  {name:<22}{median:>10.2f}{min(checkout.wall[name]):>8.2f}{median / ls:>10.2f}"
                    f"{cpu:>8.2f}{cpu / ls_cpu:>10.2f}"
                )
        if len(checkouts) > 1:
            before, after = checkouts[0], checkouts[-1]
            print(f"\n{after.repo.name} / {before.repo.name} (below 1: faster)")
            print(f"  {'command':<22}{'wall':>6}{'cpu':>6}")
            for name, _ in COMMANDS:
                wall, cpu = (
                    statistics.median(a[name]) / statistics.median(b[name])
                    for a, b in ((after.wall, before.wall), (after.cpu, before.cpu))
                )
                print(f"  {name:<22}{wall:>6.2f}{cpu:>6.2f}")
        if options.phases:
            print_phases(checkouts[-1])
    finally:
        if options.keep:
            print(f"\nprojects kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
