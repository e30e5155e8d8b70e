"""Users identified by e-mail, phone and user alias (contract, "Identifiers"): the objects
and deletions sent, the identifiers refused before sending, and the state keys that name
the kind of identifier (a key recorded under another identifier is forgotten, never sent).

The engine runs on the fakes of tests/fakes.py; the SQL side of the keys is checked in
test_dialects.py and, end to end, in tests/integration/test_identifiers.py."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from dbt_braze.config import ModelSync, recorded_elsewhere
from dbt_braze.errors import SyncError
from dbt_braze.kinds.addressing import Addressing, email_problem
from dbt_braze.kinds.base import LocalRejection
from dbt_braze.report import model_summary, report_json
from dbt_braze.rows import Row

from fakes import RELATION, FakeBraze, FakeStore, make_engine, make_model, run, user_rows


def model(id_field: str, *, label: str | None = None, **options: str) -> ModelSync:
    config = make_model(id_field=id_field, **options)
    return dataclasses.replace(config, alias_label=label if id_field == "user_alias" else None)


def rows(keys: list[str], *, new: bool = True) -> list[Row]:
    """Pending rows of one attribute (`plan`) for these state keys."""
    return [(k, "plan", "gold", "text", f"h:{k}", new) for k in keys]


def removed(keys: list[str]) -> list[Row]:
    return [(k, "plan", None, None, f"old:{k}", False) for k in keys]


# -- state keys -----------------------------------------------------------------------------------


def test_key_prefixes_name_the_kind_of_identifier_and_the_alias_label() -> None:
    assert model("external_id").key_prefix == model("braze_id").key_prefix == ""
    assert model("email").key_prefix == "email:"
    assert model("phone").key_prefix == "phone:"
    assert model("user_alias", label="crm").key_prefix == "user_alias:crm:"


@pytest.mark.parametrize(
    ("key", "prefix", "elsewhere"),
    [
        ("42", "", False),
        ("email:a@b.co", "", True),
        ("phone:+14155550123", "", True),
        ("user_alias:crm:c1", "", True),
        ("emails:x", "", False),  # an external id that merely looks alike
        ("email:a@b.co", "email:", False),
        ("42", "email:", True),
        ("phone:+14155550123", "email:", True),
        ("user_alias:crm:c1", "user_alias:crm:", False),
        ("user_alias:erp:c1", "user_alias:crm:", True),  # another label, another identifier
    ],
)
def test_keys_recorded_under_another_identifier(key: str, prefix: str, elsewhere: bool) -> None:
    assert recorded_elsewhere(key, prefix) is elsewhere


def test_a_key_without_the_models_prefix_stops_the_model() -> None:
    """Pending changes computed before the identifier changed (no `dbt run` since)."""
    with pytest.raises(SyncError, match="dbt run"):
        Addressing.of(model("email")).value("42")
    assert Addressing.of(model("email")).value("email:a@b.co") == "a@b.co"


@pytest.mark.parametrize(
    ("computed_for", "id_field", "keys"),
    [
        ("email:", "external_id", ["email:a@b.co"]),  # back to external_id: keys would pass as ids
        ("", "email", ["42"]),  # to e-mail: no key has the prefix
    ],
)
def test_pending_changes_computed_for_another_identifier_send_nothing(
    computed_for: str, id_field: str, keys: list[str]
) -> None:
    braze = FakeBraze()
    warehouse = FakeStore(upserts=rows(keys), key_prefix=computed_for)
    with pytest.raises(SyncError, match="(?s)computed for .* identifier changed since the last `dbt run`"):
        make_engine(warehouse, braze).sync_model(model(id_field), RELATION)
    assert braze.sent_objects == [] and warehouse.reads == [] and warehouse.acknowledged == []


# -- objects --------------------------------------------------------------------------------------


def sent(config: ModelSync, keys: list[str], **options: Any) -> list[dict[str, Any]]:
    braze = FakeBraze()
    run(FakeStore(upserts=rows(keys)), braze, config, **options)
    return braze.sent_objects


@pytest.mark.parametrize(
    ("id_field", "key", "upsert", "update"),
    [
        (
            "external_id",
            "42",
            {"external_id": "42", "plan": "gold"},
            {"external_id": "42", "_update_existing_only": True, "plan": "gold"},
        ),
        (
            "email",
            "email:Zoë@example.com",
            {"email": "Zoë@example.com", "plan": "gold"},
            {"email": "Zoë@example.com", "_update_existing_only": True, "plan": "gold"},
        ),
        (
            "phone",
            "phone:+14155550123",
            {"phone": "+14155550123", "plan": "gold"},
            {"phone": "+14155550123", "_update_existing_only": True, "plan": "gold"},
        ),
        (
            "user_alias",
            "user_alias:crm:c-1",
            # Braze's default for an alias is update-only: upsert says false, explicitly
            {
                "user_alias": {"alias_name": "c-1", "alias_label": "crm"},
                "_update_existing_only": False,
                "plan": "gold",
            },
            {
                "user_alias": {"alias_name": "c-1", "alias_label": "crm"},
                "_update_existing_only": True,
                "plan": "gold",
            },
        ),
    ],
)
def test_objects_carry_the_identifier_without_its_prefix(
    id_field: str, key: str, upsert: dict[str, Any], update: dict[str, Any]
) -> None:
    assert sent(model(id_field, label="crm"), [key]) == [upsert]
    assert sent(model(id_field, label="crm", mode="update"), [key]) == [update]
    # --full-refresh reads the model: its keys carry the prefix too, passed to the read
    warehouse = FakeStore(full_refresh=rows([key]))
    braze = FakeBraze()
    run(warehouse, braze, model(id_field, label="crm"), full_refresh=True)
    assert braze.sent_objects == [upsert]


def test_a_label_is_json_escaped_like_a_name() -> None:
    config = model("user_alias", label='say "hi"\\')
    (obj,) = sent(config, [config.key_prefix + 'a "b"'])
    assert obj["user_alias"] == {"alias_name": 'a "b"', "alias_label": 'say "hi"\\'}


def test_unset_objects_of_removed_users_are_keyed_like_upserts() -> None:
    cases = {
        "email": ("email:a@b.co", {"email": "a@b.co"}),
        "phone": ("phone:+33612345678", {"phone": "+33612345678"}),
        "user_alias": ("user_alias:crm:c1", {"user_alias": {"alias_name": "c1", "alias_label": "crm"}}),
    }
    for id_field, (key, member) in cases.items():
        braze = FakeBraze()
        warehouse = FakeStore(removed=removed([key]))
        report = run(warehouse, braze, model(id_field, label="crm", on_removed="unset"))
        assert braze.sent_objects == [{**member, "_update_existing_only": True, "plan": None}], id_field
        assert warehouse.all_acknowledged == [(key, "plan", None)]
        assert report.users_unset == 1


def test_deletes_by_alias_name_the_label_and_acknowledge_the_keys() -> None:
    config = model("user_alias", label="crm", on_removed="delete")
    keys = [f"user_alias:crm:c{i:03d}" for i in range(60)]
    braze = FakeBraze(not_deleted={"c007"})
    warehouse = FakeStore(removed=removed(keys))
    report = run(warehouse, braze, config, allow_removals=True)
    assert [(len(ids), field) for ids, field in braze.delete_calls] == [
        (50, "user_alias:crm"),
        (10, "user_alias:crm"),
    ]
    assert braze.delete_calls[0][0][:2] == ["c000", "c001"]  # the names, not the keys
    assert report.users_deleted == 59
    assert {k for k, _, _ in warehouse.all_acknowledged} == set(keys) - {"user_alias:crm:c007"}


# -- identifiers Braze would refuse ---------------------------------------------------------------


@pytest.mark.parametrize(
    "phone",
    [
        "4155550123",  # no +
        "+1 415 555 0123",
        "+1-415-555-0123",
        "+(1)4155550123",
        "+04155550123",  # no country code starts with 0
        "+123456",  # 6 digits
        "+1234567890123456",  # 16 digits
        "+１４１５５５５０１２３",  # fullwidth digits
        "+14155550123 ",
    ],
)
def test_phones_not_in_e164_are_refused(phone: str) -> None:
    with pytest.raises(LocalRejection, match="E.164"):
        Addressing("phone", "phone:").check(phone)


@pytest.mark.parametrize("phone", ["+14155550123", "+6834002", "+441632960961", "+123456789012345"])
def test_e164_phones_pass(phone: str) -> None:
    Addressing("phone", "phone:").check(phone)


@pytest.mark.parametrize(
    ("email", "reason"),
    [
        ("a b@example.com", "whitespace"),
        ("ab@example.com\n", "whitespace"),
        ("a\tb@example.com", "whitespace"),
        ("ab\x00@example.com", "control character"),
        ("example.com", "no @"),
        ("a@b@example.com", "exactly one @"),
        ("@example.com", "nothing before the @"),
        ("ab@", "no host"),
        ("ab@localhost", "no dot"),
        ("ab@example..com", "not a host name"),
        ("ab@.example.com", "not a host name"),
        ("ab@example.com.", "not a host name"),
        ("ab@-example.com", "not a host name"),
        ("ab@example-.com", "not a host name"),
        ("ab@exa_mple.com", "not a host name"),
        ("ab@[127.0.0.1]", "not a host name"),
        ("a" * 250 + "@b.co", "longer than 254"),
    ],
)
def test_emails_braze_would_refuse(email: str, reason: str) -> None:
    problem = email_problem(email)
    assert problem is not None and reason in problem, problem
    with pytest.raises(LocalRejection, match="is not an address Braze takes"):
        Addressing("email", "email:").check(email)


@pytest.mark.parametrize(
    "email", ["a@b.co", "first.last+tag@mail.example.com", "Zoë@exämple.de", "x@xn--bcher-kva.example"]
)
def test_emails_braze_takes(email: str) -> None:
    assert email_problem(email) is None


def test_other_identifiers_are_not_checked() -> None:
    for id_field in ("external_id", "braze_id", "user_alias"):
        Addressing(id_field, "", "crm").check("not an e-mail, not a phone ")  # type: ignore[arg-type]


def test_a_refused_identifier_is_recorded_with_its_reason_and_never_sent() -> None:
    keys = ["phone:+14155550123", "phone:4155550124", "phone:+1 415 555 0125"]
    warehouse = FakeStore(upserts=rows(keys))
    braze = FakeBraze()
    report = run(warehouse, braze, model("phone"))
    assert braze.sent_objects == [{"phone": "+14155550123", "plan": "gold"}]
    refused = {k: reason for k, _, _, reason in warehouse.all_rejected}
    assert set(refused) == set(keys[1:])
    assert all("not in E.164" in reason for reason in refused.values())
    assert report.rows_rejected == 2 and report.users_created == 1
    assert "rejected phone=4155550124: rejected before sending: phone '4155550124'" in model_summary(
        model("phone"), report, dry_run=False
    )


# -- an identifier that changed -------------------------------------------------------------------


@pytest.mark.parametrize("on_removed", ["ignore", "unset"])
def test_users_recorded_under_another_identifier_are_forgotten_never_sent(on_removed: str) -> None:
    """`external_id: email` became `email: email`: the old keys are removed users that the
    e-mail cannot address; whatever on_removed says, nothing is sent for them."""
    old_keys = [f"u{i}" for i in range(3)]
    new_keys = [f"email:user{i}@example.com" for i in range(3)]
    warehouse = FakeStore(upserts=rows(new_keys), removed=removed(old_keys + ["email:gone@example.com"]))
    braze = FakeBraze()
    config = model("email", on_removed=on_removed)
    report = run(warehouse, braze, config, allow_removals=True)

    sent_to = [obj["email"] for obj in braze.sent_objects]
    assert sent_to[:3] == [f"user{i}@example.com" for i in range(3)]  # every user, whole and new
    assert report.users_created == 3
    assert sent_to[3:] == ([] if on_removed == "ignore" else ["gone@example.com"])  # unset by e-mail
    assert braze.delete_calls == []
    assert report.users_forgotten == 3
    forgotten = {(k, h) for k, _, h in warehouse.all_acknowledged if k in old_keys}
    assert forgotten == {(k, None) for k in old_keys}
    summary = model_summary(config, report, dry_run=False)
    assert "users forgotten" in summary and "cannot address" in summary


def test_an_alias_model_forgets_the_keys_of_another_label() -> None:
    config = model("user_alias", label="crm", on_removed="delete")
    warehouse = FakeStore(removed=removed(["user_alias:erp:c1", "user_alias:crm:c2"]))
    braze = FakeBraze()
    report = run(warehouse, braze, config, allow_removals=True)
    assert braze.delete_calls == [(["c2"], "user_alias:crm")]
    assert (report.users_deleted, report.users_forgotten) == (1, 1)


def test_a_plan_counts_no_request_for_forgetting() -> None:
    warehouse = FakeStore(upserts=user_rows(2), removed=removed(["email:a@b.co", "email:c@d.co"]))
    report = run(warehouse, None, model("external_id"), dry_run=True)
    assert report.users_forgotten == 2 and report.users_created == 2
    assert report.requests == 1  # the two objects; forgetting sends nothing
    assert warehouse.acknowledged == []
    document = report_json(model("external_id"), report, dry_run=True, error=None)
    assert document["users_forgotten"] == 2
    assert document["identifier"] == {"field": "external_id", "column": "user_id", "alias_label": None}
    assert json.dumps(document)
