"""Kind catalog in the engine, on the fakes: which method each item goes by, what it sends,
what the local checks refuse, what is acknowledged and how the report counts it."""

from __future__ import annotations

import dataclasses

import pytest

from dbt_braze.config import CATALOG_ITEM_MARKER, AttributeMapping, ModelSync
from dbt_braze.kinds.base import LocalRejection
from dbt_braze.kinds.catalogs import check_keys, id_problem
from dbt_braze.report import model_summary, report_json
from dbt_braze.rows import Row
from tests.fakes import FakeBraze, FakeStore, make_model, run

PREFIX = "catalog:"


def catalog_model(on_removed: str = "ignore") -> ModelSync:
    return dataclasses.replace(
        make_model(),
        kind="catalog",
        catalog="products",
        id_column="sku",
        on_removed=on_removed,  # type: ignore[arg-type]
        attributes=(AttributeMapping("price", "price"), AttributeMapping("title", "title")),
    )


def item_rows(ids: list[str], *, new: bool, fields: tuple[str, ...] = ("price", "title")) -> list[Row]:
    """The pending rows of items (as braze_pending__<model> holds them): a new item has its
    `$item` marker and every field, a changed one its changed fields."""
    values = {"price": ("3.5", "number"), "title": ("Tea", "string")}
    rows: list[Row] = []
    for item in ids:
        key = PREFIX + item
        if new:
            rows.append((key, CATALOG_ITEM_MARKER, item, "string", f"h:{item}", True))
        for name in fields:
            text, value_type = values[name]
            rows.append((key, name, text, value_type, f"h:{item}:{name}", new))
    return rows


def test_new_items_are_created_whole_changed_ones_get_their_changed_fields_50_per_request() -> None:
    new_ids = [f"n{i:03d}" for i in range(60)]
    rows = item_rows(new_ids, new=True) + item_rows(["c1", "c2"], new=False, fields=("price",))
    store, braze = FakeStore(upserts=rows), FakeBraze()
    report = run(store, braze, catalog_model())
    methods = [(catalog, method, len(items)) for catalog, method, items in braze.catalog_calls]
    assert methods == [("products", "POST", 50), ("products", "POST", 10), ("products", "PATCH", 2)]
    assert braze.catalog_calls[0][2][0] == {"id": "n000", "price": 3.5, "title": "Tea"}
    assert braze.catalog_calls[2][2] == [{"id": "c1", "price": 3.5}, {"id": "c2", "price": 3.5}]
    assert store.reads[:2] == ["braze_read_objects_sql is_new=True", "braze_read_objects_sql is_new=False"]
    assert (report.items_created, report.items_updated, report.requests) == (60, 2, 3)
    assert report.data_points == 0  # catalog writes are not data points
    # the state advances for every item Braze accepted, the marker with a new item
    acked = {(key, attribute) for key, attribute, _ in store.all_acknowledged}
    assert (PREFIX + "n000", CATALOG_ITEM_MARKER) in acked and (PREFIX + "c1", "price") in acked
    assert len(acked) == 60 * 3 + 2


def test_local_checks_refuse_the_item_and_deliver_the_rest() -> None:
    rows = item_rows(["ok", "bad id", "x" * 251], new=True)
    store, braze = FakeStore(upserts=rows), FakeBraze(reject={"ok2": "unused"})
    report = run(store, braze, catalog_model())
    assert [item["id"] for _, _, items in braze.catalog_calls for item in items] == ["ok"]
    reasons = {key: reason for key, _, _, reason in store.all_rejected}
    assert "letters, digits, - and _" in reasons[PREFIX + "bad id"]
    assert "251 characters" in reasons[PREFIX + "x" * 251]
    assert report.rows_rejected == 2 and report.items_created == 1


