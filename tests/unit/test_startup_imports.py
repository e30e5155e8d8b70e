"""What `dbt-braze --help` and `--version` load: neither dbt nor the HTTP client nor the
validation schema, which are most of a command's start-up (bench/bench_startup.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# modules that only commands that read a manifest, query or send may load
HEAVY = ("dbt", "dbt_common", "agate", "duckdb", "jsonschema", "urllib3", "mashumaro", "jinja2")
HEAVY_OURS = ("dbt_braze.commands", "dbt_braze.braze", "dbt_braze.transport", "dbt_braze.dbt_access")

PROBE = """
import contextlib, io, json, sys
from dbt_braze.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    main(sys.argv[1:])
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["sync", "--help"], ["validate", "--help"]])
def test_help_and_version_load_neither_dbt_nor_the_http_client(args: list[str]) -> None:
    # a fresh interpreter: this one has imported everything the other tests use
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = set(json.loads(probe.stdout.splitlines()[-1]))
    assert "dbt_braze.cli" in loaded
    assert sorted(m for m in loaded if m.split(".")[0] in HEAVY or m in HEAVY_OURS) == []


EXIT_PROBE = """
import atexit, gc
atexit.register(lambda: print(gc.get_freeze_count()))  # runs after those registered below it
import dbt_braze.dbt_access
"""


def test_a_process_that_used_dbt_exits_without_the_collectors_last_walk() -> None:
    # at exit, the collector walked every object of dbt's set-up again: 0.3 s of CPU time
    probe = subprocess.run(
        [sys.executable, "-c", EXIT_PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    assert int(probe.stdout) > 0  # frozen: the last collections skip them
