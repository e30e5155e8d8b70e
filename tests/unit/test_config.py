"""`validate_model`: meta block shape and cross-key rules, each problem with model and path."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from dbt_braze.config import (
    KINDS,
    AttributeMapping,
    BlockSource,
    Draft,
    Identifier,
    Kind,
    Mappings,
    ModelSync,
    SubscriptionGroupMapping,
    SyncPolicy,
    raise_if_problems,
    validate_model,
)
from dbt_braze.errors import EXIT_USAGE, ConfigError, MetaValidationError

MODEL = "braze_users"
UID = "model.shop.braze_users"
HERE = "config.meta.braze"
COLUMNS = ["user_id", "braze_uid", "email", "first_name", "lifetime_value", "plan"]


def validate(
    block: Any,
    column_blocks: dict[str, Any] | None = None,
    columns: list[str] | None = COLUMNS,
    path: str = HERE,
) -> tuple[ModelSync | None, list[str]]:
    col_sources = {
        name: BlockSource(f"columns.{name}.config.meta.braze", b) for name, b in (column_blocks or {}).items()
    }
    return validate_model(MODEL, UID, BlockSource(path, block), col_sources, columns)


def only_problem(block: Any, **kwargs: Any) -> str:
    config, problems = validate(block, **kwargs)
    assert config is None
    assert len(problems) == 1, problems
    return problems[0]


def base(**extra: Any) -> dict[str, Any]:
    return {"external_id": "user_id", "attributes": {"email": "email"}, **extra}


# -- valid blocks --------------------------------------------------------------------------------


def test_valid_external_id_block_gives_frozen_model_sync_with_defaults() -> None:
    config, problems = validate(
        {"external_id": "user_id", "attributes": {"email": "email", "lifetime_value": "ltv"}},
        column_blocks={"plan": {"attribute": "plan_tier"}},
    )
    assert problems == []
    assert config == ModelSync(
        model_name=MODEL,
        unique_id=UID,
        id_field="external_id",
        id_column="user_id",
        mode="upsert",
        on_removed="ignore",
        # sorted by Braze attribute name
        attributes=(
            AttributeMapping("email", "email"),
            AttributeMapping("lifetime_value", "ltv"),
            AttributeMapping("plan", "plan_tier"),
        ),
    )
    assert config.update_only is False
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.mode = "update"  # type: ignore[misc]


def test_braze_id_defaults_to_update_mode() -> None:
    config, problems = validate({"braze_id": "braze_uid", "attributes": {"email": "email"}})
    assert problems == []
    assert config is not None
    assert config.id_field == "braze_id"
    assert config.id_column == "braze_uid"
    assert config.mode == "update"
    assert config.update_only is True
    assert config.on_removed == "ignore"


def test_explicit_mode_and_on_removed_are_kept() -> None:
    config, problems = validate(base(mode="update", on_removed="unset"))
    assert problems == []
    assert config is not None
    assert (config.mode, config.on_removed, config.update_only) == ("update", "unset", True)

    config, problems = validate(base(on_removed="delete"))
    assert problems == []
    assert config is not None
    assert (config.mode, config.on_removed) == ("upsert", "delete")


def test_column_matching_is_case_insensitive_and_returns_the_warehouse_name() -> None:
    config, problems = validate(
        {"external_id": "user_id", "attributes": {"Email": "email", "first_name": "first_name"}},
        column_blocks={"plan": {"attribute": "plan_tier"}},
        columns=["USER_ID", "EMAIL", "First_Name", "PLAN"],
    )
    assert problems == []
    assert config is not None
    assert config.id_column == "USER_ID"
    assert {m.attribute: m.column for m in config.attributes} == {
        "email": "EMAIL",
        "first_name": "First_Name",
        "plan_tier": "PLAN",
    }


def test_no_warehouse_columns_skips_existence_checks() -> None:
    config, problems = validate(
        {"external_id": "uid_not_in_model", "attributes": {"nowhere": "x"}},
        column_blocks={"ghost": {"attribute": "y"}},
        columns=None,
    )
    assert problems == []
    assert config is not None
    assert config.id_column == "uid_not_in_model"
    assert {m.column for m in config.attributes} == {"nowhere", "ghost"}


def test_column_blocks_alone_are_enough_for_attributes() -> None:
    config, problems = validate({"external_id": "user_id"}, column_blocks={"email": {"attribute": "email"}})
    assert problems == []
    assert config is not None
    assert config.attributes == (AttributeMapping("email", "email"),)


def test_the_config_is_also_grouped_by_concern() -> None:
    block = {
        "braze_id": "braze_uid",
        "on_removed": "unset",
        "max_duplicate_share": 0,
        "max_removed_share": 0.25,
        "truncate_strings": True,
        "attributes": {"plan": "plan", "email": "email"},
    }
    config, problems = validate(block)
    assert problems == [] and config is not None
    assert config.identifier == Identifier(field="braze_id", column="braze_uid")
    assert config.policy == SyncPolicy(
        mode="update", on_removed="unset", max_duplicate_share=0.0, max_removed_share=0.25
    )
    assert isinstance(config.policy.max_duplicate_share, float)
    assert config.mappings == Mappings(
        attributes=(AttributeMapping("email", "email"), AttributeMapping("plan", "plan")),
        truncate_strings=True,
    )
    assert ModelSync.of(MODEL, UID, config.identifier, config.policy, config.mappings) == config


def test_a_check_added_to_a_kind_reports_with_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    """How the kinds of the contract's "Beyond user attributes" extend validation."""

    def no_plan(draft: Draft) -> bool:
        if "plan" in (draft.block.get("attributes") or {}):
            draft.problem(f"{draft.here}.attributes.plan", "not for this kind")
        return True

    users = KINDS["users"]
    monkeypatch.setitem(KINDS, "users", Kind(checks=(*users.checks, no_plan), build=users.build))
    config, problems = validate(base(mode="update", on_removed="delete", attributes={"plan": "plan"}))
    assert config is None
    assert problems == [
        f"{MODEL}: {HERE}.on_removed: `delete` is not allowed with `mode: update`; "
        "use `unset` or `ignore`, or `mode: upsert`",
        f"{MODEL}: {HERE}.attributes.plan: not for this kind",
    ]


