"""The `dbt-braze` command line: parse options, build settings, call the engine, map to exit codes."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from dbt_braze import __version__
from dbt_braze.braze import redact
from dbt_braze.errors import EXIT_OK, DbtBrazeError, MissingSettingError
from dbt_braze.settings import SyncSettings, resolve_settings

logger = logging.getLogger("dbt_braze")


@dataclass(frozen=True)
class BrazeSettings:
    endpoint: str
    api_key: str

    @classmethod
    def from_env(cls) -> BrazeSettings:
        missing = [name for name in ("BRAZE_API_KEY", "BRAZE_REST_ENDPOINT") if not os.environ.get(name)]
        if missing:
            raise MissingSettingError(
                f"missing environment variable(s): {', '.join(missing)}",
                hint="export BRAZE_API_KEY (a REST key with users.track) and BRAZE_REST_ENDPOINT "
                "(e.g. https://rest.iad-01.braze.com), or use --dry-run",
            )
        return cls(os.environ["BRAZE_REST_ENDPOINT"], os.environ["BRAZE_API_KEY"])


class _RedactingFilter(logging.Filter):
    """Masks the API key in every log record, whatever module wrote it."""

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
        help="resend every current row with all its mapped attributes, ignoring the stored state",
    )
    parser.add_argument(
        "--allow-removals",
        action="store_true",
        help="this run only: unset or delete removed users even above a model's max_removed_share",
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
    args = build_parser().parse_args(argv)

    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    secret = os.environ.get("BRAZE_API_KEY", "")
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
            dry_run=dry_run,
            full_refresh=args.full_refresh,
            braze=None if dry_run else BrazeSettings.from_env(),
            settings=resolve_settings(project_dir, cli_settings),
            output=args.output,
            allow_removals=args.allow_removals,
        )
        if args.command == "run":
            return commands.build_then_sync(project, request, out=sys.stdout)
        return commands.sync(project, request, out=sys.stdout)
    except DbtBrazeError as exc:
        text = redact(str(exc), secret)
        print(f"error: {text}", file=sys.stderr)
        if getattr(args, "output", "text") == "json":  # machines still get a document
            document = {
                "command": args.command,
                "exit_code": exc.exit_code,
                "error": redact(exc.message, secret),
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
        print(f"error: unexpected {type(exc).__name__}: {redact(str(exc), secret)}", file=sys.stderr)
        print("  hint: rerun with --debug for the traceback, and report it", file=sys.stderr)
        if args.debug:
            traceback.print_exc()
        return 1
    return EXIT_OK
