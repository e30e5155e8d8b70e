"""`dbt-braze init`: add the package to packages.yml and draft a model's meta block.

It edits packages.yml as text (appending an entry) so that the user's
comments and layout survive, and installs nothing: `dbt deps` stays theirs.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from dbt_braze.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]
ID_CANDIDATES = ("external_id", "user_id", "customer_id", "account_id", "id")


def package_source(given: str | None) -> str:
    """The packages.yml entry: given as `local:PATH` / `git:URL`, else this checkout."""
    if given:
        kind, _, where = given.partition(":")
        if kind not in ("local", "git") or not where:
            raise ConfigError(
                f"--package-source {given!r} is not local:PATH or git:URL",
                hint="e.g. --package-source git:https://github.com/<org>/dbt-braze.git",
            )
        return f"  - {kind}: {where}\n"
    if (REPO_ROOT / "dbt_project.yml").is_file() and (REPO_ROOT / "macros").is_dir():
        return f"  - local: {REPO_ROOT}\n"
    raise ConfigError(
        "cannot tell where the dbt_braze package lives", hint="pass --package-source local:PATH or git:URL"
    )


def add_package(project_dir: Path, entry: str) -> str:
    """Append `entry` to packages.yml (created if missing); say what was done."""
    path = project_dir / "packages.yml"
    text = path.read_text() if path.exists() else ""
    try:
        packages = (yaml.safe_load(text) or {}).get("packages") or []
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot read {path}: {exc}", hint="fix its YAML, then run init again") from exc
    for package in packages:
        if isinstance(package, dict) and (
            "dbt_braze" in str(package.get("local", ""))
            or "dbt-braze" in str(package.get("git", ""))
            or Path(str(package.get("local", "-"))).resolve() == REPO_ROOT
        ):
            return f"{path.name} already lists dbt_braze: nothing changed"
    if not re.search(r"^packages:\s*$", text, flags=re.MULTILINE):
        text = text + ("" if text.endswith("\n") or not text else "\n") + "packages:\n"
    elif not text.endswith("\n"):
        text += "\n"
    path.write_text(text + entry)
    return f"added dbt_braze to {path}; now run `dbt deps`"


def meta_example(model: str, columns: list[str]) -> str:
    """A ready schema.yml block for `model`, from its real columns."""
    lowered = {c.lower(): c for c in columns}
    identifier = next(
        (lowered[c] for c in ID_CANDIDATES if c in lowered), columns[0] if columns else "user_id"
    )
    attributes = "\n".join(f"            {c}: {c}" for c in columns if c != identifier)
    return (
        "models:\n"
        f"  - name: {model}\n"
        "    config:\n"
        "      meta:\n"
        "        braze:\n"
        f"          external_id: {identifier}    # or braze_id: <column> (update mode only)\n"
        "          mode: upsert              # upsert | update\n"
        "          on_removed: ignore        # ignore | unset | delete\n"
        "          attributes:               # model column: Braze attribute (rename freely)\n"
        f"{attributes}\n"
    )