# -- schema problems ------------------------------------------------------------------------------


def test_unknown_key_names_model_path_and_suggests_the_fix() -> None:
    problem = only_problem({"external_id": "user_id", "atributes": {"email": "email"}})
    assert problem.startswith(f"{MODEL}: {HERE}.atributes: unknown key")
    assert "did you mean `attributes`?" in problem


def test_unknown_key_without_close_match_lists_valid_keys() -> None:
    problem = only_problem(base(zzzz=1))
    assert problem.startswith(f"{MODEL}: {HERE}.zzzz: unknown key")
    for key in ("external_id", "braze_id", "mode", "on_removed", "attributes"):
        assert key in problem


def test_unknown_key_in_column_block() -> None:
    problem = only_problem(base(), column_blocks={"plan": {"attribute": "plan_tier", "atribute": "x"}})
    assert problem.startswith(f"{MODEL}: columns.plan.config.meta.braze.atribute: unknown key")
    assert "did you mean `attribute`?" in problem


def test_column_block_without_attribute() -> None:
    problem = only_problem(base(), column_blocks={"plan": {}})
    assert problem.startswith(f"{MODEL}: columns.plan.config.meta.braze")
    assert "attribute" in problem


def test_bad_enum_value() -> None:
    problem = only_problem(base(mode="upsrt"))
    assert problem.startswith(f"{MODEL}: {HERE}.mode: ")
    assert '"upsrt" is not valid' in problem
    assert "upsert" in problem and "update" in problem

    problem = only_problem(base(on_removed="remove"))
    assert problem.startswith(f"{MODEL}: {HERE}.on_removed: ")
    assert all(choice in problem for choice in ("ignore", "unset", "delete"))


