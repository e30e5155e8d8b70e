"""Real dbt on a real warehouse plus the Braze emulator over real sockets.

Each test gets a throwaway dbt project that installs the package the way a
user does (`local:` package, which dbt installs as a symlink), a model whose
SQL the test rewrites between runs, and a fresh emulator. The `warehouse`
fixture runs every scenario on DuckDB and on a throwaway PostgreSQL cluster
(started once per session by scripts/postgres).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from dbt_braze.emulator import ALL_PERMISSIONS, BrazeEmulator

from warehouses import PostgresServer, postgres_available, profile_yaml, start_postgres

REPO_ROOT = Path(__file__).resolve().parents[2]
API_KEY = "test-key-5f2b9c0e"

os.environ["DO_NOT_TRACK"] = "1"


@dataclass
class Result:
    exit_code: int
    output: str


@dataclass
class DbtProject:
    root: Path
    env: dict[str, str]
    kind: str = "duckdb"
    schema: str = "main"
    postgres: PostgresServer | None = None

    @property
    def db_path(self) -> Path:
        return self.root / "warehouse.duckdb"

    def write_model(self, sql: str, name: str = "braze_users") -> None:
        (self.root / "models" / f"{name}.sql").write_text(textwrap.dedent(sql))

    def write_schema(self, models: list[dict[str, Any]]) -> None:
        text = yaml.safe_dump({"version": 2, "models": models}, sort_keys=False)
        (self.root / "models" / "schema.yml").write_text(text)

    def dbt(self, *args: str, expect_success: bool = True) -> Result:
        from dbt.cli.main import dbtRunner

        with _env(self.env), contextlib.chdir(self.root):
            capture = io.StringIO()
            with contextlib.redirect_stdout(capture):
                result = dbtRunner().invoke(
                    [*args, "--project-dir", str(self.root), "--profiles-dir", str(self.root)]
                )
        output = capture.getvalue()
        if expect_success:
            assert result.success, f"dbt {' '.join(args)} failed:\n{output}\n{result.exception}"
        return Result(0 if result.success else 1, output)

    def braze(self, *args: str, env: dict[str, str] | None = None) -> Result:
        """`dbt-braze ...` in-process, as the console script runs it."""
        from dbt_braze.cli import main

        out, err = io.StringIO(), io.StringIO()
        with (
            _env({**self.env, **(env or {})}),
            contextlib.chdir(self.root),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            code = main(list(args))
        return Result(code, out.getvalue() + err.getvalue())

    def spawn_braze(
        self, *args: str, env: dict[str, str] | None = None, stderr: int = subprocess.STDOUT
    ) -> subprocess.Popen[str]:
        """`python -m dbt_braze ...` as a separate process (one the test can kill). Its stderr
        goes to its stdout pipe, or with `stderr=subprocess.PIPE` to a pipe of its own."""
        _release_dbt_duckdb()  # the process opens the database file
        return subprocess.Popen(
            [sys.executable, "-m", "dbt_braze", *args],
            cwd=self.root,
            env={**os.environ, **self.env, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Run SQL in the project's schema (DuckDB and PostgreSQL share the dialect used here)."""
        if self.kind == "postgres":
            assert self.postgres is not None
            import psycopg2

            options = f"-c search_path={self.schema}"
            with psycopg2.connect(self.postgres.dsn, options=options) as conn, conn.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchall() if cursor.description else []
        _release_dbt_duckdb()
        with duckdb.connect(str(self.db_path)) as conn:
            return conn.execute(sql).fetchall()


