"""`validate_model` for blocks of kind `catalog` (contract, "Catalogs (kind `catalog`)")."""

from __future__ import annotations

from typing import Any

from dbt_braze.config import AttributeMapping, BlockSource, ModelSync, recorded_elsewhere, validate_model

MODEL = "braze_products"
HERE = "config.meta.braze"
COLUMNS = ["Product_ID", "title", "price", "meta"]


def validate(block: Any, columns: list[str] | None = COLUMNS) -> tuple[ModelSync | None, list[str]]:
    return validate_model(MODEL, "model.shop.braze_products", BlockSource(HERE, block), {}, columns)


def catalog(**extra: Any) -> dict[str, Any]:
    block = {"kind": "catalog", "catalog": "products", "id": "product_id"}
    return {**block, "fields": {"title": "title", "PRICE": "price"}, **extra}


def test_a_catalog_block_gives_its_catalog_id_column_and_fields() -> None:
    config, problems = validate(catalog())
    assert problems == []
    assert config is not None and (config.kind, config.catalog) == ("catalog", "products")
    assert config.id_column == "Product_ID"  # as the warehouse holds it
    assert config.attributes == (AttributeMapping("price", "price"), AttributeMapping("title", "title"))
    assert (config.on_removed, config.key_prefix) == ("ignore", "catalog:")
    config, _ = validate(catalog(on_removed="delete", max_removed_share=0.5))
    assert config is not None and (config.on_removed, config.max_removed_share) == ("delete", 0.5)


def test_every_problem_of_a_catalog_block_at_once() -> None:
    block = catalog(
        fields={"title": "id", "price": "a.b", "meta": "$m", "nope": "x", "TITLE": "t2"},
        on_removed="unset",
        catalog="my catalog",
        atributes={},
    )
    config, problems = validate(block)
    assert config is None
    text = "\n".join(problems)
    assert f"{MODEL}: {HERE}.atributes: unknown key" in text
    assert f'{HERE}.on_removed: "unset" is not valid; choose one of: ignore, delete' in text
    assert f"{HERE}.catalog:" in text and "does not match" in text
    assert f"{HERE}.fields.title: `id` is the item id" in text
    assert f'{HERE}.fields.price: catalog field "a.b" holds `.`, `$`' in text
    assert f'{HERE}.fields.meta: catalog field "$m"' in text
    assert f"{HERE}.fields.nope: column `nope` does not exist" in text
    assert f"{HERE}.fields.TITLE: column `TITLE` is already mapped" in text


def test_catalog_and_id_are_required_and_the_id_column_exists() -> None:
    _, problems = validate({"kind": "catalog", "fields": {}})
    assert any("'catalog' is a required property" in p for p in problems)
    assert any("'id' is a required property" in p for p in problems)
    _, problems = validate(catalog(id="sku"))
    assert problems == [
        f"{MODEL}: {HERE}.id: column `sku` does not exist in the model; "
        "columns are: meta, price, product_id, title"
    ]
    _, problems = validate(catalog(fields={"product_id": "pid"}))
    assert problems == [
        f"{MODEL}: {HERE}.fields.product_id: column `product_id` is the id column; it is sent as the item id"
    ]


def test_a_block_of_users_keys_is_not_a_catalog() -> None:
    _, problems = validate(catalog(external_id="product_id"))
    assert problems == [
        f"{MODEL}: {HERE}.external_id: unknown key; valid keys: "
        + ", ".join(
            ["kind", "catalog", "id", "fields", "on_removed", "max_duplicate_share", "max_removed_share"]
        )
    ]


def test_catalog_keys_never_pass_for_another_kinds() -> None:
    assert recorded_elsewhere("catalog:p1", "")  # an external_id model's state holding catalog keys
    assert not recorded_elsewhere("catalog:p1", "catalog:")
    assert recorded_elsewhere("p1", "catalog:")
