"""What reaches the user when the endpoint is not Braze, echoes the key, or the reader goes away.

`Hostile` is a small HTTP server on 127.0.0.1 that puts the API key in its reason phrase, its
body and a header, and answers in one of a few modes. Real dbt on DuckDB; these are HTTP
matters, the same on every warehouse.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from dbt_braze.emulator import BrazeEmulator

from harness import API_KEY, DbtProject, assert_braze_equals_model, braze_model, users_sql

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)]

NO_VALID_DATA = "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields."


class Hostile(ThreadingHTTPServer):
    """Modes: `reject` (201 rejecting the first object, the key in its reason), `refuse` (415
    with HTML), `portal` (200 with HTML to everything). A request with no object (the key check)
    gets Braze's JSON 400, except in `portal` mode."""

    mode = "reject"
    track_bodies: list[Any]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Hostile

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        objects = body.get("attributes") or []
        self.server.track_bodies.append(body)
        content_type = "application/json"
        if self.server.mode == "portal":
            status, payload = 200, f"<html>Sign in to the hotel wifi ({API_KEY})</html>"
            content_type = "text/html"
        elif not objects:
            status, payload = 400, json.dumps({"message": f"{NO_VALID_DATA} ({API_KEY})"})
        elif self.server.mode == "reject":
            error = {"type": f"invalid value for key {API_KEY}", "input_array": "attributes", "index": 0}
            status, payload = 201, json.dumps({"message": f"success {API_KEY}", "errors": [error]})
        else:
            status, payload = 415, f"<html><h1>Refused</h1>{API_KEY}</html>"
            content_type = "text/html"
        data = payload.encode()
        self.send_response(status, f"Echo {API_KEY}")
        self.send_header("X-Echo", API_KEY)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def hostile() -> Iterator[Hostile]:
    server = Hostile(("127.0.0.1", 0), _Handler)
    server.track_bodies = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def build(project: DbtProject, n: int, plan: str = "'free'") -> None:
    project.write_model(users_sql(n, plan=plan))
    project.write_schema([braze_model()])
    project.dbt("run")


def closed_stdout(project: DbtProject, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """`dbt-braze ARGS | head -1` once head has gone: every write to stdout meets a closed pipe.
    Returns the exit status and stderr."""
    process = project.spawn_braze(*args, env=env, stderr=subprocess.PIPE)
    assert process.stdout is not None
    process.stdout.close()
    _, errors = process.communicate(timeout=120)
    for noise in ("BrokenPipe", "Exception ignored", "Traceback", "unexpected"):
        assert noise not in errors, errors
    return process.returncode, errors


def test_the_key_echoed_by_the_endpoint_reaches_no_output_and_no_table(
    project: DbtProject, hostile: Hostile
) -> None:
    env = {"BRAZE_REST_ENDPOINT": hostile.url}
    build(project, 3)
    hostile.mode = "refuse"
    text = project.braze("sync", env=env)
    document = project.braze("sync", "--output", "json", env=env)
    for result in (text, document):
        assert result.exit_code == 1
        assert "415 Echo ***" in result.output
        assert API_KEY not in result.output
    [model] = json.JSONDecoder().raw_decode(document.output)[0]["models"]
    assert "415 Echo ***" in model["error"]

    # a real process, with --debug (response bodies logged) and its stdout closed: the sync
    # still finishes, and every log line goes through the same redacting writer
    hostile.mode = "reject"
    status, errors = closed_stdout(project, "sync", "--debug", env=env)
    assert status == 0, errors
    assert "invalid value for key ***" in errors  # Braze's answer, at DEBUG
    assert API_KEY not in errors

    errors_column = project.query("select error from braze_sync_runs where status = 'failed'")
    assert len(errors_column) == 2 and all("415 Echo ***" in e for (e,) in errors_column)
    assert project.query("select distinct reason from braze_rejected") == [("invalid value for key ***",)]
    assert project.query("select count(distinct braze_key) from braze_state") == [(2,)]
    for table in ("braze_sync_runs", "braze_rejected", "braze_state"):
        assert API_KEY not in str(project.query(f"select * from {table}")), table


def test_checks_before_and_counts_after_sending(
    project: DbtProject, emulator: BrazeEmulator, hostile: Hostile
) -> None:
    build(project, 4)
    cleartext = project.braze("sync", env={"BRAZE_REST_ENDPOINT": "http://rest.iad-01.braze.com"})
    assert cleartext.exit_code == 2
    assert "in clear" in cleartext.output and "loopback" in cleartext.output
    assert emulator.stats()["requests"] == emulator.stats()["empty_track_requests"] == 0

    # a failed run reports no data points it did not deliver
    emulator.configure(error_rate=1.0)
    failed = project.braze("sync", "--max-retry-seconds", "1")
    assert failed.exit_code == 1
    line = next(line for line in failed.output.splitlines() if "data points sent" in line)
    assert line.split()[-1] == "0", line
    assert project.query("select data_points from braze_sync_runs where status = 'failed'") == [(0,)]
    emulator.configure(error_rate=0.0)

    status, errors = closed_stdout(project, "plan")
    assert status == 0, errors

    assert project.braze("sync").exit_code == 0
    assert_braze_equals_model(emulator, 4)
    successes = project.query("select count(*) from braze_sync_runs where status = 'success'")

    # the key and the endpoint are checked with nothing pending
    revoked = project.braze("sync", env={"BRAZE_API_KEY": "revoked-key-31f7a9"})
    assert revoked.exit_code == 1
    assert "refused the API key (401)" in revoked.output

    hostile.mode = "portal"
    portal = project.braze("sync", env={"BRAZE_REST_ENDPOINT": hostile.url})
    assert portal.exit_code == 1
    assert "not with Braze's JSON" in portal.output and API_KEY not in portal.output
    assert hostile.track_bodies == [{"attributes": []}]  # the check only, not retried

    assert project.query("select count(*) from braze_sync_runs where status = 'success'") == successes
    assert project.query("select count(*) from braze_sync_runs where status = 'failed'") == [(3,)]