def test_wrong_types() -> None:
    problem = only_problem({"external_id": "user_id", "attributes": ["email", "first_name"]})
    assert problem.startswith(f"{MODEL}: {HERE}.attributes: expected object")
    assert "list" in problem

    problem = only_problem({"external_id": 42, "attributes": {"email": "email"}})
    assert problem.startswith(f"{MODEL}: {HERE}.external_id: expected string")

    problem = only_problem({"external_id": "user_id", "attributes": {"email": 3}})
    assert problem.startswith(f"{MODEL}: {HERE}.attributes.email: expected string")


def test_block_that_is_not_a_mapping() -> None:
    problem = only_problem(["external_id", "user_id"])
    assert problem.startswith(f"{MODEL}: {HERE}: expected object")

    problem = only_problem(None)
    assert problem.startswith(f"{MODEL}: {HERE}: ")


def test_legacy_meta_path_is_kept_in_messages() -> None:
    problem = only_problem({"external_id": "user_id", "atributes": {}}, path="meta.braze")
    assert problem.startswith(f"{MODEL}: meta.braze.atributes: unknown key")
    assert "config.meta" not in problem

    problem = only_problem({"attributes": {"email": "email"}}, path="meta.braze")
    assert problem.startswith(f"{MODEL}: meta.braze: needs exactly one of")


def test_several_schema_problems_are_all_reported() -> None:
    config, problems = validate(
        {"external_id": "user_id", "atributes": {}, "mode": "upsrt", "on_removed": 3},
        column_blocks={"plan": {"attribute": ["x"]}},
    )
    assert config is None
    assert len(problems) == 4, problems
    assert any(f"{HERE}.atributes: unknown key" in p for p in problems)
    assert any(f"{HERE}.mode: " in p for p in problems)
    assert any(f"{HERE}.on_removed: " in p for p in problems)
    assert any("columns.plan.config.meta.braze.attribute: expected string" in p for p in problems)
    assert all(p.startswith(f"{MODEL}: ") for p in problems)


# -- cross-key rules ------------------------------------------------------------------------------


def test_neither_identifier() -> None:
    problem = only_problem({"attributes": {"email": "email"}})
    assert problem.startswith(f"{MODEL}: {HERE}: needs exactly one of `external_id` or `braze_id`")
    assert "neither" in problem


def test_both_identifiers() -> None:
    problem = only_problem(
        {"external_id": "user_id", "braze_id": "braze_uid", "attributes": {"email": "email"}}
    )
    assert problem.startswith(f"{MODEL}: {HERE}: needs exactly one of `external_id` or `braze_id`")
    assert "both" in problem


def test_identifier_column_not_in_model() -> None:
    problem = only_problem({"external_id": "userid", "attributes": {"email": "email"}})
    assert problem.startswith(f"{MODEL}: {HERE}.external_id: column `userid` does not exist")
    assert "user_id" in problem  # the real columns are listed

    problem = only_problem({"braze_id": "bid", "attributes": {"email": "email"}})
    assert problem.startswith(f"{MODEL}: {HERE}.braze_id: column `bid` does not exist")


def test_attributes_entry_column_not_in_model() -> None:
    problem = only_problem(base(attributes={"email": "email", "e_mail": "email2"}))
    assert problem.startswith(f"{MODEL}: {HERE}.attributes.e_mail: column `e_mail` does not exist")


def test_column_level_block_column_not_in_model() -> None:
    problem = only_problem(
        base(), column_blocks={"plan": {"attribute": "plan_tier"}}, columns=["user_id", "email"]
    )
    assert problem.startswith(
        f"{MODEL}: columns.plan.config.meta.braze.attribute: column `plan` does not exist"
    )


def test_identifier_column_also_mapped_as_attribute() -> None:
    problem = only_problem(base(attributes={"email": "email", "user_id": "uid"}))
    assert problem.startswith(f"{MODEL}: {HERE}.attributes.user_id: column `user_id` is the identifier")

    problem = only_problem(base(), column_blocks={"user_id": {"attribute": "uid"}})
    assert problem.startswith(
        f"{MODEL}: columns.user_id.config.meta.braze.attribute: column `user_id` is the identifier"
    )


def test_identifier_as_attribute_is_case_insensitive() -> None:
    problem = only_problem(base(attributes={"USER_ID": "uid"}))
    assert problem.startswith(f"{MODEL}: {HERE}.attributes.USER_ID: column `USER_ID` is the identifier")


