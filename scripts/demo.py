"""The main job end to end on the embedded default: DuckDB plus the bundled Braze emulator.

1. `dbt build` the demo project (integration_tests/), whose on-run-end hook
   computes the pending Braze changes;
2. `dbt-braze sync` sends them to the emulator;
3. one user changes plan; `dbt run` + `dbt-braze sync` send exactly that value.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from dbt_braze.emulator import BrazeEmulator

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "integration_tests"
BIN = Path(sys.executable).parent
KEY = "demo-key"


def run(*command: str, env: dict[str, str]) -> None:
    print(f"\n$ {' '.join(command)}", flush=True)
    result = subprocess.run(command, cwd=PROJECT, env=env, text=True, capture_output=True)
    output = result.stdout + result.stderr
    # dbt's own log is long; keep the lines that tell the story
    keep = [
        line
        for line in output.splitlines()
        if command[0].endswith("dbt-braze")
        or "dbt_braze" in line
        or "ERROR" in line
        or "Completed" in line
        or "Done." in line
    ]
    print("\n".join(keep), flush=True)
    if result.returncode != 0:
        print(output)
        raise SystemExit(f"{command[0]} exited {result.returncode}")


DEMO_PERMISSIONS = {
    "users.track",
    "users.delete",
    "users.export.ids",
    "catalogs.get",
    "catalogs.add_items",
    "catalogs.update_items",
    "catalogs.replace_items",
    "catalogs.delete_items",
}


def main() -> int:
    with (
        tempfile.TemporaryDirectory() as workdir,
        BrazeEmulator(api_keys={KEY: DEMO_PERMISSIONS}) as emulator,
    ):
        # the catalog braze_products fills: created in Braze first, as a user would (dbt-braze
        # writes items, never fields)
        emulator.create_catalog("products", {"title": "string", "price": "number", "in_stock": "boolean"})
        env = dict(
            os.environ,
            DO_NOT_TRACK="1",
            BRAZE_API_KEY=KEY,
            BRAZE_REST_ENDPOINT=emulator.url,
            DBT_BRAZE_DUCKDB_PATH=str(Path(workdir) / "demo.duckdb"),
            DBT_TARGET_PATH=str(Path(workdir) / "target"),
            DBT_PROFILES_DIR=str(PROJECT),
        )
        print(f"Braze emulator at {emulator.url}; warehouse {env['DBT_BRAZE_DUCKDB_PATH']}")
        dbt, braze = str(BIN / "dbt"), str(BIN / "dbt-braze")
        run(dbt, "deps", env=env)
        run(dbt, "build", env=env)
        run(braze, "sync", env=env)
        first = emulator.stats()["data_points"]
        run(dbt, "run", "--vars", "{demo_upgrade: true}", env=env)
        run(braze, "sync", env=env)
        run(braze, "sync", env=env)
        stats = emulator.stats()
        print(f"\nBraze now holds {len(emulator.profiles)} profiles; user 2: {emulator.profile('2')}")
        (grace,) = emulator.users(email="grace.h@example.org")
        print(f"grace.h@example.org's subscription groups: {grace['subscription_groups']}")
        print(
            f"data points: first sync {first}, incremental sync {stats['data_points'] - first} "
            f"(a full resend would have cost {first} again); subscription changes "
            f"{stats['subscription_changes']}, no data points, none of them a subscribe "
            f"(unsubscribe_only: {stats['subscription_subscribes']} subscribes sent)"
        )
        print(
            f"events: {stats['events_accepted']} sent, each once "
            f"({stats['duplicate_events']} arrived twice): 3 orders, then Grace's new one"
        )
        print(
            f"catalog products: {sorted(emulator.catalog_items('products'))}; "
            f"{stats['catalog_post_requests']} POST (4 items), {stats['catalog_patch_requests']} PATCH "
            f"(one price), {stats['catalog_delete_requests']} DELETE (the iron teapot)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
