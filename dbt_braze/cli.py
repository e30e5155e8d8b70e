"""The `dbt-braze` command line: parse options, build settings, call the engine, map to exit codes."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dbt-braze", description="Sync dbt models to Braze user profiles.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    project = _project_options()

    sync = commands.add_parser("sync", parents=[project], help="send the pending changes to Braze")
    sync.add_argument("--select", nargs="+", metavar="MODEL", default=None, help="models to sync")
    sync.add_argument(
        "--dry-run", action="store_true", help="show what would be sent; send and change nothing"
    )
    sync.add_argument(
        "--full-refresh",
        action="store_true",
        help="resend every current row with all its mapped attributes, ignoring the stored state",
    )
    tuning = sync.add_argument_group(
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

    commands.add_parser("validate", parents=[project], help="check every braze block; send nothing")

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
    args = build_parser().parse_args(argv)
    if args.command == "emulator":
        from dbt_braze.emulator import main as emulator_main

        return emulator_main(args.emulator_args)

    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    secret = os.environ.get("BRAZE_API_KEY", "")
    for handler in logging.getLogger().handlers:
        handler.addFilter(_RedactingFilter(secret))

    from dbt_braze import commands as run

    project_dir = (args.project_dir or Path.cwd()).resolve()
    profiles_dir = resolve_profiles_dir(project_dir, args.profiles_dir)
    try:
        if args.command == "validate":
            return run.validate(project_dir, profiles_dir, args.target, out=sys.stdout)
        braze = None if args.dry_run else BrazeSettings.from_env()
        cli_settings = {f.name: getattr(args, f"setting_{f.name}") for f in fields(SyncSettings)}
        return run.sync(
            project_dir,
            profiles_dir,
            args.target,
            select=args.select,
            dry_run=args.dry_run,
            full_refresh=args.full_refresh,
            braze=braze,
            settings=resolve_settings(project_dir, cli_settings),
            out=sys.stdout,
        )
    except DbtBrazeError as exc:
        text = redact(str(exc), secret)
        print(f"error: {text}", file=sys.stderr)
        if args.debug:
            traceback.print_exc()
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: what was not acknowledged stays pending", file=sys.stderr)
        return 1
    return EXIT_OK