def test_one_column_mapped_twice_model_and_column_level() -> None:
    problem = only_problem(
        base(attributes={"plan": "plan"}), column_blocks={"plan": {"attribute": "plan_tier"}}
    )
    assert problem.startswith(
        f"{MODEL}: columns.plan.config.meta.braze.attribute: column `plan` is already mapped at "
        f"{HERE}.attributes.plan"
    )


def test_one_column_mapped_twice_differing_only_in_case() -> None:
    problem = only_problem(base(attributes={"email": "email", "EMAIL": "email_upper"}))
    assert f"{HERE}.attributes.EMAIL: column `EMAIL` is already mapped" in problem


def test_one_braze_attribute_mapped_twice() -> None:
    problem = only_problem(base(attributes={"email": "contact", "first_name": "contact"}))
    assert problem.startswith(f"{MODEL}: {HERE}.attributes.first_name: Braze attribute `contact`")
    assert f"already mapped at {HERE}.attributes.email" in problem

    problem = only_problem(
        base(attributes={"email": "plan_tier"}), column_blocks={"plan": {"attribute": "plan_tier"}}
    )
    assert problem.startswith(
        f"{MODEL}: columns.plan.config.meta.braze.attribute: Braze attribute `plan_tier`"
    )


@pytest.mark.parametrize("reserved", ["external_id", "braze_id", "user_alias"])
def test_reserved_target_names(reserved: str) -> None:
    problem = only_problem(base(attributes={"email": reserved}))
    assert problem.startswith(f"{MODEL}: {HERE}.attributes.email: `{reserved}` is reserved")

    problem = only_problem(base(), column_blocks={"plan": {"attribute": reserved}})
    assert problem.startswith(f"{MODEL}: columns.plan.config.meta.braze.attribute: `{reserved}` is reserved")


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("$email", "starts with `$`"),
        ("a" * 256, "has 256 characters; Braze takes at most 255"),
        ("plan\x1ftier", "holds a control character"),
        ("plan\ntier", "holds a control character"),
    ],
)
def test_attribute_names_braze_refuses(name: str, why: str) -> None:
    problem = only_problem(base(attributes={"email": name}))
    assert problem.startswith(f"{MODEL}: {HERE}.attributes.email: Braze attribute ")
    assert why in problem

    problem = only_problem(base(), column_blocks={"plan": {"attribute": name}})
    assert problem.startswith(f"{MODEL}: columns.plan.config.meta.braze.attribute: Braze attribute ")


def test_attribute_names_braze_takes() -> None:
    config, problems = validate(base(attributes={"email": "a" * 255, "plan": "e$mail ünï 'x' \"y\""}))
    assert problems == [] and config is not None


def test_ephemeral_model_is_refused_naming_the_fix() -> None:
    config, problems = validate_model(MODEL, UID, BlockSource(HERE, base()), {}, None, "ephemeral")
    assert config is None
    assert problems == [
        f"{MODEL}: the model is ephemeral: it has no relation to compute changes from; "
        "materialize it as a table or a view (config: materialized: table)"
    ]
    assert validate_model(MODEL, UID, BlockSource(HERE, base()), {}, COLUMNS, "view")[1] == []


def test_upsert_with_braze_id() -> None:
    problem = only_problem({"braze_id": "braze_uid", "mode": "upsert", "attributes": {"email": "e"}})
    assert problem.startswith(f"{MODEL}: {HERE}.mode: `upsert` is not possible with `braze_id`")


def test_delete_with_update_mode() -> None:
    problem = only_problem(base(mode="update", on_removed="delete"))
    assert problem.startswith(f"{MODEL}: {HERE}.on_removed: `delete` is not allowed with `mode: update`")

    # braze_id means update by default: delete is refused there too
    problem = only_problem({"braze_id": "braze_uid", "on_removed": "delete", "attributes": {"email": "e"}})
    assert problem.startswith(f"{MODEL}: {HERE}.on_removed: `delete` is not allowed")