def _release_dbt_duckdb() -> None:
    """dbt-duckdb keeps its database open for the process's lifetime; close it so
    the test can open the file itself (dbt reopens it on its next use)."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    with DuckDBConnectionManager._LOCK:
        if DuckDBConnectionManager._ENV is not None:
            DuckDBConnectionManager._ENV.close()
            DuckDBConnectionManager._ENV = None


@contextlib.contextmanager
def _env(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def emulator() -> Iterator[BrazeEmulator]:
    emu = BrazeEmulator(api_keys={API_KEY: ALL_PERMISSIONS})
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


WAREHOUSES = ["duckdb", "postgres"]


def write_dbt_project(root: Path) -> None:
    """The dbt_project.yml of a test project (profile `braze_it`, models in models/)."""
    (root / "dbt_project.yml").write_text(
        textwrap.dedent("""\
        name: braze_it
        version: "1.0.0"
        config-version: 2
        profile: braze_it
        model-paths: ["models"]
        flags:
          send_anonymous_usage_stats: false
        """)
    )


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    assert postgres_available(), "PostgreSQL binaries not found: see scripts/postgres"
    server = start_postgres(tmp_path_factory.mktemp("pg"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=WAREHOUSES)
def warehouse(request: pytest.FixtureRequest) -> tuple[str, PostgresServer | None]:
    kind = str(request.param)
    return kind, request.getfixturevalue("postgres_server") if kind == "postgres" else None


@pytest.fixture
def project(
    tmp_path: Path,
    emulator: BrazeEmulator,
    warehouse: tuple[str, PostgresServer | None],
    request: pytest.FixtureRequest,
) -> DbtProject:
    kind, pg = warehouse
    schema = (
        "main" if kind == "duckdb" else "it_" + hashlib.md5(request.node.nodeid.encode()).hexdigest()[:12]
    )
    root = tmp_path / "project"
    (root / "models").mkdir(parents=True)
    write_dbt_project(root)
    (root / "profiles.yml").write_text(profile_yaml(kind, root, schema, pg))
    (root / "packages.yml").write_text(f"packages:\n  - local: {REPO_ROOT}\n")
    # what `dbt deps` does for a local package: a symlink
    (root / "dbt_packages").mkdir()
    (root / "dbt_packages" / "dbt_braze").symlink_to(REPO_ROOT)
    env = {"BRAZE_API_KEY": API_KEY, "BRAZE_REST_ENDPOINT": emulator.url, "DO_NOT_TRACK": "1"}
    return DbtProject(root, env, kind, schema, pg)


def users_sql(n: int, *, email_suffix: str = "example.com", plan: str = "'free'", extra: str = "") -> str:
    """A model of n users with mixed types; `plan` and `extra` are SQL expressions over i."""
    return f"""
        select i as user_id,
               'user' || i || '@{email_suffix}' as email,
               'Name ' || i as first_name,
               {plan} as plan,
               cast(i * 1.5 as decimal(10, 2)) as ltv,
               (i % 2 = 0) as is_vip,
               date '2024-01-01' + cast(i as integer) as signed_up_on
               {extra}
        from generate_series(1, {n}) t(i)
    """


def braze_model(**block: Any) -> dict[str, Any]:
    default = {
        "external_id": "user_id",
        "attributes": {
            "email": "email",
            "first_name": "first_name",
            "plan": "plan",
            "ltv": "ltv",
            "is_vip": "vip",
            "signed_up_on": "signed_up_on",
        },
    }
    default.update(block)
    return {"name": "braze_users", "config": {"meta": {"braze": default}}}


ATTRIBUTES = ("email", "first_name", "plan", "ltv", "vip", "signed_up_on")


def expected_profile(i: int, plan: str = "free") -> dict[str, object]:
    """What Braze must hold for user i of `users_sql`."""
    from datetime import date, timedelta

    return {
        "email": f"user{i}@example.com",
        "first_name": f"Name {i}",
        "plan": plan,
        "ltv": i * 1.5,
        "vip": i % 2 == 0,
        "signed_up_on": (date(2024, 1, 1) + timedelta(days=i)).isoformat(),
    }


def assert_braze_equals_model(emulator: BrazeEmulator, n: int) -> None:
    profiles = emulator.profiles
    missing = [i for i in range(1, n + 1) if profiles.get(str(i)) != expected_profile(i)]
    assert not missing, (
        f"{len(missing)} profiles differ from the model, e.g. user {missing[0]}: "
        f"{profiles.get(str(missing[0]))}"
    )
    assert len(profiles) == n
