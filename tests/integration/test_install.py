"""A new user's path: `pip install` (not editable), `dbt-braze init`, `dbt deps`; and a CLI
that refuses macros of another version."""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dbt_braze import __version__
from dbt_braze.emulator import BrazeEmulator

from harness import REPO_ROOT, DbtProject, braze_model, users_sql

pytestmark = pytest.mark.integration


def test_init_after_a_plain_pip_install_installs_the_clis_own_macros(tmp_path: Path) -> None:
    site = tmp_path / "site"
    # what `pip install /path/to/dbt-braze` puts in site-packages (dependencies are the venv's)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
        + ["--target", str(site), str(REPO_ROOT)],
        check=True,
        capture_output=True,
    )
    project = tmp_path / "analytics"
    project.mkdir()
    (project / "dbt_project.yml").write_text("name: analytics\nversion: '1.0'\nprofile: analytics\n")
    (project / "packages.yml").write_text("packages:\n  - package: dbt-labs/dbt_utils\n    version: 1.3.0\n")
    env = {**os.environ, "PYTHONPATH": str(site), "DO_NOT_TRACK": "1"}

    def init() -> subprocess.CompletedProcess[str]:
        code = "import dbt_braze, sys; from dbt_braze.cli import main; print(dbt_braze.__file__); "
        code += "sys.exit(main())"
        return subprocess.run(
            [sys.executable, "-c", code, "init"], cwd=project, env=env, capture_output=True, text=True
        )

    first = init()
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.startswith(str(site))  # the installed copy ran, not this checkout
    packages = yaml.safe_load((project / "packages.yml").read_text())["packages"]
    local = Path(packages[-1]["local"])
    assert len(packages) == 2 and local.is_relative_to(site)
    # the entry is the dbt package of the installed version, macro for macro
    assert yaml.safe_load((local / "dbt_project.yml").read_text())["version"] == __version__
    macros = sorted(p.relative_to(REPO_ROOT / "macros") for p in (REPO_ROOT / "macros").rglob("*.sql"))
    assert macros and all(
        filecmp.cmp(REPO_ROOT / "macros" / m, local / "macros" / m, shallow=False) for m in macros
    )
    again = init()
    assert again.returncode == 0 and "already lists dbt_braze" in again.stdout
    assert len(yaml.safe_load((project / "packages.yml").read_text())["packages"]) == 2


# a check of the installed package's files: the warehouse plays no part
@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_a_cli_and_installed_macros_of_different_versions_refuse_to_work(
    project: DbtProject, emulator: BrazeEmulator, tmp_path: Path
) -> None:
    project.write_model(users_sql(3))
    project.write_schema([braze_model()])
    project.dbt("run")
    older = tmp_path / "dbt-braze-0.0.9"
    shutil.copytree(REPO_ROOT / "macros", older / "macros")
    text = (
        (REPO_ROOT / "dbt_project.yml").read_text().replace(f'version: "{__version__}"', 'version: "0.0.9"')
    )
    (older / "dbt_project.yml").write_text(text)
    link = project.root / "dbt_packages" / "dbt_braze"
    link.unlink()
    link.symlink_to(older)
    for command in ("sync", "status", "validate"):
        result = project.braze(command)
        assert result.exit_code == 2, result.output
        assert (
            f"installed in this project is version 0.0.9, but this dbt-braze CLI is version {__version__}"
            in (result.output)
        )
        assert "dbt deps" in result.output and "Traceback" not in result.output
    assert emulator.stats()["requests"] == 0