def test_nothing_mapped() -> None:
    problem = only_problem({"external_id": "user_id"})
    assert problem.startswith(f"{MODEL}: {HERE}: no attribute is mapped")


def test_several_rule_problems_are_all_reported() -> None:
    config, problems = validate(
        {
            "external_id": "user_id",
            "mode": "update",
            "on_removed": "delete",  # 1: delete with update
            "attributes": {
                "email": "email",
                "first_name": "email",  # 2: attribute mapped twice
                "missing": "x",  # 3: column not in model
                "user_id": "uid",  # 4: identifier as attribute
                "lifetime_value": "braze_id",  # 5: reserved
            },
        },
        column_blocks={"email": {"attribute": "email_2"}},  # 6: column mapped twice
    )
    assert config is None
    assert len(problems) == 6, problems
    assert all(p.startswith(f"{MODEL}: ") for p in problems)
    expected = [
        f"{HERE}.on_removed: `delete` is not allowed",
        f"{HERE}.attributes.first_name: Braze attribute `email` is already mapped",
        f"{HERE}.attributes.missing: column `missing` does not exist",
        f"{HERE}.attributes.user_id: column `user_id` is the identifier",
        f"{HERE}.attributes.lifetime_value: `braze_id` is reserved",
        "columns.email.config.meta.braze.attribute: column `email` is already mapped",
    ]
    for fragment in expected:
        assert sum(fragment in p for p in problems) == 1, (fragment, problems)


def test_schema_and_rule_problems_are_reported_together() -> None:
    config, problems = validate(
        {
            "external_id": "user_id",
            "braze_id": "braze_uid",  # 1: both identifiers
            "atributes": {},  # 2: unknown key
            "attributes": {"email": "user_alias"},  # 3: reserved
        },
        column_blocks={"nowhere": {"attribute": "x"}},  # 4: column not in model
    )
    assert config is None
    assert len(problems) == 4, problems
    assert any(f"{HERE}.atributes: unknown key" in p for p in problems)
    assert any(f"{HERE}: needs exactly one of" in p and "both" in p for p in problems)
    assert any(f"{HERE}.attributes.email: `user_alias` is reserved" in p for p in problems)
    assert any("columns.nowhere.config.meta.braze.attribute: column `nowhere`" in p for p in problems)


# -- raise_if_problems ----------------------------------------------------------------------------


def test_raise_if_problems_lists_every_problem_with_exit_code_2() -> None:
    _, problems = validate(
        {"braze_id": "braze_uid", "mode": "upsert", "attributes": {"email": "external_id"}}
    )
    assert len(problems) == 2
    with pytest.raises(MetaValidationError) as info:
        raise_if_problems(problems)
    error = info.value
    assert isinstance(error, ConfigError)
    assert error.exit_code == EXIT_USAGE == 2
    assert error.problems == problems
    text = str(error)
    assert "2 problem(s)" in text
    for problem in problems:
        assert problem in text
    assert "dbt-braze validate" in text  # the hint


def test_raise_if_problems_is_silent_without_problems() -> None:
    raise_if_problems([])


def test_truncate_strings_is_a_boolean_off_by_default() -> None:
    config, _ = validate(base())
    assert config is not None and config.truncate_strings is False
    config, _ = validate(base(truncate_strings=True))
    assert config is not None and config.truncate_strings is True
    assert "truncate_strings" in only_problem(base(truncate_strings="yes"))


# -- identifiers beyond external_id and braze_id ----------------------------------------------------

CONTACTS = [*COLUMNS, "phone", "crm_id", "newsletter", "sms_promos"]
ALIAS_FIX = "write it as `user_alias: {name: <column>, label: <text>}`"


def contact(**extra: Any) -> dict[str, Any]:
    return {"attributes": {"first_name": "first_name"}, **extra}


