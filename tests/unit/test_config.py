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
