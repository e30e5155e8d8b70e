"""Kind catalog end to end: real dbt, DuckDB and PostgreSQL, the emulator over real sockets.

One project per test, several syncs each:
- the lifecycle: items created whole (POST; one that Braze already held goes as PUT and the
  report says so), then a change sends only the changed fields (PATCH), a removed item is
  deleted, local checks (a bad id, NaN, a value over 5,000 characters) keep items in the
  warehouse while the rest is delivered, a value Braze cannot coerce is isolated by splitting
  its request down to the one item, --full-refresh replaces every item with PUT; validate and
  plan report a missing field and a missing catalog (exit 2), or say they skipped the check
  without a key;
- faults (503s, connections dropped after Braze applied a request) end with the catalog
  equal to the model;
- a sync killed mid-run, then a rerun, end with the catalog equal to the model.
"""

from __future__ import annotations

import json
import re
import signal
import time
from typing import Any

import pytest

from dbt_braze.emulator import BrazeEmulator

from harness import DbtProject

pytestmark = pytest.mark.integration

FIELDS = {"title": "string", "price": "number", "in_stock": "boolean", "weight": "number"}


def products_sql(
    n: int, *, price: str = "cast(i * 1.5 as double precision)", drop: int | None = None, extra: str = ""
) -> str:
    """Items p1..pn; `price` an SQL expression over i; item `drop` left out; `extra` more rows."""
    where = f"where i <> {drop}" if drop else ""
    return f"""
        select 'p' || i as product_id, 'Product ' || i as title, {price} as price,
               (i % 2 = 0) as in_stock, cast(null as varchar(20)) as weight
        from generate_series(1, {n}) t(i)
        {where}
        {extra}
    """


def catalog_model(name: str, catalog: str = "products", **extra: Any) -> dict[str, Any]:
    block = {
        "kind": "catalog",
        "catalog": catalog,
        "id": "product_id",
        "fields": {"title": "title", "price": "price", "in_stock": "in_stock", "weight": "weight"},
        **extra,
    }
    return {"name": name, "config": {"meta": {"braze": block}}}


def expected_items(n: int, *, price: Any = None, drop: int | None = None) -> dict[str, dict[str, Any]]:
    return {
        f"p{i}": {
            "title": f"Product {i}",
            "price": price(i) if price else i * 1.5,
            "in_stock": i % 2 == 0,
        }
        for i in range(1, n + 1)
        if i != drop
    }


def items_of(emulator: BrazeEmulator, catalog: str = "products") -> dict[str, dict[str, Any]]:
    """The catalog's items, without the fields that hold nothing."""
    return {
        item_id: {k: v for k, v in item.items() if v is not None and k != "id"}
        for item_id, item in emulator.catalog_items(catalog).items()
    }


def sent_items(emulator: BrazeEmulator, since: int = 0) -> list[dict[str, Any]]:
    """Items of the catalog write requests Braze answered 202, from the log's `since`-th entry."""
    return [
        item
        for logged in emulator.requests_log[since:]
        if "/catalogs/" in logged.path and logged.status == 202
        for item in logged.body["items"]
    ]


BAD_ROWS = """
    union all select 'bad id!', 'Bad', 1.0, true, null
    union all select 'nan-price', 'NaN', cast('NaN' as double precision), true, null
    union all select 'long-title', repeat('x', 5001), 2.0, true, null
    union all select 'heavy', 'Heavy', 3.0, true, 'very'
"""