@pytest.mark.parametrize(("field", "column"), [("email", "email"), ("phone", "phone")])
def test_email_and_phone_identify_users_upsert_by_default(field: str, column: str) -> None:
    config, problems = validate(contact(**{field: column.upper()}), columns=CONTACTS)
    assert problems == [] and config is not None
    assert (config.id_field, config.id_column, config.mode, config.alias_label) == (
        field,
        column,
        "upsert",
        None,
    )
    assert config.identifier == Identifier(field=field, column=column)  # type: ignore[arg-type]

    config, problems = validate(contact(**{field: column}, mode="update"), columns=CONTACTS)
    assert problems == [] and config is not None and config.update_only


def test_user_alias_names_its_column_and_one_label() -> None:
    config, problems = validate(
        contact(user_alias={"name": "CRM_ID", "label": "crm_id"}), columns=["user_id", "first_name", "Crm_Id"]
    )
    assert problems == [] and config is not None
    assert (config.id_field, config.id_column, config.alias_label, config.mode) == (
        "user_alias",
        "Crm_Id",
        "crm_id",
        "upsert",
    )
    assert config.identifier == Identifier(field="user_alias", column="Crm_Id", alias_label="crm_id")
    assert ModelSync.of(MODEL, UID, config.identifier, config.policy, config.mappings) == config

    config, problems = validate(
        contact(user_alias={"name": "crm_id", "label": "crm"}, mode="update", on_removed="unset"),
        columns=CONTACTS,
    )
    assert problems == [] and config is not None
    assert (config.mode, config.on_removed) == ("update", "unset")


def test_user_alias_column_not_in_model() -> None:
    problem = only_problem(contact(user_alias={"name": "crm", "label": "crm_id"}), columns=CONTACTS)
    assert problem.startswith(f"{MODEL}: {HERE}.user_alias.name: column `crm` does not exist in the model")
    assert "crm_id" in problem  # the real columns are listed


@pytest.mark.parametrize(
    ("alias", "where", "why"),
    [
        ("crm_id", "user_alias", 'expected object, got "crm_id"'),
        (["crm_id", "crm"], "user_alias", "expected object, got list"),
        ({"name": "crm_id"}, "user_alias", "'label' is a required property"),
        ({"label": "crm"}, "user_alias", "'name' is a required property"),
        ({"name": "crm_id", "label": ""}, "user_alias.label", "expected a non-empty string"),
        ({"name": "crm_id", "label": 3}, "user_alias.label", "expected string, got 3"),
        ({"name": "", "label": "crm"}, "user_alias.name", "expected a non-empty string"),
        ({"name": 3, "label": "crm"}, "user_alias.name", "expected string, got 3"),
        ({"name": "crm_id", "label": "crm", "column": "x"}, "user_alias.column", "unknown key"),
    ],
)
def test_malformed_user_alias_names_the_key_and_the_fix(alias: Any, where: str, why: str) -> None:
    problem = only_problem(contact(user_alias=alias), columns=CONTACTS)
    assert problem == f"{MODEL}: {HERE}.{where}: {why}; {ALIAS_FIX}"


def test_misspelt_user_alias_key_suggests_the_right_one() -> None:
    config, problems = validate(contact(user_alias={"nmae": "crm_id", "label": "crm"}), columns=CONTACTS)
    assert config is None
    assert problems == [
        f"{MODEL}: {HERE}.user_alias.nmae: unknown key; did you mean `name`?",
        f"{MODEL}: {HERE}.user_alias: 'name' is a required property; {ALIAS_FIX}",
    ]


@pytest.mark.parametrize(
    ("identifiers", "found"),
    [
        ({"email": "email", "phone": "phone"}, "it has both `email` and `phone`"),
        (
            {"external_id": "user_id", "email": "email", "user_alias": {"name": "crm_id", "label": "crm"}},
            "it has `external_id`, `email` and `user_alias`",
        ),
    ],
)
def test_exactly_one_identifier_of_five(identifiers: dict[str, Any], found: str) -> None:
    problem = only_problem(contact(**identifiers), columns=CONTACTS)
    assert problem == (
        f"{MODEL}: {HERE}: needs exactly one of `external_id` or `braze_id` or `email` or `phone` or "
        f"`user_alias` ({found}); keep the one that names the column identifying the user, "
        "e.g. `external_id: user_id`"
    )


