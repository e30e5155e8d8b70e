"""The `dbt-braze` command line: parse options, build settings, call the engine, map to exit codes."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, TextIO, cast

from dbt_braze import __version__
from dbt_braze.errors import EXIT_OK, DbtBrazeError, redact
from dbt_braze.settings import BrazeSettings, SyncMode, SyncSettings, resolve_settings


class _RedactingFilter(logging.Filter):
    """Masks the API key in every log record, for handlers that do not write through
    `_SafeStream` (a program that calls `main` with logging of its own)."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self._secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message, self._secret)
        if masked != message:
            record.msg = masked
            record.args = ()
        return True


class _SafeStream:
    """stdout or stderr as every command writes to it: the one place where all output (messages,
    reports, `--output json`, logs, tracebacks) passes, so the API key is masked here.

    A reader that goes away (`dbt-braze sync | head -1`) must not stop or fail the sync: the
    stream goes quiet and the command finishes with its own exit status.
    """

    def __init__(self, stream: TextIO, secret: str) -> None:
        self._stream = stream
        self._secret = secret
        self._closed_pipe = False

    def write(self, text: str) -> int:
        if not self._closed_pipe:
            try:
                self._stream.write(redact(text, self._secret))
            except BrokenPipeError:
                self._silence()
        return len(text)

    def flush(self) -> None:
        if not self._closed_pipe:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._silence()

    def _silence(self) -> None:
        self._closed_pipe = True
        # Python flushes the real stream once more at exit; pointed at /dev/null, that flush
        # cannot end in "Exception ignored ... BrokenPipeError".
        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)

    def isatty(self) -> bool:
        return not self._closed_pipe and self._stream.isatty()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _project_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--project-dir", type=Path, default=None, help="dbt project directory (default: current directory)"
    )
    parent.add_argument(
        "--profiles-dir",
        type=Path,
        default=None,
        help="profiles.yml directory (default: $DBT_PROFILES_DIR, the project dir, ~/.dbt)",
    )
    parent.add_argument("--target", default=None, help="dbt target name (default: the profile's)")
    parent.add_argument("--debug", action="store_true", help="log details and show tracebacks")
    return parent