def test_braze_rejections_are_recorded_and_existing_items_counted_as_replaced() -> None:
    rows = item_rows(["a", "b", "c"], new=True)
    braze = FakeBraze(reject={"b": "unable-to-coerce-value: price"})
    braze.existing_items = {"c"}
    store = FakeStore(upserts=rows)
    report = run(store, braze, catalog_model())
    assert (report.items_created, report.items_existed, report.rows_rejected) == (1, 1, 1)
    assert {key for key, *_ in store.all_rejected} == {PREFIX + "b"}
    assert report.counts()["users_created"] == 2  # the run history's column counts items
    text = model_summary(catalog_model(), report, dry_run=False)
    assert "1 items existed in Braze already: replaced with PUT" in text
    assert "rejected id=b: unable-to-coerce-value: price" in text
    document = report_json(catalog_model(), report, dry_run=False, error=None)
    assert (document["kind"], document["items_created"], document["items_existed"]) == ("catalog", 1, 1)


def test_removed_items_are_deleted_only_with_on_removed_delete() -> None:
    removed = [(PREFIX + "gone", CATALOG_ITEM_MARKER), (PREFIX + "gone", "price")]
    braze = FakeBraze()
    report = run(FakeStore(removed=removed), braze, catalog_model("delete"))
    assert braze.catalog_calls == [("products", "DELETE", [{"id": "gone"}])]
    assert report.items_deleted == 1
    ignoring = FakeBraze()
    run(FakeStore(removed=removed), ignoring, catalog_model())
    assert ignoring.catalog_calls == []


def test_full_refresh_replaces_every_item_with_put() -> None:
    store, braze = FakeStore(full_refresh=item_rows(["a", "b"], new=False)), FakeBraze()
    report = run(store, braze, catalog_model("delete"), full_refresh=True)
    assert store.reads == [FakeStore.CATALOG_FULL_REFRESH]
    assert braze.catalog_calls == [
        (
            "products",
            "PUT",
            [{"id": "a", "price": 3.5, "title": "Tea"}, {"id": "b", "price": 3.5, "title": "Tea"}],
        )
    ]
    assert report.items_replaced == 2
    mappings = store.full_refresh_args[0][2]
    assert mappings[-1] == {"column": "sku", "attribute": CATALOG_ITEM_MARKER}


def test_dry_run_counts_requests_and_sends_nothing() -> None:
    store = FakeStore(upserts=item_rows([f"n{i}" for i in range(120)], new=True))
    report = run(store, None, catalog_model(), dry_run=True)
    assert (report.items_created, report.requests) == (120, 3)
    assert report.sample_payloads[0] == {"id": "n0", "price": 3.5, "title": "Tea"}
    assert store.all_acknowledged == []


def test_item_ids_and_object_keys_braze_refuses() -> None:
    assert id_problem("sku-1_A") is None
    assert "characters other than" in (id_problem("a.b") or "")
    assert "at most 250" in (id_problem("a" * 251) or "")
    check_keys('"meta":{"ok":1}')
    with pytest.raises(LocalRejection, match="holds `.` or `\\$`"):
        check_keys('"meta":{"a.b":1}')
    with pytest.raises(LocalRejection):
        check_keys('"meta":[{"$x":1}]')


def test_catalog_keys_are_their_own() -> None:
    model = catalog_model()
    assert model.key_prefix == PREFIX
    assert [spec["attribute"] for spec in model.mapping_specs()] == ["price", "title", CATALOG_ITEM_MARKER]


def test_an_object_value_with_a_key_braze_refuses_is_rejected_locally() -> None:
    rows = item_rows(["ok", "dotted"], new=True)
    rows.append((PREFIX + "dotted", "meta", '{"a.b":1}', "json", "h:meta", True))
    store, braze = FakeStore(upserts=rows), FakeBraze()
    report = run(store, braze, catalog_model())
    assert [item["id"] for _, _, items in braze.catalog_calls for item in items] == ["ok"]
    assert report.rejection_samples == [
        (PREFIX + "dotted", 'rejected before sending: key "a.b" holds `.` or `$`, which Braze refuses')
    ]
