"""`dbt-braze init`: add the package to packages.yml and draft a model's meta block.

It edits packages.yml as text (appending an entry) so that the user's
comments and layout survive, and installs nothing: `dbt deps` stays theirs.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from dbt_braze.errors import ConfigError

PACKAGE_NAME = "dbt_braze"
REPO_ROOT = Path(__file__).resolve().parents[1]
# The dbt package shipped inside the Python package (pyproject.toml: copies of the
# root's dbt_project.yml and macros/), so that a plain `pip install` brings macros
# of the very version of the CLI.
BUNDLED_PACKAGE = Path(__file__).resolve().parent / "dbt_package"
ID_CANDIDATES = ("external_id", "user_id", "customer_id", "account_id", "id")


def package_source(given: str | None) -> str:
    """The packages.yml entry: given as `local:PATH` / `git:URL`, else the dbt package of
    this very CLI: its checkout, or the copy installed with it."""
    if given:
        kind, _, where = given.partition(":")
        if kind not in ("local", "git") or not where:
            raise ConfigError(
                f"--package-source {given!r} is not local:PATH or git:URL",
                hint="e.g. --package-source git:https://github.com/<org>/dbt-braze.git",
            )
        return f"  - {kind}: {where}\n"
    for root in (REPO_ROOT, BUNDLED_PACKAGE):
        if _is_dbt_braze(root):
            return f"  - local: {root}\n"
    raise ConfigError(
        "cannot tell where the dbt_braze package lives", hint="pass --package-source local:PATH or git:URL"
    )


def _is_dbt_braze(root: Path) -> bool:
    """True when `root` holds the dbt package dbt_braze (its dbt_project.yml says so)."""
    try:
        project = yaml.safe_load((root / "dbt_project.yml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(project, dict) and project.get("name") == PACKAGE_NAME and (root / "macros").is_dir()


def _lists_dbt_braze(package: object, project_dir: Path) -> bool:
    """An entry of packages.yml that installs dbt_braze, however it is spelled."""
    if not isinstance(package, dict):
        return False
    if package.get("local") is not None:
        local = Path(str(package["local"])).expanduser()
        # dbt resolves a relative `local:` against the project, not the working directory
        if _is_dbt_braze(local if local.is_absolute() else project_dir / local):
            return True
    source = " ".join(str(package.get(key, "")) for key in ("local", "git", "package", "tarball"))
    return any(name in source.lower() for name in ("dbt-braze", "dbt_braze"))


def add_package(project_dir: Path, entry: str) -> str:
    """Append `entry` to packages.yml (created if missing) unless the file already
    installs dbt_braze from anywhere; say what was done. Running it again changes nothing."""
    path = project_dir / "packages.yml"
    text = path.read_text() if path.exists() else ""
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot read {path}: {exc}", hint="fix its YAML, then run init again") from exc
    packages = (document.get("packages") if isinstance(document, dict) else None) or []
    listed = [p for p in packages if _lists_dbt_braze(p, project_dir)] if isinstance(packages, list) else []
    if listed:
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
