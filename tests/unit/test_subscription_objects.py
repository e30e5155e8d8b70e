"""Subscription groups on the Python side (contract, "Subscription states"): the objects the
engine sends and acknowledges, the counts of ModelReport and the report's lines. The
warehouse's rendering of group rows is in test_objects_sql.py; here `FakeStore` serves it
through `render_objects`, its restatement. Group rows are pending rows of value type
`subscription` whose attribute is `$subscription_group:<id>` (macros/subscriptions.sql)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from dbt_braze.config import SUBSCRIPTION_GROUP_PREFIX, ModelSync, SubscriptionGroupMapping, Subscriptions
from dbt_braze.kinds.addressing import Addressing
from dbt_braze.kinds.base import UNSENT
from dbt_braze.kinds.users import unset_sendable, upsert_sendable
from dbt_braze.report import model_summary, report_json
from dbt_braze.rows import ROW_SEPARATOR, Row

from fakes import FakeBraze, FakeStore, Renderer, make_model, render_objects, run

NEWS, SMS = "news-1", "sms-2"
WITHHELD = "subscribed:withheld"  # a subscribe under unsubscribe_only (macros/subscriptions.sql)


def group(key: str, group_id: str, state: str | None, *, new: bool = True) -> Row:
    """A pending row of one subscription group."""
    attribute = SUBSCRIPTION_GROUP_PREFIX + group_id
    return (key, attribute, state, "subscription", f"h:{key}:{group_id}:{state}", new)


def attribute(key: str, name: str, value: str, *, new: bool = True) -> Row:
    return (key, name, value, "string", f"h:{key}:{name}", new)


def grouped_model(subscriptions: Subscriptions = "unsubscribe_only", on_removed: str = "ignore") -> ModelSync:
    groups = (SubscriptionGroupMapping("newsletter", NEWS), SubscriptionGroupMapping("sms", SMS))
    return dataclasses.replace(
        make_model(on_removed=on_removed), subscription_groups=groups, subscriptions=subscriptions
    )


def entry(state: str) -> dict[str, str]:
    return {"subscription_group_id": NEWS, "subscription_state": state}


# -- objects -------------------------------------------------------------------------------------


def test_group_states_ride_in_the_users_one_object_and_are_no_data_points() -> None:
    (row,) = render_objects(
        [attribute("u1", "plan", "gold"), group("u1", NEWS, "unsubscribed"), group("u1", SMS, WITHHELD)]
    )
    sendable = upsert_sendable((*row, None), b'{"external_id":"u1",')
    assert sendable.body == (
        b'{"external_id":"u1","plan":"gold","subscription_groups":'
        b'[{"subscription_group_id":"news-1","subscription_state":"unsubscribed"}]}'
    )
    assert (sendable.data_points, sendable.subscription_changes, sendable.subscribes_withheld) == (1, 1, 1)
    assert sendable.outcome == "created"
    # every change is acknowledged, the withheld subscribe included
    assert sendable.ack[1].split(ROW_SEPARATOR) == [
        "$subscription_group:news-1",
        "$subscription_group:sms-2",
        "plan",
    ]


def test_an_object_of_withheld_subscribes_only_is_unsent() -> None:
    (row,) = render_objects([group("u1", NEWS, WITHHELD)])
    sendable = upsert_sendable((*row, None), b'{"external_id":"u1",')
    assert sendable.outcome == UNSENT
    assert (sendable.data_points, sendable.subscription_changes, sendable.subscribes_withheld) == (0, 0, 1)


def test_removed_users_group_states_are_forgotten_not_unset() -> None:
    names = ROW_SEPARATOR.join(["plan", SUBSCRIPTION_GROUP_PREFIX + NEWS])
    unset = unset_sendable(Addressing("external_id"), "u1", names)
    assert unset.body == b'{"external_id":"u1","_update_existing_only":true,"plan":null}'
    assert (unset.data_points, unset.outcome, unset.ack) == (1, "unset", ("u1", names, None))
    only_groups = unset_sendable(Addressing("external_id"), "u2", SUBSCRIPTION_GROUP_PREFIX + NEWS)
    assert (only_groups.outcome, only_groups.data_points) == (UNSENT, 0)


# -- the engine ----------------------------------------------------------------------------------


def test_the_engine_sends_group_changes_and_acknowledges_withheld_subscribes_without_a_request() -> None:
    warehouse = FakeStore(
        upserts=[
            attribute("u1", "plan", "gold"),
            group("u1", NEWS, "unsubscribed"),
            group("u2", NEWS, "subscribed"),  # under mirror
            group("u3", NEWS, WITHHELD),
            group("u3", SMS, WITHHELD),
        ]
    )
    braze = FakeBraze()
    report = run(warehouse, braze, grouped_model())
    assert braze.sent_objects == [
        {"external_id": "u1", "plan": "gold", "subscription_groups": [entry("unsubscribed")]},
        {"external_id": "u2", "subscription_groups": [entry("subscribed")]},
    ]
    assert len(braze.track_calls) == 1 and report.requests == 1
    assert (report.data_points, report.attributes_sent) == (1, 1)
    assert (report.subscription_changes, report.subscribes_withheld) == (2, 2)
    assert (report.users_created, report.users_updated) == (2, 0)  # u3 got nothing
    acked = {(k, a) for k, a, _ in warehouse.all_acknowledged}
    assert {("u3", SUBSCRIPTION_GROUP_PREFIX + NEWS), ("u3", SUBSCRIPTION_GROUP_PREFIX + SMS)} <= acked
    assert len(acked) == 5


def test_a_dry_run_counts_group_changes_and_withheld_subscribes() -> None:
    warehouse = FakeStore(upserts=[group("u1", NEWS, "unsubscribed"), group("u2", NEWS, WITHHELD)])
    report = run(warehouse, None, grouped_model(), dry_run=True)
    assert (report.requests, report.data_points) == (1, 0)
    assert (report.subscription_changes, report.subscribes_withheld) == (1, 1)
    assert warehouse.acknowledged == []


def test_a_withheld_only_batch_sends_no_request() -> None:
    warehouse = FakeStore(upserts=[group(f"u{i}", NEWS, WITHHELD) for i in range(3)])
    braze = FakeBraze()
    report = run(warehouse, braze, grouped_model())
    assert braze.track_calls == [] and report.requests == 0
    assert report.subscribes_withheld == 3 and len(warehouse.all_acknowledged) == 3


def test_removed_users_groups_are_acknowledged_without_being_sent() -> None:
    removed = [(k, SUBSCRIPTION_GROUP_PREFIX + NEWS, None, None, None, False) for k in ("u1", "u2")]
    removed.append(("u1", "plan", None, None, None, False))
    warehouse = FakeStore(removed=removed)
    braze = FakeBraze()
    report = run(warehouse, braze, grouped_model(on_removed="unset"))
    assert braze.sent_objects == [{"external_id": "u1", "_update_existing_only": True, "plan": None}]
    assert (report.users_unset, report.attributes_unset, report.data_points) == (1, 1, 1)
    assert sorted(warehouse.all_acknowledged) == sorted(
        [
            ("u1", "$subscription_group:news-1", None),
            ("u1", "plan", None),
            ("u2", "$subscription_group:news-1", None),
        ]
    )


# -- the report ----------------------------------------------------------------------------------


def test_the_report_shows_subscription_changes_on_lines_of_their_own() -> None:
    warehouse = FakeStore(upserts=[group("u1", NEWS, "unsubscribed"), group("u2", NEWS, WITHHELD)])
    model = grouped_model()
    report = run(warehouse, FakeBraze(), model)
    text = model_summary(model, report, dry_run=False)
    counted = [line.rsplit(None, 1) for line in text.splitlines()[1:] if line.split()[-1].isdigit()]
    lines = {label.strip(): count for label, count in counted}
    assert lines["data points sent"] == "0"
    assert lines["subscription changes sent"] == "1"
    assert lines["subscribes withheld, not sent"] == "1"
    planned = model_summary(model, report, dry_run=True)
    assert "subscription changes would be sent" in planned
    document = report_json(model, report, dry_run=False, error=None)
    counts = (document["subscription_changes"], document["subscribes_withheld"], document["data_points"])
    assert counts == (1, 1, 0)


def test_the_report_of_a_model_without_groups_has_no_subscription_lines() -> None:
    report = run(FakeStore(upserts=[attribute("u1", "plan", "gold")]), FakeBraze())
    assert "subscription" not in model_summary(make_model(), report, dry_run=False)
    mirror = grouped_model("mirror")
    assert "withheld" not in model_summary(mirror, report, dry_run=False)


# -- the mappings the macros take ------------------------------------------------------------------


@pytest.fixture(scope="module")
def renderer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Renderer]:
    rendering = Renderer(tmp_path_factory.mktemp("subscriptions"))
    yield rendering
    rendering.close()


@pytest.mark.parametrize("subscriptions", ["unsubscribe_only", "mirror"])
def test_python_and_the_hook_name_the_groups_alike(renderer: Renderer, subscriptions: Subscriptions) -> None:
    """The sync's mappings (ModelSync.mapping_specs: --full-refresh, a re-diff) and the hook's
    (_braze_group_mappings) must be the same, or a re-diff would see every group as new."""
    model = grouped_model(subscriptions)
    groups = [{"column": g.column, "group_id": g.group_id} for g in model.subscription_groups]
    from_hook = renderer.adapter.execute_macro(
        "_braze_group_mappings",
        project="dbt_braze",
        kwargs={"groups": groups, "subscriptions": subscriptions},
    )
    specs = model.mapping_specs()
    assert specs[len(specs) - len(groups) :] == list(from_hook)
    assert [s["attribute"] for s in from_hook] == ["$subscription_group:news-1", "$subscription_group:sms-2"]