@pytest.mark.parametrize(("field", "what"), [("email", "e-mail address"), ("phone", "phone number")])
def test_delete_by_email_or_phone_is_a_configuration_error(field: str, what: str) -> None:
    _, problems = validate(contact(**{field: field}, on_removed="delete"), columns=CONTACTS)
    assert problems == [
        f"{MODEL}: {HERE}.on_removed: `delete` is not allowed with `{field}`: several profiles may share "
        f"one {what}, so deleting by {what} can reach another profile; use `unset` or `ignore`, "
        "or identify users by `external_id`, `braze_id` or `user_alias`"
    ]
    with pytest.raises(MetaValidationError) as info:
        raise_if_problems(problems)
    assert info.value.exit_code == EXIT_USAGE == 2

    for on_removed in ("unset", "ignore"):
        assert validate(contact(**{field: field}, on_removed=on_removed), columns=CONTACTS)[1] == []


def test_delete_by_user_alias_is_allowed() -> None:
    config, problems = validate(
        contact(user_alias={"name": "crm_id", "label": "crm"}, on_removed="delete"), columns=CONTACTS
    )
    assert problems == [] and config is not None and config.on_removed == "delete"


@pytest.mark.parametrize(
    ("field", "attribute", "why"),
    [
        ("email", "email", "the object holds it as the identifier"),
        ("phone", "phone", "the object holds it as the identifier"),
        (
            "phone",
            "email",
            "Braze would identify the user by this e-mail address instead of the phone number",
        ),
    ],
)
def test_an_attribute_cannot_take_the_identifiers_field(field: str, attribute: str, why: str) -> None:
    block = {field: field, "attributes": {"first_name": attribute}}
    problem = only_problem(block, columns=CONTACTS)
    assert problem == (
        f"{MODEL}: {HERE}.attributes.first_name: Braze attribute `{attribute}` cannot be mapped in a model "
        f"identified by `{field}`: {why}; choose another attribute name"
    )


def test_email_and_phone_stay_ordinary_attributes_elsewhere() -> None:
    for block in (
        {"external_id": "user_id", "attributes": {"email": "email", "phone": "phone"}},
        {"email": "email", "attributes": {"phone": "phone"}},
        {"user_alias": {"name": "crm_id", "label": "crm"}, "attributes": {"email": "email"}},
    ):
        assert validate(block, columns=CONTACTS)[1] == [], block


# -- subscription groups ----------------------------------------------------------------------------

NEWSLETTER = "5b0fd0e8-0c9c-4d6d-9a1f-1d0f7b8e2a11"
SMS = "0a3c7f52-3b1e-45a2-8f7e-7c9d2b6e4f90"
GROUPS_FIX = "write it as `subscription_groups: {<column>: <subscription group id>}`"


def test_subscription_groups_are_parsed_with_unsubscribe_only_by_default() -> None:
    config, problems = validate(
        base(subscription_groups={"NEWSLETTER": NEWSLETTER, "sms_promos": SMS}), columns=CONTACTS
    )
    assert problems == [] and config is not None
    # sorted by group id, with the warehouse's column names
    expected = (
        SubscriptionGroupMapping("sms_promos", SMS),
        SubscriptionGroupMapping("newsletter", NEWSLETTER),
    )
    assert config.subscription_groups == expected
    assert config.subscriptions == "unsubscribe_only"
    assert config.attributes == (AttributeMapping("email", "email"),)  # a group is not an attribute
    assert config.mappings == Mappings(attributes=config.attributes, subscription_groups=expected)
    assert config.policy.subscriptions == "unsubscribe_only"
    assert ModelSync.of(MODEL, UID, config.identifier, config.policy, config.mappings) == config


def test_subscriptions_mirror() -> None:
    config, problems = validate(
        base(subscription_groups={"newsletter": NEWSLETTER}, subscriptions="mirror"), columns=CONTACTS
    )
    assert problems == [] and config is not None
    assert config.subscriptions == config.policy.subscriptions == "mirror"


def test_subscriptions_other_values_are_refused_with_the_choices() -> None:
    problem = only_problem(base(subscriptions="subscribe"), columns=CONTACTS)
    assert problem == (
        f'{MODEL}: {HERE}.subscriptions: "subscribe" is not valid; choose one of: unsubscribe_only, mirror'
    )


