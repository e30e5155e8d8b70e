"""Users identified by external_id, braze_id, e-mail, phone and user alias (contract,
"Identifiers"), in upsert and in update mode, on the emulator over real sockets.

One dbt project of one model per identifier and mode, built by three `dbt run`s:
1. the first sync: each model's objects reach the profiles Braze resolves (an upsert by
   e-mail, phone or alias creates a profile, an update creates none); identifiers Braze
   would refuse never leave the warehouse and are in the rejections; duplicated e-mails
   and phones are withheld;
2. a model's identifier changes (`external_id: user_id` to `email: email`): validate and
   plan say so, the mass-removal guard pauses it, and with --allow-removals every user is
   sent whole by e-mail while the old keys are forgotten, never unset; meanwhile an e-mail
   model unsets a removed user by e-mail and an alias model deletes one by `user_aliases`;
3. after the next `dbt run`, nothing is sent again.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from dbt_braze.emulator import BrazeEmulator

from harness import DbtProject

pytestmark = pytest.mark.integration

N_SWITCHED = 12  # over the removal guard's floor (engine.REMOVAL_GUARD_FLOOR)
BAD_PHONES = ["4155550123", "+1 415 555 0199"]  # the emulator would take both: Braze may too
BAD_EMAILS = ["bad address@example.com", "nohost@"]


def values_sql(columns: str, rows: list[tuple[str, ...]]) -> str:
    listed = ",\n".join("(" + ", ".join(f"'{v}'" for v in row) + ")" for row in rows)
    return f"select * from (values\n{listed}\n) as t ({columns})"


def switched_sql() -> str:
    return f"""
        select 'u' || i as user_id, 'user' || i || '@example.com' as email, 'Name ' || i as first_name
        from generate_series(1, {N_SWITCHED}) t(i)
    """


# model: (identifier block, mode, SQL of its rows: the identifier column and `v`)
MODELS: dict[str, tuple[dict[str, Any], str, str]] = {
    "by_external_update": (
        {"external_id": "user_id"},
        "update",
        values_sql("user_id, v", [("seed-x", "x"), ("x-unknown", "x")]),
    ),
    "by_braze": (
        {"braze_id": "bid"},
        "update",
        values_sql("bid, v", [("b-known", "gold"), ("b-unknown", "gold")]),
    ),
    "by_email": (
        {"email": "email"},
        "upsert",
        values_sql(
            "email, v",
            [
                ("known@example.com", "known"),
                ("new@example.com", "new"),
                ("dup@example.com", "one"),
                ("dup@example.com", "two"),
                *((bad, "bad") for bad in BAD_EMAILS),
            ],
        ),
    ),
    "by_email_update": (
        {"email": "email"},
        "update",
        values_sql("email, v", [("known@example.com", "k"), ("stranger@example.com", "s")]),
    ),
    "by_phone": (
        {"phone": "phone"},
        "upsert",
        values_sql(
            "phone, v",
            [("+14155550100", "new"), ("+14155550177", "a"), ("+14155550177", "b")]
            + [(bad, "bad") for bad in BAD_PHONES],
        ),
    ),
    "by_phone_update": (
        {"phone": "phone"},
        "update",
        values_sql("phone, v", [("+14155550111", "known"), ("+14155550112", "stranger")]),
    ),
    "by_alias": (
        {"user_alias": {"name": "crm_id", "label": "crm"}},
        "upsert",
        values_sql("crm_id, v", [("c1", "one"), ("c2", "two"), ("c3", "three")]),
    ),
    "by_alias_update": (
        {"user_alias": {"name": "crm_id", "label": "crm"}},
        "update",
        values_sql("crm_id, v", [("c-seeded", "known"), ("c-stranger", "stranger")]),
    ),
}
# small models: one duplicated identifier is far above the default max_duplicate_share
OPTIONS: dict[str, dict[str, Any]] = {
    "by_email": {"on_removed": "unset", "max_duplicate_share": 0.5},
    "by_phone": {"max_duplicate_share": 0.5},
    "by_alias": {"on_removed": "delete"},
}


def schema(switched: dict[str, Any]) -> list[dict[str, Any]]:
    """Each model maps `v` to an attribute named after it; by_switched is given whole."""
    models = [
        {
            "name": name,
            "config": {
                "meta": {
                    "braze": {
                        **identifier,
                        "mode": mode,
                        **OPTIONS.get(name, {}),
                        "attributes": {"v": name},
                    }
                }
            },
        }
        for name, (identifier, mode, _) in MODELS.items()
    ]
    return [*models, {"name": "by_switched", "config": {"meta": {"braze": switched}}}]


def seed(emulator: BrazeEmulator) -> None:
    """The profiles Braze already has, that the update-mode models find."""
    emulator.add_user("seed-x")
    emulator.add_user("seed-b", "b-known")
    emulator.add_user("seed-e", attributes={"email": "known@example.com"})
    emulator.add_user("seed-p", attributes={"phone": "+14155550111"})
    emulator.add_user(user_alias=("crm", "c-seeded"))


def one(users: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(users) == 1, users
    return users[0]


def sent_bodies(emulator: BrazeEmulator) -> str:
    return json.dumps([entry.body for entry in emulator.requests_log], ensure_ascii=False)


def test_every_identifier_in_upsert_and_update(project: DbtProject, emulator: BrazeEmulator) -> None:
    emulator.configure(requests_log_size=10_000)
    seed(emulator)
    for name, (_, _, sql) in MODELS.items():
        project.write_model(sql, name=name)
    project.write_model(switched_sql(), name="by_switched")
    by_external = {"external_id": "user_id", "on_removed": "unset"}
    project.write_schema(
        schema({**by_external, "attributes": {"email": "email", "first_name": "first_name"}})
    )

    # 1. the first sync -----------------------------------------------------------------------
    run = project.dbt("run")
    assert "1 duplicated identifiers (2 rows)" in run.output
    first = project.braze("sync")
    assert first.exit_code == 0, first.output

    # upsert creates, update does not; each object reached the profile Braze resolves
    assert emulator.profile("u3") == {"email": "user3@example.com", "first_name": "Name 3"}
    assert emulator.profile("seed-x") == {"by_external_update": "x"}
    assert emulator.users(external_id="x-unknown") == []
    assert emulator.profile("seed-b") == {"by_braze": "gold"}
    assert emulator.users(braze_id="b-unknown") == []
    known = one(emulator.users(email="known@example.com"))
    assert known["external_id"] == "seed-e"
    assert known["attributes"] == {"email": "known@example.com", "by_email": "known", "by_email_update": "k"}
    created = one(emulator.users(email="new@example.com"))  # an email-only profile
    assert created["external_id"] is None and created["attributes"]["by_email"] == "new"
    assert emulator.users(email="stranger@example.com") == []
    phoned = one(emulator.users(phone="+14155550100"))  # a phone-only profile
    assert phoned["external_id"] is None and phoned["attributes"]["by_phone"] == "new"
    assert emulator.profile("seed-p") == {"phone": "+14155550111", "by_phone_update": "known"}
    assert emulator.users(phone="+14155550112") == []
    for name, value in {"c1": "one", "c2": "two", "c3": "three"}.items():  # alias-only profiles
        aliased = one(emulator.users(user_alias=("crm", name)))
        assert aliased["external_id"] is None and aliased["attributes"] == {"by_alias": value}
    assert one(emulator.users(user_alias=("crm", "c-seeded")))["attributes"] == {"by_alias_update": "known"}
    assert emulator.users(user_alias=("crm", "c-stranger")) == []
    assert emulator.stats()["users_created"] == N_SWITCHED + 1 + 1 + 3

    # withheld and refused identifiers never leave the warehouse
    bodies = sent_bodies(emulator)
    for never_sent in ["dup@example.com", "+14155550177", *BAD_PHONES, *BAD_EMAILS]:
        assert never_sent not in bodies, never_sent
    assert emulator.users(phone="4155550123") == emulator.users(phone="+14155550199") == []
    assert emulator.stats()["objects_rejected"] == 0
    rejected = dict(
        project.query("select braze_key, reason from braze_rejected where attribute = 'by_phone'")
    )
    assert set(rejected) == {f"phone:{bad}" for bad in BAD_PHONES}
    assert all("not in E.164" in reason for reason in rejected.values()), rejected
    rejected = dict(
        project.query("select braze_key, reason from braze_rejected where attribute = 'by_email'")
    )
    assert (
        "whitespace" in rejected["email:bad address@example.com"] and "no host" in rejected["email:nohost@"]
    )
    assert (
        "rejected phone=4155550123: rejected before sending: phone '4155550123' is not in E.164"
        in first.output
    )
    assert "duplicated: email:dup@example.com (2 rows)" in first.output

    # 2. by_switched is now keyed by e-mail; a user leaves by_email and one by_alias ------------
    points = emulator.stats()["data_points"]
    project.write_schema(
        schema({"email": "email", "on_removed": "unset", "attributes": {"first_name": "first_name"}})
    )
    project.write_model(MODELS["by_email"][2].replace("('new@example.com', 'new'),", ""), name="by_email")
    project.write_model(MODELS["by_alias"][2].replace("('c2', 'two'),", ""), name="by_alias")
    project.dbt("run")

    changed = f"{N_SWITCHED} users are held under another identifier"
    validate = project.braze("validate")
    assert validate.exit_code == 0, validate.output
    assert f"by_switched: its identifier changed since its state was recorded: {changed}" in validate.output
    assert f"{N_SWITCHED} users will be sent whole, by email" in validate.output
    assert validate.output.count("identifier changed") == 1
    plan = project.braze("plan", "--select", "by_switched")
    assert plan.exit_code == 1 and "paused" in plan.output, plan.output  # the mass-removal guard
    assert changed in plan.output and "--allow-removals" in plan.output
    planned = json.loads(project.braze("plan", "--select", "by_switched", "--output", "json").output)
    (document,) = planned["models"]
    assert document["identifier"] == {"field": "email", "column": "email", "alias_label": None}
    assert document["identifier_change"] == {"recorded_elsewhere": N_SWITCHED, "sent_whole": N_SWITCHED}

    paused = project.braze("sync")
    assert paused.exit_code == 1 and "by_switched: paused" in paused.output, paused.output
    assert emulator.stats()["data_points"] == points + 1  # by_email's unset; nothing else changed
    assert one(emulator.users(email="new@example.com"))["attributes"] == {"email": "new@example.com"}
    assert emulator.users(user_alias=("crm", "c2")) == []  # deleted by `user_aliases`
    assert one(emulator.users(user_alias=("crm", "c1")))["attributes"] == {"by_alias": "one"}
    assert any(
        entry.path == "/users/delete"
        and entry.body == {"user_aliases": [{"alias_name": "c2", "alias_label": "crm"}]}
        for entry in emulator.requests_log
    )

    unset = emulator.stats()["attributes_unset"]
    logged = len(emulator.requests_log)
    allowed = project.braze("sync", "--select", "by_switched", "--allow-removals")
    assert allowed.exit_code == 0, allowed.output
    assert re.search(rf"users forgotten +{N_SWITCHED}\n", allowed.output), allowed.output
    # every user sent whole, by e-mail, to the profiles the e-mail resolves; no old key unset
    objects = [obj for entry in emulator.requests_log[logged:] for obj in entry.body["attributes"]]
    assert sorted(objects, key=lambda obj: int(obj["first_name"][5:])) == [
        {"email": f"user{i}@example.com", "first_name": f"Name {i}"} for i in range(1, N_SWITCHED + 1)
    ]
    assert emulator.stats()["attributes_unset"] == unset
    assert emulator.profile("u3") == {"email": "user3@example.com", "first_name": "Name 3"}
    assert emulator.stats()["users_created"] == N_SWITCHED + 5
    validate = project.braze("validate")
    assert "identifier changed" not in validate.output, validate.output

    # 3. nothing pending after the next `dbt run` ---------------------------------------------
    stats = emulator.stats()
    project.dbt("run")
    again = project.braze("sync")
    assert again.exit_code == 0, again.output
    assert [emulator.stats()[n] for n in ("objects_sent", "users_deleted")] == [
        stats["objects_sent"],
        stats["users_deleted"],
    ]
    status = json.loads(project.braze("status", "--output", "json").output)
    identifiers = {m["model"]: m["identifier"] for m in status["models"]}
    assert identifiers["by_alias"] == {"field": "user_alias", "column": "crm_id", "alias_label": "crm"}
    assert identifiers["by_phone"]["field"] == "phone"