def _sync_options(parser: argparse.ArgumentParser, *, plan: bool = False) -> None:
    parser.add_argument(
        "--select",
        "-s",
        nargs="+",
        metavar="SELECTOR",
        default=None,
        help="models to sync, in dbt's selection syntax (names, tag:, path:, +model)",
    )
    if not plan:
        parser.add_argument(
            "--dry-run", action="store_true", help="show what would be sent; send and change nothing"
        )
    parser.add_argument(
        "--full-refresh",
        action="store_true",
        help="resend every current row with all its mapped attributes, ignoring the stored state "
        "(models of kind events and purchases: no effect, an event is never sent twice)",
    )
    parser.add_argument(
        "--allow-removals",
        action="store_true",
        help="this run only: unset or delete removed users even above a model's max_removed_share",
    )
    unknown = parser.add_mutually_exclusive_group()
    unknown.add_argument(
        "--resend-unknown",
        action="store_true",
        help="events and purchases: send the rows whose outcome is unknown again (they may arrive twice)",
    )
    unknown.add_argument(
        "--forget-unknown",
        action="store_true",
        help="events and purchases: record the rows whose outcome is unknown as delivered",
    )
    parser.add_argument("--output", choices=("text", "json"), default="text", help="output format")
    tuning = parser.add_argument_group(
        "tuning",
        "each also reads DBT_BRAZE_<NAME> from the environment, then "
        "vars.dbt_braze_<name> from dbt_project.yml",
    )
    for setting in fields(SyncSettings):
        tuning.add_argument(
            f"--{setting.name.replace('_', '-')}",
            dest=f"setting_{setting.name}",
            type=int if setting.type == "int" else float,
            default=None,
            metavar="N",
            help=f"{setting.metadata['help']} (default {setting.default})",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dbt-braze", description="Sync dbt models to Braze user profiles.")
    parser.add_argument("--version", action="version", version=f"dbt-braze {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    project = _project_options()

    _sync_options(commands.add_parser("sync", parents=[project], help="send the pending changes to Braze"))
    _sync_options(
        commands.add_parser("plan", parents=[project], help="what sync would send (= sync --dry-run)"),
        plan=True,
    )
    _sync_options(
        commands.add_parser("run", parents=[project], help="dbt build the selection, then sync what built")
    )
    status = commands.add_parser("status", parents=[project], help="runs, pending changes, rejected rows")
    status.add_argument("--select", "-s", nargs="+", metavar="SELECTOR", default=None)
    status.add_argument("--output", choices=("text", "json"), default="text")
    commands.add_parser("validate", parents=[project], help="check every braze block; send nothing")
    init = commands.add_parser("init", parents=[project], help="add dbt_braze to packages.yml; draft meta")
    init.add_argument("model", nargs="?", help="print a ready meta block for this model, from its columns")
    init.add_argument(
        "--package-source",
        metavar="local:PATH|git:URL",
        default=None,
        help="where packages.yml should install dbt_braze from (default: this checkout)",
    )

    emulator = commands.add_parser("emulator", help="run the bundled Braze emulator", add_help=False)
    emulator.add_argument("emulator_args", nargs=argparse.REMAINDER)
    return parser


def resolve_profiles_dir(project_dir: Path, given: Path | None) -> Path:
    if given is not None:
        return given
    if os.environ.get("DBT_PROFILES_DIR"):
        return Path(os.environ["DBT_PROFILES_DIR"])
    if (project_dir / "profiles.yml").is_file():
        return project_dir
    return Path.home() / ".dbt"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["emulator"]:  # its own options and --help: hand them over untouched
        from dbt_braze.emulator import main as emulator_main

        return emulator_main(argv[1:])
    secret = os.environ.get("BRAZE_API_KEY", "")
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout = cast(TextIO, _SafeStream(stdout, secret))
    sys.stderr = cast(TextIO, _SafeStream(stderr, secret))
    try:
        return _main(argv, secret)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = stdout, stderr


def _main(argv: list[str], secret: str) -> int:
    args = build_parser().parse_args(argv)

    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(_RedactingFilter(secret))

    from dbt_braze import commands
    from dbt_braze.selection import Project

    project_dir = (args.project_dir or Path.cwd()).resolve()
    project = Project(project_dir, resolve_profiles_dir(project_dir, args.profiles_dir), args.target)
    try:
        if args.command == "validate":
            return commands.validate(project, out=sys.stdout)
        if args.command == "status":
            return commands.status(project, select=args.select, output=args.output, out=sys.stdout)
        if args.command == "init":
            return commands.init(project, model=args.model, source=args.package_source, out=sys.stdout)
        dry_run = args.command == "plan" or args.dry_run
        cli_settings = {f.name: getattr(args, f"setting_{f.name}") for f in fields(SyncSettings)}
        request = commands.SyncRequest(
            select=args.select,
            mode=SyncMode(
                dry_run=dry_run,
                full_refresh=args.full_refresh,
                allow_removals=args.allow_removals,
                resend_unknown=args.resend_unknown,
                forget_unknown=args.forget_unknown,
            ),
            braze=None if dry_run else BrazeSettings.from_env(),
            settings=resolve_settings(project_dir, cli_settings),
            output=args.output,
        )
        if args.command == "run":
            return commands.build_then_sync(project, request, out=sys.stdout)
        return commands.sync(project, request, out=sys.stdout)
    except DbtBrazeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if getattr(args, "output", "text") == "json":  # machines still get a document
            document = {
                "command": args.command,
                "exit_code": exc.exit_code,
                "error": exc.message,
                "hint": exc.hint,
            }
            print(json.dumps(document, indent=2))
        if args.debug:
            traceback.print_exc()
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: what was not acknowledged stays pending", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug of ours: say so plainly, keep the traceback for --debug
        print(f"error: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        print("  hint: rerun with --debug for the traceback, and report it", file=sys.stderr)
        if args.debug:
            traceback.print_exc()
        return 1
    return EXIT_OK