def test_subscription_groups_alone_are_enough() -> None:
    config, problems = validate(
        {"email": "email", "subscription_groups": {"newsletter": NEWSLETTER}}, columns=CONTACTS
    )
    assert problems == [] and config is not None
    assert config.attributes == () and config.subscription_groups == (
        SubscriptionGroupMapping("newsletter", NEWSLETTER),
    )
    problem = only_problem({"email": "email", "subscription_groups": {}}, columns=CONTACTS)
    assert problem.startswith(f"{MODEL}: {HERE}: no attribute is mapped")
    assert "`subscription_groups:`" in problem  # the fix names them


@pytest.mark.parametrize(
    ("groups", "where", "why"),
    [
        (["newsletter"], "subscription_groups", "expected object, got list"),
        ({"newsletter": ""}, "subscription_groups.newsletter", "expected a non-empty string"),
        ({"newsletter": 3}, "subscription_groups.newsletter", "expected string, got 3"),
        ({"newsletter": None}, "subscription_groups.newsletter", "expected string, got null"),
    ],
)
def test_malformed_subscription_groups_name_the_key_and_the_fix(groups: Any, where: str, why: str) -> None:
    problem = only_problem(base(subscription_groups=groups), columns=CONTACTS)
    assert problem == f"{MODEL}: {HERE}.{where}: {why}; {GROUPS_FIX}"


def test_misspelt_subscription_groups_key() -> None:
    problem = only_problem(base(subscription_group={"newsletter": NEWSLETTER}), columns=CONTACTS)
    assert problem.startswith(
        f"{MODEL}: {HERE}.subscription_group: unknown key; did you mean `subscription_groups`?"
    )


def test_subscription_group_column_not_in_model() -> None:
    problem = only_problem(base(subscription_groups={"news": NEWSLETTER}), columns=CONTACTS)
    assert problem.startswith(f"{MODEL}: {HERE}.subscription_groups.news: column `news` does not exist")


def test_subscription_group_column_is_the_identifier() -> None:
    problem = only_problem(base(subscription_groups={"User_Id": NEWSLETTER}), columns=CONTACTS)
    assert problem == (
        f"{MODEL}: {HERE}.subscription_groups.User_Id: column `User_Id` is the identifier column; "
        "it is sent as the identifier and cannot also be a subscription group"
    )


def test_subscription_group_column_already_mapped_as_an_attribute() -> None:
    problem = only_problem(base(subscription_groups={"EMAIL": NEWSLETTER}), columns=CONTACTS)
    assert problem == (
        f"{MODEL}: {HERE}.subscription_groups.EMAIL: column `EMAIL` is already mapped at "
        f"{HERE}.attributes.email; map each column once, as an attribute or as a subscription group"
    )

    problem = only_problem(
        base(subscription_groups={"plan": NEWSLETTER}),
        column_blocks={"plan": {"attribute": "plan"}},
        columns=CONTACTS,
    )
    assert problem.startswith(
        f"{MODEL}: {HERE}.subscription_groups.plan: column `plan` is already mapped at "
        "columns.plan.config.meta.braze.attribute"
    )


def test_subscription_group_column_mapped_twice() -> None:
    problem = only_problem(
        base(subscription_groups={"newsletter": NEWSLETTER, "Newsletter": SMS}), columns=CONTACTS
    )
    assert problem.startswith(
        f"{MODEL}: {HERE}.subscription_groups.Newsletter: column `Newsletter` is already mapped at "
        f"{HERE}.subscription_groups.newsletter"
    )


def test_one_subscription_group_from_two_columns() -> None:
    problem = only_problem(
        base(subscription_groups={"newsletter": NEWSLETTER, "sms_promos": NEWSLETTER}), columns=CONTACTS
    )
    assert problem == (
        f"{MODEL}: {HERE}.subscription_groups.sms_promos: subscription group `{NEWSLETTER}` is already "
        f"mapped at {HERE}.subscription_groups.newsletter; map each group from one column"
    )
