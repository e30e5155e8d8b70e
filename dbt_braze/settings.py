"""Sync settings, resolved once: command line, then environment, then project vars.

Each setting can be given as a CLI flag (`--concurrency 8`), an environment
variable (`DBT_BRAZE_CONCURRENCY=8`) or a var in the user's dbt_project.yml
(`vars: {dbt_braze_concurrency: 8}`); the first one found wins.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from dbt_braze.errors import ConfigError, MissingSettingError
from dbt_braze.ratelimit import CATALOG_REQUESTS_PER_MINUTE, MAX_TRACK_OBJECTS

# Braze's default /users/track limit is 3,000 requests per 3 s per workspace
# (braze-api-notes.md, "Rate limits"), shared with the customer's apps and other
# integrations. By default a sync takes half of it.
DEFAULT_REQUESTS_PER_SECOND = 500.0
# The catalog item endpoints share their own limit, 16,000 requests per minute (266.7/s); a
# catalog sync paces itself just under it, and a 429 slows it down like /users/track.
DEFAULT_CATALOG_REQUESTS_PER_SECOND = float(CATALOG_REQUESTS_PER_MINUTE // 60)


@dataclass(frozen=True)
class BrazeSettings:
    """Where Braze is and the key to it, from BRAZE_REST_ENDPOINT and BRAZE_API_KEY."""

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


@dataclass(frozen=True)
class SyncMode:
    """What one sync command does, beside its tuning (SyncSettings)."""

    dry_run: bool = False  # send nothing, change nothing: count and show samples
    full_refresh: bool = False  # every current row, all its attributes, ignoring the state
    allow_removals: bool = False  # lift the mass-removal guard for this run
    resend_unknown: bool = False  # events: send the rows whose outcome is unknown again
    forget_unknown: bool = False  # events: record the rows whose outcome is unknown as delivered


@dataclass(frozen=True)
class SyncSettings:
    # 24 in flight carry ~36,000 objects/s at 50 ms per request (~18,000 at 100 ms);
    # the requests-per-second cap below, not this, keeps the sync within its share.
    concurrency: int = field(default=24, metadata={"help": "requests in flight at once"})
    requests_per_second: float = field(
        default=DEFAULT_REQUESTS_PER_SECOND,
        metadata={
            "help": "client-side cap on /users/track requests per second (0: none); the default "
            "leaves half of Braze's default limit to your other API traffic"
        },
    )
    catalog_requests_per_second: float = field(
        default=DEFAULT_CATALOG_REQUESTS_PER_SECOND,
        metadata={
            "help": "client-side cap on catalog item requests per second (0: none); Braze "
            "allows 16,000 per minute for them, shared with your other API traffic"
        },
    )
    batch_size: int = field(
        default=MAX_TRACK_OBJECTS,
        metadata={"help": "objects per /users/track request (Braze allows 75; some contracts 50)"},
    )
    # 20,000: a checkpoint's commit costs tens of milliseconds even when cheap;
    # at 5,000 a fast sync spent most of its time waiting on them (bench/README.md)
    checkpoint_objects: int = field(
        default=20_000,
        metadata={
            "help": "record acknowledged objects in the warehouse at least every N objects; "
            "bounds what a crash makes a rerun send again"
        },
    )
    checkpoint_seconds: float = field(
        default=10.0, metadata={"help": "...or every S seconds, whichever comes first"}
    )
    max_retry_seconds: float = field(
        default=300.0,
        metadata={"help": "give up on a request that keeps failing after this long (then exit 1)"},
    )
    lock_lease_seconds: float = field(
        default=600.0,
        metadata={"help": "a sync with no heartbeat for this long is taken as dead and loses its lock"},
    )
    max_rejection_rate: float = field(
        default=0.5,
        metadata={"help": "stop early (exit 1) when Braze rejects more than this share of the first objects"},
    )
    rejection_check_objects: int = field(
        default=500, metadata={"help": "how many first objects the rejection rate is judged on"}
    )

    # 2: the logs never cost the hook more than twice a compacted one, and a
    # compaction (one pass over the log) runs at most once per doubling
    compaction_ratio: float = field(
        default=2.0,
        metadata={
            "help": "compact a model's acknowledgement logs after a sync when they hold more than "
            "this many rows per key (0: never; docs/operating.md, Compaction)"
        },
    )

    def __post_init__(self) -> None:
        problems = []
        if not 1 <= self.concurrency <= 256:
            problems.append("concurrency must be between 1 and 256")
        if not 1 <= self.batch_size <= MAX_TRACK_OBJECTS:
            problems.append(f"batch_size must be between 1 and {MAX_TRACK_OBJECTS} (Braze's limit)")
        if self.requests_per_second < 0 or self.catalog_requests_per_second < 0:
            problems.append("requests_per_second and catalog_requests_per_second must be 0 (no cap) or more")
        if self.checkpoint_objects < 1 or self.checkpoint_seconds <= 0:
            problems.append("checkpoint_objects and checkpoint_seconds must be positive")
        if self.lock_lease_seconds < self.max_retry_seconds + 60:
            # a request may be retried this long without a heartbeat: a shorter lease
            # would let a second sync start beside a live one
            problems.append("lock_lease_seconds must exceed max_retry_seconds by at least 60")
        if self.compaction_ratio != 0 and self.compaction_ratio < 1:
            problems.append("compaction_ratio must be 0 (never) or at least 1")
        if not 0 < self.max_rejection_rate <= 1:
            problems.append("max_rejection_rate must be in (0, 1]")
        if problems:
            raise ConfigError(
                "invalid sync settings: " + "; ".join(problems),
                hint="see `dbt-braze sync --help` and docs/configuration.md",
            )


def read_dbt_project(project_dir: Path) -> dict[str, Any]:
    """The user's dbt_project.yml; {} when it is missing, unreadable or not a mapping (dbt says why).

    The one place that parses it: the project vars below, the target path in commands.py."""
    try:
        project = yaml.safe_load((project_dir / "dbt_project.yml").read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return project if isinstance(project, dict) else {}


def _project_vars(project_dir: Path) -> dict[str, Any]:
    found = read_dbt_project(project_dir).get("vars") or {}
    return found if isinstance(found, dict) else {}


def resolve_settings(project_dir: Path, cli: dict[str, Any]) -> SyncSettings:
    """`cli` maps field names to values given on the command line (None = not given)."""
    project_vars = _project_vars(project_dir)
    values: dict[str, Any] = {}
    for setting in fields(SyncSettings):
        raw: Any = cli.get(setting.name)
        source = f"--{setting.name.replace('_', '-')}"
        if raw is None:
            env = f"DBT_BRAZE_{setting.name.upper()}"
            raw, source = os.environ.get(env), env
        if raw is None:
            var = f"dbt_braze_{setting.name}"
            raw, source = project_vars.get(var), f"vars.{var} in dbt_project.yml"
        if raw is None:
            continue
        kind = int if setting.type == "int" else float
        try:
            values[setting.name] = kind(raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: {raw!r} is not a valid {kind.__name__}") from exc
    return SyncSettings(**values)
