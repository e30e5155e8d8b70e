"""Warehouses for the integration tests: a throwaway PostgreSQL, and the
profiles.yml text for each kind of warehouse (DuckDB, PostgreSQL, Spark).

No tests here. Typical use in a conftest::

    @pytest.fixture(scope="session")
    def pg(tmp_path_factory):
        if not postgres_available():
            pytest.skip("PostgreSQL binaries not installed")
        server = start_postgres(tmp_path_factory.mktemp("pg"))
        yield server
        server.stop()

    (root / "profiles.yml").write_text(profile_yaml("postgres", root, "it_1", pg))
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
POSTGRES_SCRIPT = REPO_ROOT / "scripts" / "postgres"

PROFILE_NAME = "braze_it"
TARGET_NAME = "dev"
KINDS = ("duckdb", "postgres", "spark")


# --- PostgreSQL --------------------------------------------------------------


@dataclass
class PostgresServer:
    """A running cluster started by scripts/postgres; `stop()` stops it and
    removes its directory."""

    host: str
    port: int
    user: str
    database: str
    dir: Path = field(repr=False)

    @property
    def env(self) -> dict[str, str]:
        """PGHOST/PGPORT/PGUSER/PGDATABASE, for psql or psycopg2 without arguments."""
        return {
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGUSER": self.user,
            "PGDATABASE": self.database,
        }

    @property
    def dsn(self) -> str:
        return f"host={self.host} port={self.port} user={self.user} dbname={self.database}"

    def stop(self) -> None:
        _run_script("stop", self.dir)


def _pg_bindir() -> Path | None:
    """The same search as scripts/postgres: $PG_BINDIR, /usr/lib/postgresql/15,
    the newest /usr/lib/postgresql/*, pg_config --bindir, pg_ctl on PATH."""
    candidates: list[Path] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(Path(os.environ["PG_BINDIR"]))
    candidates.append(Path("/usr/lib/postgresql/15/bin"))
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: [int(x) if x.isdigit() else 0 for x in p.parent.name.split(".")],
        reverse=True,
    )
    candidates.extend(versions)
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            candidates.append(Path(out))
        except (OSError, subprocess.SubprocessError):
            pass
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        candidates.append(Path(pg_ctl).parent)
    for d in candidates:
        if all(os.access(d / b, os.X_OK) for b in ("pg_ctl", "initdb", "postgres")):
            return d
    return None


def postgres_available() -> bool:
    """True when PostgreSQL server binaries (initdb, pg_ctl, postgres) exist."""
    return POSTGRES_SCRIPT.exists() and _pg_bindir() is not None


def start_postgres(base_dir: Path) -> PostgresServer:
    """Start (or reuse, if one is running there) a cluster in `base_dir`.

    `base_dir` belongs to the cluster from then on: `stop()` deletes it. The
    server listens on 127.0.0.1 only, on a port the OS picked, with trust
    authentication, UTC time zone and no durability. Takes ~1.5-2 s cold.
    """
    out = _run_script("start", Path(base_dir))
    values: dict[str, str] = {}
    for line in out.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    missing = {"PGHOST", "PGPORT", "PGUSER", "PGDATABASE"} - values.keys()
    if missing:
        raise RuntimeError(f"scripts/postgres start printed no {sorted(missing)}:\n{out}")
    return PostgresServer(
        host=values["PGHOST"],
        port=int(values["PGPORT"]),
        user=values["PGUSER"],
        database=values["PGDATABASE"],
        dir=Path(base_dir),
    )


def _run_script(command: str, directory: Path) -> str:
    proc = subprocess.run(
        ["bash", str(POSTGRES_SCRIPT), command, str(directory)],
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"scripts/postgres {command} {directory} failed "
            f"(exit {proc.returncode}):\n{proc.stdout}{proc.stderr}"
        )
    return proc.stdout


# --- Spark -------------------------------------------------------------------


def spark_available() -> bool:
    """True when dbt-spark's session method can run here: pyspark and dbt-spark
    importable and a `java` (17+) on PATH or under $JAVA_HOME."""
    if importlib.util.find_spec("pyspark") is None:
        return False
    if importlib.util.find_spec("dbt.adapters.spark") is None:
        return False
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.access(Path(java_home) / "bin" / "java", os.X_OK):
        return True
    return shutil.which("java") is not None


# --- profiles.yml ------------------------------------------------------------


def profile_yaml(kind: str, root: Path, schema: str, pg: PostgresServer | None = None) -> str:
    """profiles.yml text: profile `braze_it`, target `dev`, one thread.

    - duckdb: the database file is root/warehouse.duckdb.
    - postgres: the server `pg` (required).
    - spark: dbt-spark's in-process session (pyspark + a local JVM); tables
      under root/spark-warehouse, the Derby metastore under root
      (root/metastore_db, root/derby.log), Spark UI off, driver bound to
      127.0.0.1, session time zone UTC.
    """
    root = Path(root).resolve()
    output: dict[str, Any]
    if kind == "duckdb":
        output = {"type": "duckdb", "path": str(root / "warehouse.duckdb"), "schema": schema, "threads": 1}
    elif kind == "postgres":
        if pg is None:
            raise ValueError("profile_yaml('postgres', ...) needs the PostgresServer")
        output = {
            "type": "postgres",
            "host": pg.host,
            "port": pg.port,
            "user": pg.user,
            "password": "",
            "dbname": pg.database,
            "schema": schema,
            "threads": 1,
        }
    elif kind == "spark":
        output = {
            "type": "spark",
            "method": "session",
            "host": "NA",
            "schema": schema,
            "threads": 1,
            "server_side_parameters": {
                "spark.sql.warehouse.dir": str(root / "spark-warehouse"),
                "spark.driver.extraJavaOptions": f"-Dderby.system.home={root}",
                "spark.ui.enabled": "false",
                "spark.driver.host": "127.0.0.1",
                "spark.driver.bindAddress": "127.0.0.1",
                "spark.sql.session.timeZone": "UTC",
            },
        }
    else:
        raise ValueError(f"unknown warehouse kind {kind!r} (expected one of {KINDS})")
    return yaml.safe_dump(
        {PROFILE_NAME: {"target": TARGET_NAME, "outputs": {TARGET_NAME: output}}}, sort_keys=False
    )
