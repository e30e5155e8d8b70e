"""The step runner of the Spark tests: a process that runs `dbt ...` and `dbt-braze ...`
commands of one project one after another, in-process, as the DuckDB and PostgreSQL
tests run theirs. Its JVM and Derby metastore start once, not once a step: a local
Spark session takes 15 to 40 s to start on two busy cores, longer than most steps' work.

Protocol: one JSON request a line on stdin ({"tool": "dbt" | "braze", "args": [...],
"env": {...}}, the whole environment of the command); one JSON answer a line
({"exit_code": int, "output": str}) on the stdout this process started with. The JVM
writes its own lines to file descriptors 1 and 2 directly, so those go to the log file
named by argv[1]. A test that kills a sync mid-run kills this process's group (the JVM
is its child), as a crash (SIGKILL) would.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import traceback


def run(tool: str, args: list[str]) -> int:
    if tool == "dbt":
        from dbt.cli.main import dbtRunner

        result = dbtRunner().invoke(args)
        if result.exception is not None:
            print(f"{type(result.exception).__name__}: {result.exception}")
        return 0 if result.success else 1
    from dbt_braze.cli import main

    try:
        return main(args)
    except SystemExit as stop:  # argparse's own exits
        return stop.code if isinstance(stop.code, int) else 1


def serve(log_path: str) -> None:
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(log, 1)
    os.dup2(log, 2)
    import dbt.cli.main  # noqa: F401  (imported once, before the first request's clock)

    answers.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        os.environ.clear()
        os.environ.update(request["env"])
        captured = io.StringIO()
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            try:
                code = run(request["tool"], request["args"])
            except BaseException:  # an answer, never a dead runner: the test reads the trace
                traceback.print_exc()
                code = 99
        answers.write(json.dumps({"exit_code": code, "output": captured.getvalue()}) + "\n")


if __name__ == "__main__":
    serve(sys.argv[1])
