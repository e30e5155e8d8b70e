"""`dbt-braze init`'s packages.yml edit: it finds dbt_braze however it is listed, and
running it again changes nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from dbt_braze import __version__
from dbt_braze.errors import ConfigError
from dbt_braze.scaffold import BUNDLED_PACKAGE, REPO_ROOT, add_package, package_source


def fake_package(root: Path, name: str = "dbt_braze") -> Path:
    (root / "macros").mkdir(parents=True)
    (root / "dbt_project.yml").write_text(f"name: {name}\nversion: '0.1.0'\n")
    return root


def test_the_default_source_is_this_checkout() -> None:
    assert package_source(None) == f"  - local: {REPO_ROOT}\n"


def test_the_bundled_package_is_the_root_package() -> None:
    """What a wheel ships (pyproject.toml package-data) is the root's dbt package, file for file."""
    assert (BUNDLED_PACKAGE / "dbt_project.yml").read_bytes() == (REPO_ROOT / "dbt_project.yml").read_bytes()
    bundled = sorted(
        p.relative_to(BUNDLED_PACKAGE / "macros") for p in (BUNDLED_PACKAGE / "macros").rglob("*.sql")
    )
    assert bundled == sorted(
        p.relative_to(REPO_ROOT / "macros") for p in (REPO_ROOT / "macros").rglob("*.sql")
    )


@pytest.mark.parametrize(
    "listed",
    [
        "  - local: {checkout}",  # an absolute path whose name is not dbt_braze
        "  - local: ../dbt-braze",  # relative: resolved against the project, not the cwd
        "  - local: /path/to/dbt-braze",  # the README's placeholder, copied as is
        "  - git: https://example.org/acme/dbt-braze.git\n    revision: v0.1.0",
    ],
)
def test_init_twice_lists_the_package_once(
    tmp_path: Path, listed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout = fake_package(tmp_path / "dbt-braze")
    project = tmp_path / "analytics"
    project.mkdir()
    text = "# ours\npackages:\n  - package: dbt-labs/dbt_utils\n    version: 1.3.0\n" + listed.format(
        checkout=checkout
    )
    (project / "packages.yml").write_text(text + "\n")
    monkeypatch.chdir(tmp_path / "dbt-braze" / "macros")  # a working directory elsewhere
    for _ in range(2):
        assert "already lists dbt_braze" in add_package(project, f"  - local: {checkout}\n")
    assert (project / "packages.yml").read_text() == text + "\n"


def test_init_appends_once_then_recognises_its_own_entry(tmp_path: Path) -> None:
    checkout = fake_package(tmp_path / "somewhere")
    (tmp_path / "packages.yml").write_text("packages:\n  - package: dbt-labs/dbt_utils\n    version: 1.3.0")
    assert "added dbt_braze" in add_package(tmp_path, f"  - local: {checkout}\n")
    first = (tmp_path / "packages.yml").read_text()
    assert first.count("dbt_utils") == 1 and first.endswith(f"  - local: {checkout}\n")
    assert "already lists" in add_package(tmp_path, f"  - local: {checkout}\n")
    assert (tmp_path / "packages.yml").read_text() == first


def test_another_package_in_a_local_path_is_not_taken_for_dbt_braze(tmp_path: Path) -> None:
    other = fake_package(tmp_path / "shared", name="acme_macros")
    (tmp_path / "packages.yml").write_text(f"packages:\n  - local: {other}\n")
    assert "added dbt_braze" in add_package(tmp_path, "  - local: /opt/x\n")


def test_a_bad_package_source_is_a_usage_error() -> None:
    with pytest.raises(ConfigError, match="local:PATH or git:URL"):
        package_source("svn:somewhere")


def test_one_version_in_the_python_package_and_the_dbt_package() -> None:
    """sync refuses macros of another version (commands._open_warehouse): the two halves
    of one release must carry the same number."""
    pyproject = re.search(r'^version = "(.+)"$', (REPO_ROOT / "pyproject.toml").read_text(), re.M)
    assert pyproject is not None
    dbt_project = yaml.safe_load((REPO_ROOT / "dbt_project.yml").read_text())["version"]
    assert __version__ == pyproject.group(1) == dbt_project


def test_a_build_in_the_checkout_leaves_nothing_for_git() -> None:
    """`pip install .` builds in the checkout (build/, *.egg-info): git must ignore it."""
    import subprocess

    for made in ("build/lib/dbt_braze/__init__.py", "dbt_braze.egg-info/PKG-INFO"):
        ignored = subprocess.run(["git", "check-ignore", "-q", made], cwd=REPO_ROOT, check=False)
        assert ignored.returncode == 0, f"{made} is not ignored by .gitignore"


def test_the_readme_quickstart_walks_the_whole_path() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    quickstart = readme[readme.index("## Five-minute quickstart") : readme.index("## What is sent")]
    for command in ("dbt-braze init", "dbt deps", "dbt-braze validate", "dbt-braze plan", "dbt-braze sync"):
        assert command in quickstart, command
    assert "dbt-braze status" in quickstart and "dbt-braze run" in quickstart
