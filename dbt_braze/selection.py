"""`--select` in dbt's own selection syntax (names, `tag:`, `path:`, `+`), resolved by dbt."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbt_braze.errors import ConfigError


@dataclass(frozen=True)
class Project:
    """Where the user's dbt project, profiles and target are."""

    project_dir: Path
    profiles_dir: Path
    target: str | None

    def dbt_args(self) -> list[str]:
        args = ["--project-dir", str(self.project_dir), "--profiles-dir", str(self.profiles_dir)]
        return args + (["--target", self.target] if self.target else [])


def resolve_models(project: Project, select: list[str]) -> list[str]:
    """Names of the models `dbt ls --select ...` matches (dbt parses the project)."""
    from dbt_braze.dbt_access import invoke_dbt

    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        result = invoke_dbt(
            [
                "ls",
                "--resource-type",
                "model",
                "--output",
                "name",
                "--quiet",
                "--select",
                *select,
                *project.dbt_args(),
            ]
        )
    if not result.success:
        reason = str(result.exception or output.getvalue().strip().splitlines()[-1:] or "unknown error")
        raise ConfigError(
            f"dbt could not resolve --select {' '.join(select)}: {reason}",
            hint="check the selection syntax: model names, tag:, path:, +model",
        )
    names: Any = result.result or []  # list[str] for `ls`
    return [str(name) for name in names]
