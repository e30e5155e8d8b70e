"""`validate_model` for blocks of kind `events` and `purchases` (contract, "Events and purchases")."""

from __future__ import annotations

from typing import Any

import pytest

from dbt_braze.config import AttributeMapping, BlockSource, EventColumns, ModelSync, validate_model

MODEL = "braze_events"
HERE = "config.meta.braze"
COLUMNS = ["user_id", "braze_uid", "event_id", "event_name", "Occurred_At"]
COLUMNS += ["plan", "amount", "sku", "cur", "qty"]


def validate(block: Any, columns: list[str] | None = COLUMNS) -> tuple[ModelSync | None, list[str]]:
    return validate_model(MODEL, "model.shop.braze_events", BlockSource(HERE, block), {}, columns)


def event(**extra: Any) -> dict[str, Any]:
    block = {"kind": "events", "external_id": "user_id", "event_id": "event_id", "name": "event_name"}
    return {**block, "time": "occurred_at", **extra}


def purchase(**extra: Any) -> dict[str, Any]:
    block = {"kind": "purchases", "external_id": "user_id", "event_id": "event_id", "product_id": "sku"}
    return {**block, "currency": "cur", "price": "amount", "time": "occurred_at", **extra}


def test_an_events_block_gives_its_columns_properties_and_backfill() -> None:
    config, problems = validate(event(properties={"plan": "plan", "AMOUNT": "amount"}, backfill="all"))
    assert problems == []
    assert config is not None and config.kind == "events"
    assert config.events == EventColumns("event_id", "Occurred_At", (("name", "event_name"),), "all")
    assert config.attributes == (AttributeMapping("amount", "amount"), AttributeMapping("plan", "plan"))
    assert (config.id_field, config.id_column, config.mode, config.on_removed) == (
        "external_id",
        "user_id",
        "upsert",
        "ignore",
    )


def test_backfill_defaults_to_none_and_takes_a_date() -> None:
    config, _ = validate(event())
    assert config is not None and config.events is not None and config.events.backfill == "none"
    config, _ = validate(event(backfill="2026-01-31"))
    assert config is not None and config.events is not None and config.events.backfill == "2026-01-31"


def test_a_purchases_block_with_and_without_quantity() -> None:
    config, problems = validate(purchase())
    assert problems == [] and config is not None and config.events is not None
    assert config.events.fields == (("product_id", "sku"), ("currency", "cur"), ("price", "amount"))
    config, _ = validate(purchase(quantity="qty", braze_id="braze_uid", external_id=None))
    assert config is None  # external_id: null is not a column name
    block = purchase(quantity="qty")
    del block["external_id"]
    config, problems = validate({**block, "braze_id": "braze_uid"})
    assert problems == [] and config is not None and config.events is not None
    assert config.events.fields[-1] == ("quantity", "qty") and config.mode == "update"


def test_a_users_block_is_kind_users() -> None:
    config, problems = validate({"external_id": "user_id", "kind": "users", "attributes": {"plan": "plan"}})
    assert problems == [] and config is not None and config.kind == "users" and config.events is None


def test_every_problem_of_an_events_block_is_reported_at_once() -> None:
    block = {
        "kind": "events",
        "external_id": "nope",
        "name": "event_name",
        "time": "missing_col",
        "mode": "upsert",
        "backfill": "yesterday",
        "properties": {"plan": "$plan", "amount": "time", "sku": "event_name", "gone": "x", "cur": "a" * 256},
    }
    config, problems = validate(block)
    assert config is None
    expected = [
        "braze_events: config.meta.braze.backfill: ",
        "braze_events: config.meta.braze.mode: unknown key",
        "braze_events: config.meta.braze.external_id: column `nope` does not exist",
        "braze_events: config.meta.braze: `event_id` is required for kind events",
        "braze_events: config.meta.braze.time: column `missing_col` does not exist",
        "braze_events: config.meta.braze.properties.plan: property `$plan` starts with `$`",
        "braze_events: config.meta.braze.properties.amount: property `time` is reserved",
        "braze_events: config.meta.braze.properties.sku: property `event_name` is reserved",
        "braze_events: config.meta.braze.properties.gone: column `gone` does not exist",
        "braze_events: config.meta.braze.properties.cur: property `aaaa",
    ]
    assert len(problems) == len(expected), problems
    for start in expected:
        assert any(p.startswith(start) for p in problems), (start, problems)


def test_a_purchases_block_needs_its_columns_and_refuses_the_events_keys() -> None:
    block = purchase(name="event_name")
    del block["currency"], block["price"]
    _, problems = validate(block)
    assert sorted(problems) == [
        "braze_events: config.meta.braze.name: unknown key; valid keys: kind, external_id, braze_id, "
        "email, phone, user_alias, event_id, product_id, currency, price, quantity, time, properties, "
        "backfill, max_duplicate_share",
        "braze_events: config.meta.braze: `currency` is required for kind purchases; "
        "name the column holding it",
        "braze_events: config.meta.braze: `price` is required for kind purchases; name the column holding it",
    ]


@pytest.mark.parametrize("kind", ["event", 3, None])
def test_an_unknown_kind_is_refused_with_the_choices(kind: Any) -> None:
    _, problems = validate({"external_id": "user_id", "attributes": {"plan": "plan"}, "kind": kind})
    assert any("kind" in p and "users, events, purchases" in p for p in problems), problems


def test_an_events_block_needs_one_identifier() -> None:
    block = event(braze_id="braze_uid")
    _, problems = validate(block)
    assert len(problems) == 1 and "it has both `external_id` and `braze_id`" in problems[0], problems


def test_an_events_block_takes_every_identifier() -> None:
    block = event(user_alias={"name": "braze_uid", "label": "crm"})
    del block["external_id"]
    config, problems = validate(block)
    assert problems == [] and config is not None
    assert (config.id_field, config.id_column, config.alias_label, config.key_prefix) == (
        "user_alias",
        "braze_uid",
        "crm",
        "user_alias:crm:",
    )
    del block["user_alias"]
    config, _ = validate({**block, "email": "user_id"})
    assert config is not None and (config.id_field, config.mode) == ("email", "upsert")