def test_catalog_lifecycle(project: DbtProject, emulator: BrazeEmulator) -> None:
    n = 60  # two requests of items
    emulator.configure(requests_log_size=10_000)
    emulator.create_catalog("products", FIELDS)
    emulator.create_catalog("colours", {"name": "string"})
    project.write_model(products_sql(n, extra=BAD_ROWS), "cat_products")
    project.write_model("select 'c1' as product_id, 'red' as title", "cat_missing")
    project.write_schema(
        [
            catalog_model("cat_products", on_removed="delete"),
            {
                "name": "cat_missing",
                "config": {
                    "meta": {
                        "braze": {
                            "kind": "catalog",
                            "catalog": "colours",
                            "id": "product_id",
                            "fields": {"title": "colour"},
                        }
                    }
                },
            },
        ]
    )
    project.dbt("run")

    # validate and plan read the catalogs' fields: a field the catalog lacks is an error
    validate = project.braze("validate")
    assert validate.exit_code == 2, validate.output
    assert "cat_missing" in validate.output and "`colour`" in validate.output
    assert not [line for line in validate.output.splitlines() if line.lstrip().startswith("cat_products")]
    skipped = project.braze("validate", env={"BRAZE_API_KEY": ""})
    assert skipped.exit_code == 0, skipped.output
    assert "skipped" in skipped.output and "catalog" in skipped.output
    plan = project.braze("plan", "--select", "cat_products", "--output", "json")
    assert plan.exit_code == 0, plan.output
    planned = json.loads(plan.output)["models"][0]
    assert planned["kind"] == "catalog" and planned["items_created"] == n + 1  # `heavy` passes locally
    assert planned["rows_rejected"] == 3 and planned["data_points"] == 0
    assert planned["requests"] == 2
    assert planned["sample_payloads"][1] == {
        "id": "p1",
        "in_stock": False,
        "price": 1.5,
        "title": "Product 1",
    }

    # the first sync: every item whole; local rejections and Braze's kept apart; p1 was created
    # outside dbt-braze (with a field the model leaves empty): its POST falls back to PUT
    _put_items(emulator, [{"id": "p1", "weight": 9, "title": "Old"}])
    first = project.braze("sync", "--select", "cat_products")
    assert first.exit_code == 0, first.output
    assert "1 items existed in Braze already: replaced with PUT" in first.output
    assert re.search(rf"items created +{n - 1}\n", first.output), first.output
    assert "rows rejected" in first.output and "unable-to-coerce-value" in first.output
    assert items_of(emulator) == expected_items(n)
    reasons = dict(project.query("select braze_key, min(reason) from braze_rejected group by 1"))
    assert "letters, digits, - and _" in reasons["catalog:bad id!"]
    assert "NaN" in reasons["catalog:nan-price"]
    assert "5001 characters" in reasons["catalog:long-title"]
    # Braze refused the request that held `heavy`: split until it was alone, its error recorded
    assert "unable-to-coerce-value" in reasons["catalog:heavy"]
    assert "heavy" not in emulator.catalog_items("products")
    # a second sync sends nothing
    log_size = len(emulator.requests_log)
    again = project.braze("sync", "--select", "cat_products")
    assert again.exit_code == 0, again.output
    assert sent_items(emulator, log_size) == []

    # a change: only the changed fields; a removed item deleted; a new one created whole
    project.write_model(
        products_sql(
            n + 1,
            price="cast(case when i = 5 then 99.5 else i * 1.5 end as double precision)",
            drop=7,
            extra="union all select 'p8x', null, null, null, null",
        ).replace(
            "'Product ' || i as title", "case when i = 6 then 'Renamed' else 'Product ' || i end as title"
        ),
        "cat_products",
    )
    project.dbt("run")
    log_size = len(emulator.requests_log)
    second = project.braze("sync", "--select", "cat_products", "--output", "json")
    assert second.exit_code == 0, second.output
    report = json.loads(second.output)["models"][0]
    assert (report["items_created"], report["items_updated"], report["items_deleted"]) == (2, 2, 1)
    sent = sent_items(emulator, log_size)
    assert sorted(sent, key=lambda item: item["id"]) == [
        {"id": "p5", "price": 99.5},
        {"id": "p6", "title": "Renamed"},
        {"id": "p61", "in_stock": False, "price": 91.5, "title": "Product 61"},
        {"id": "p7"},
        {"id": "p8x"},  # every field null: created with its id alone
    ]
    expected = expected_items(n + 1, price=lambda i: 99.5 if i == 5 else i * 1.5, drop=7)
    expected["p6"]["title"] = "Renamed"
    expected["p8x"] = {}
    assert items_of(emulator) == expected

    # --full-refresh: every item replaced whole with PUT
    log_size = len(emulator.requests_log)
    refresh = project.braze("sync", "--select", "cat_products", "--full-refresh", "--output", "json")
    assert refresh.exit_code == 0, refresh.output
    assert json.loads(refresh.output)["models"][0]["items_replaced"] == n + 1
    assert len(sent_items(emulator, log_size)) == n + 1
    assert items_of(emulator) == expected
    runs = project.query(
        "select users_created, users_deleted, rows_rejected from braze_sync_runs "
        "where status = 'success' order by recorded_at"
    )
    assert [tuple(run) for run in runs] == [(n, 0, 4), (0, 0, 0), (2, 1, 0), (0, 0, 0)]
    # each row of the run history and of the rejections names its kind
    assert project.query("select distinct kind from braze_sync_runs") == [("catalog",)]
    assert project.query("select distinct kind from braze_rejected") == [("catalog",)]


