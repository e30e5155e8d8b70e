"""The documentation's commands run, so that they cannot rot.

Every fenced block whose info string is ``bash run`` in docs/*.md (and in
README.md, if it marks any) is executed; plain ``bash`` blocks are
illustrative and left alone. One test per page, so a broken page is named.

Each page gets a sandbox of its own, which is what its blocks may assume:

- a copy of the demo project (integration_tests/) as the working directory,
  its packages.yml pointing `local:` at this repository and the package
  installed as `dbt deps` installs a local package (a symlink), nothing built;
- DuckDB at `$DBT_BRAZE_DUCKDB_PATH`, outside the project copy;
- `DBT_PROFILES_DIR` = the project copy, `DO_NOT_TRACK=1`, the venv's bin
  first on `PATH`;
- a Braze emulator running, with `BRAZE_API_KEY` and `BRAZE_REST_ENDPOINT`
  exported for it.

A page's blocks run in file order, each with `bash -euo pipefail` in a fresh
process group (whatever a block leaves running is stopped after it). A block
passes when it exits 0, or with the status its first line declares:
``# expect-exit: 2``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dbt_braze.emulator import ALL_PERMISSIONS, BrazeEmulator

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_PROJECT = REPO_ROOT / "integration_tests"
VENV_BIN = Path(sys.executable).parent  # not resolved: the venv's bin, not the base interpreter's
API_KEY = "docs-sandbox-key-3f9a"
BLOCK_TIMEOUT_SECONDS = 180
OUTPUT_TAIL_CHARS = 6_000
# What the demo project's copy leaves out: build products and the package installation.
NOT_COPIED = ("target", "logs", "dbt_packages", "package-lock.yml", "packages.yml", "*.duckdb*")

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
EXPECT_EXIT = re.compile(r"^#\s*expect-exit:\s*(?P<code>\d+)\s*$")
HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*#*\s*$")
LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


@dataclass(frozen=True)
class Block:
    page: str
    line: int  # of the opening fence, 1-based
    script: str
    expected_exit: int


def run_blocks(path: Path) -> list[Block]:
    """The page's ``bash run`` blocks, in file order (fences may be indented, as in lists)."""
    blocks: list[Block] = []
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, fence, info = opening["indent"], opening["fence"], opening["info"].split()
        body: list[str] = []
        end = index + 1
        while end < len(lines):
            closing = FENCE.match(lines[end])
            if closing and closing["fence"].startswith(fence) and not closing["info"].strip():
                break
            body.append(lines[end][len(indent) :] if lines[end].startswith(indent) else lines[end])
            end += 1
        else:
            raise AssertionError(f"{path.name}:{index + 1}: code block never closed")
        if info[:2] == ["bash", "run"]:
            declared = EXPECT_EXIT.match(body[0].strip()) if body else None
            expected = int(declared["code"]) if declared else 0
            blocks.append(Block(path.name, index + 1, "\n".join(body) + "\n", expected))
        index = end + 1
    return blocks


def pages() -> list[Path]:
    docs = sorted((REPO_ROOT / "docs").glob("*.md"))
    readme = REPO_ROOT / "README.md"
    return docs + ([readme] if run_blocks(readme) else [])


def prose_lines(path: Path) -> list[str]:
    """The page's lines outside fenced code blocks."""
    prose: list[str] = []
    fence: str | None = None
    for line in path.read_text().splitlines():
        found = FENCE.match(line)
        if fence is None and found:
            fence = found["fence"]
        elif fence is not None and found and found["fence"].startswith(fence) and not found["info"].strip():
            fence = None
        elif fence is None:
            prose.append(line)
    return prose


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    found = set()
    for line in prose_lines(path):
        heading = HEADING.match(line)
        if heading:
            text = re.sub(r"[^\w\- ]", "", heading["title"].lower())
            found.add(text.replace(" ", "-"))
    return found


@dataclass(frozen=True)
class Sandbox:
    project: Path
    env: dict[str, str]
    logs: Path


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    project = tmp_path / "project"
    shutil.copytree(DEMO_PROJECT, project, ignore=shutil.ignore_patterns(*NOT_COPIED), symlinks=True)
    (project / "packages.yml").write_text(f"packages:\n  - local: {REPO_ROOT}\n")
    (project / "dbt_packages").mkdir()
    (project / "dbt_packages" / "dbt_braze").symlink_to(REPO_ROOT)  # what `dbt deps` does, in no time
    logs = tmp_path / "block-logs"
    logs.mkdir()
    # The developer's own dbt and dbt-braze settings must not leak into the pages.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBT_", "BRAZE_"))}
    with BrazeEmulator(api_keys={API_KEY: ALL_PERMISSIONS}) as braze:
        # the catalog of the demo's braze_products (scripts/demo.py creates it too)
        braze.create_catalog("products", {"title": "string", "price": "number", "in_stock": "boolean"})
        env.update(
            PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
            DO_NOT_TRACK="1",
            DBT_PROFILES_DIR=str(project),
            DBT_BRAZE_DUCKDB_PATH=str(tmp_path / "demo.duckdb"),
            BRAZE_API_KEY=API_KEY,
            BRAZE_REST_ENDPOINT=braze.url,
        )
        yield Sandbox(project, env, logs)


def run_block(block: Block, sandbox: Sandbox, number: int) -> tuple[int | None, str, float]:
    """(exit status or None on timeout, combined output, seconds)."""
    log = sandbox.logs / f"block-{number:02d}.log"
    started = time.monotonic()
    # Output goes to a file, not a pipe: a server a block leaves in the
    # background would hold a pipe open and keep us waiting.
    with log.open("w+") as output:
        process = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", block.script],
            cwd=sandbox.project,
            env=sandbox.env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped below
        )
        try:
            code: int | None = process.wait(timeout=BLOCK_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        output.seek(0)
        text = output.read()
    return code, text, time.monotonic() - started


@pytest.mark.parametrize("page", pages(), ids=lambda page: page.name)
def test_page_commands_run(page: Path, sandbox: Sandbox) -> None:
    blocks = run_blocks(page)
    assert blocks, f"{page.name} has no `bash run` block: its commands would go untested"
    for number, block in enumerate(blocks, start=1):
        code, output, seconds = run_block(block, sandbox, number)
        print(f"{block.page}:{block.line}: block {number} took {seconds:.1f}s")
        outcome = f"timed out after {BLOCK_TIMEOUT_SECONDS}s" if code is None else f"exited {code}"
        assert code == block.expected_exit, (
            f"{block.page}:{block.line}: block {number} {outcome} in {seconds:.1f}s, "
            f"expected {block.expected_exit}\n--- script\n{block.script}--- output (tail)\n"
            f"{output[-OUTPUT_TAIL_CHARS:]}"
        )


@pytest.mark.parametrize("page", sorted({*pages(), REPO_ROOT / "README.md"}), ids=lambda page: page.name)
def test_page_links_resolve(page: Path) -> None:
    """Relative links between the pages point at files and headings that exist."""
    broken = []
    for line in prose_lines(page):
        for link in LINK.finditer(line):
            target = link["target"]
            if re.match(r"^[a-z]+:", target):
                continue  # http:, https:, mailto:
            file_part, _, anchor = target.partition("#")
            linked = (page.parent / file_part).resolve() if file_part else page
            if not linked.exists():
                broken.append(f"{target}: no file {linked}")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                broken.append(f"{target}: no heading with anchor #{anchor} in {linked.name}")
    assert not broken, f"{page.name}: broken links:\n" + "\n".join(broken)