def _put_items(emulator: BrazeEmulator, items: list[dict[str, Any]]) -> None:
    """Items written straight to the emulator, as another tool would (a PUT of its own)."""
    import urllib.request

    request = urllib.request.Request(
        f"{emulator.url}/catalogs/products/items",
        data=json.dumps({"items": items}).encode(),
        method="PUT",
        headers={"Authorization": f"Bearer {_api_key()}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 202


def _api_key() -> str:
    from harness import API_KEY

    return API_KEY


N_FAULTS = 1000


def test_faults_end_with_the_catalog_equal_to_the_model(project: DbtProject, emulator: BrazeEmulator) -> None:
    emulator.create_catalog("products", FIELDS)
    project.write_model(products_sql(N_FAULTS), "cat_faults")
    project.write_schema([catalog_model("cat_faults", on_removed="delete")])
    project.dbt("run")
    emulator.configure(error_rate=0.2, drop_after_apply_rate=0.15, seed=5, requests_log_size=10_000)
    first = project.braze("sync", "--concurrency", "2")
    stats = emulator.stats()
    assert stats["status_counts"].get(503, 0) > 0 and stats["dropped_connections"] > 0, stats
    assert first.exit_code == 0, first.output
    assert items_of(emulator) == expected_items(N_FAULTS)
    # a change under the same faults: a retried PATCH or DELETE leaves the same catalog
    project.write_model(products_sql(N_FAULTS, price="i * 2.0", drop=3), "cat_faults")
    project.dbt("run")
    second = project.braze("sync", "--concurrency", "2")
    assert second.exit_code == 0, second.output
    assert items_of(emulator) == expected_items(N_FAULTS, price=lambda i: i * 2.0, drop=3)


def test_a_sync_killed_mid_run_then_rerun(project: DbtProject, emulator: BrazeEmulator) -> None:
    n = 3000  # 60 requests of 50
    emulator.create_catalog("products", FIELDS)
    project.write_model(products_sql(n), "cat_kill")
    project.write_schema([catalog_model("cat_kill")])
    project.dbt("run")
    emulator.configure(latency_ms=40)
    process = project.spawn_braze("sync", "--checkpoint-objects", "200", "--concurrency", "2")
    deadline = time.monotonic() + 60
    while len(emulator.catalog_items("products")) < 500 and time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert 0 < len(emulator.catalog_items("products")) < n
    emulator.configure(latency_ms=0)
    rerun = project.spawn_braze("sync")
    output, _ = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, output
    assert items_of(emulator) == expected_items(n)
    # what the killed sync delivered but had not recorded goes again: its POSTs find the items
    # there and fall back to PUT; the state records every item once
    keys = project.query("select count(distinct braze_key) from braze_state where attribute = '$item'")
    assert keys[0][0] == n
