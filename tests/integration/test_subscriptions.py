"""Subscription groups end to end (contract, "Subscription states"), on the emulator over
real sockets, on DuckDB and PostgreSQL.

One project holds two models of the same users, one under `subscriptions:
unsubscribe_only` (the default) and one under `mirror`, so that each `dbt run` serves
both; three runs walk the states every rule needs: new users, a change to one group, a
subscribe given in the warehouse, a value becoming null, a re-unsubscribe, and a
--full-refresh in between. The two models' users have ids of their own (`g-`, `m-`).
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from dbt_braze.emulator import BrazeEmulator

from harness import API_KEY, DbtProject

pytestmark = pytest.mark.integration

NEWS = "5b0fd0e8-0c9c-4d6d-9a1f-1d0f7b8e2a11"  # from a boolean column
SMS = "0a3c7f52-3b1e-45a2-8f7e-7c9d2b6e4f90"  # from a text column
GROUPS = {"newsletter": NEWS, "sms": SMS}
GUARDED, MIRROR = "subs_guarded", "subs_mirror"
PREFIX = {GUARDED: "g", MIRROR: "m"}
USERS = range(1, 13)
ATTRIBUTES = 2  # first_name, email_subscribe
REJECTED = {11, 12}  # a bad email_subscribe, a bad sms state

# user -> (newsletter, sms, email_subscribe), per dbt run
Rows = dict[int, tuple[bool | None, str | None, str]]
FIRST: Rows = {
    i: (
        None if i == 10 else i % 2 == 0,
        "maybe" if i == 12 else "subscribed" if i <= 4 else "unsubscribed",
        "yes" if i == 11 else "opted_in",
    )
    for i in USERS
}
# 2: newsletter on -> off (one group changes); 3: off -> on; 4: on -> null; 5: sms off -> on
SECOND: Rows = {**FIRST, 2: (False, *FIRST[2][1:]), 3: (True, *FIRST[3][1:]), 4: (None, *FIRST[4][1:])}
SECOND[5] = (FIRST[5][0], "subscribed", FIRST[5][2])
# 5: sms on -> off again, after the user subscribed inside Braze meanwhile; 9 leaves the model
THIRD: Rows = {**SECOND, 5: (SECOND[5][0], "unsubscribed", SECOND[5][2])}
del THIRD[9]


def sql_value(value: bool | str | None) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else f"'{value}'"


def model_sql(model: str, rows: Rows) -> str:
    values = ", ".join(f"({i}, {', '.join(map(sql_value, row))})" for i, row in rows.items())
    return f"""
        select '{PREFIX[model]}-' || i as user_id, 'Name ' || i as first_name,
               cast(email_subscribe as varchar) as email_subscribe,
               cast(newsletter as boolean) as newsletter, cast(sms as varchar) as sms
        from (values {values}) t(i, newsletter, sms, email_subscribe)
    """


def block(model: str, **extra: Any) -> dict[str, Any]:
    braze = {
        "external_id": "user_id",
        "attributes": {"first_name": "first_name", "email_subscribe": "email_subscribe"},
        "subscription_groups": GROUPS,
        **extra,
    }
    return {"name": model, "config": {"meta": {"braze": braze}}}


def dbt_run(project: DbtProject, rows: Rows) -> None:
    for model in (GUARDED, MIRROR):
        project.write_model(model_sql(model, rows), name=model)
    project.dbt("run")


def states(rows: Rows, i: int) -> dict[str, str | None]:
    """The state each group's column of user i states (None: nothing)."""
    newsletter, sms, _ = rows[i]
    return {NEWS: None if newsletter is None else "subscribed" if newsletter else "unsubscribed", SMS: sms}


def sync(project: DbtProject, model: str, *options: str, command: str = "sync") -> dict[str, Any]:
    result = project.braze(command, "--select", model, "--output", "json", *options)
    document = json.loads(result.output)
    (report,) = document["models"]
    assert document["exit_code"] == 0, result.output
    return dict(report)


def sent_objects(emulator: BrazeEmulator, since: int) -> list[dict[str, Any]]:
    """The attributes objects of the track requests logged after the first `since`."""
    log = emulator.requests_log[since:]
    return [obj for path, body, _ in log if path == "/users/track" for obj in body.get("attributes", [])]


def groups_of(emulator: BrazeEmulator, model: str, i: int) -> dict[str, str]:
    (user,) = emulator.users(external_id=f"{PREFIX[model]}-{i}")
    return dict(user["subscription_groups"])


def delta(emulator: BrazeEmulator, before: dict[str, Any]) -> dict[str, int]:
    after = emulator.stats()
    return {
        k: after[k] - before[k] for k in ("data_points", "subscription_changes", "subscription_subscribes")
    }


def subscribe_inside_braze(emulator: BrazeEmulator, external_id: str, group: str) -> None:
    """What a user's own opt-in in Braze does: a track call from elsewhere."""
    body = {"attributes": [{"external_id": external_id, "subscription_groups": [
        {"subscription_group_id": group, "subscription_state": "subscribed"}]}]}  # fmt: skip
    request = urllib.request.Request(
        f"{emulator.url}/users/track",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as answer:
        assert answer.status == 201


def test_subscription_groups_end_to_end(project: DbtProject, emulator: BrazeEmulator) -> None:
    project.write_schema([block(GUARDED, on_removed="unset"), block(MIRROR, subscriptions="mirror")])
    valid = [i for i in USERS if i not in REJECTED]

    # 1. new users: unsubscribe_only sends their unsubscribes only; mirror both
    dbt_run(project, FIRST)
    before, logged = emulator.stats(), len(emulator.requests_log)
    guarded = sync(project, GUARDED)
    unsubscribes = sum(v == "unsubscribed" for i in valid for v in states(FIRST, i).values())
    subscribes = sum(v == "subscribed" for i in valid for v in states(FIRST, i).values())
    assert delta(emulator, before) == {
        "data_points": ATTRIBUTES * len(valid),  # the group states are no data points
        "subscription_changes": unsubscribes,
        "subscription_subscribes": 0,
    }
    assert guarded["data_points"] == ATTRIBUTES * len(valid) and guarded["users_created"] == len(valid)
    assert guarded["subscription_changes"] == unsubscribes and guarded["subscribes_withheld"] == subscribes
    for i in valid:
        wanted = {g: v for g, v in states(FIRST, i).items() if v == "unsubscribed"}
        assert groups_of(emulator, GUARDED, i) == wanted, i
    # values that are no subscription state are rejected locally, with the reason, and not sent
    assert guarded["rows_rejected"] == len(REJECTED)
    assert not {o["external_id"] for o in sent_objects(emulator, logged)} & {"g-11", "g-12"}
    reasons = dict(
        project.query(
            f"select braze_key, max(reason) from braze_rejected where model_name = '{GUARDED}' group by 1"
        )
    )
    assert set(reasons) == {"g-11", "g-12"}
    assert "email_subscribe: yes is not a subscription state" in reasons["g-11"]
    assert f"subscription group {SMS}: maybe is not a subscription state" in reasons["g-12"]
    # the run history keeps the subscription changes apart from the data points
    status = json.loads(project.braze("status", "--select", GUARDED, "--output", "json").output)
    (latest, *_) = status["models"][0]["recent_runs"]
    assert (latest["subscription_changes"], latest["data_points"]) == (unsubscribes, ATTRIBUTES * len(valid))

    before = emulator.stats()
    mirrored = sync(project, MIRROR)
    assert delta(emulator, before) == {
        "data_points": ATTRIBUTES * len(valid),
        "subscription_changes": unsubscribes + subscribes,
        "subscription_subscribes": subscribes,
    }
    assert (mirrored["subscription_changes"], mirrored["subscribes_withheld"]) == (
        unsubscribes + subscribes,
        0,
    )
    for i in valid:
        wanted = {g: v for g, v in states(FIRST, i).items() if v is not None}
        assert groups_of(emulator, MIRROR, i) == wanted, i

    # 2. a change to one group sends that group only; a subscribe given in the warehouse is
    # withheld without an empty object; a value becoming null sends nothing
    dbt_run(project, SECOND)
    # status counts the pending group states apart from the attributes
    status = json.loads(project.braze("status", "--select", GUARDED, "--output", "json").output)
    pending = status["models"][0]["pending"]
    assert (pending["attributes"], pending["changed_users"]) == (0, 3) and pending["subscription_groups"] >= 1
    assert "subscription group states)" in project.braze("status", "--select", GUARDED).output
    plan = sync(project, GUARDED, command="plan")
    assert (plan["subscription_changes"], plan["subscribes_withheld"], plan["data_points"]) == (1, 2, 0)
    text = project.braze("plan", "--select", GUARDED).output
    assert "subscription changes would be sent" in text and "subscribes withheld, not sent" in text, text
    before, logged = emulator.stats(), len(emulator.requests_log)
    guarded = sync(project, GUARDED)
    unsubscribe = {"subscription_group_id": NEWS, "subscription_state": "unsubscribed"}
    assert sent_objects(emulator, logged) == [{"external_id": "g-2", "subscription_groups": [unsubscribe]}]
    assert delta(emulator, before) == {
        "data_points": 0,
        "subscription_changes": 1,
        "subscription_subscribes": 0,
    }
    assert (guarded["data_points"], guarded["subscription_changes"], guarded["subscribes_withheld"]) == (
        0,
        1,
        2,
    )
    assert groups_of(emulator, GUARDED, 3) == {NEWS: "unsubscribed"}  # not re-subscribed
    assert groups_of(emulator, GUARDED, 5) == {NEWS: "unsubscribed", SMS: "unsubscribed"}
    assert groups_of(emulator, GUARDED, 4) == {}  # null: nothing sent, nothing unset

    logged = len(emulator.requests_log)
    mirrored = sync(project, MIRROR)
    subscribe = {"subscription_group_id": NEWS, "subscription_state": "subscribed"}
    assert sorted(sent_objects(emulator, logged), key=lambda o: o["external_id"]) == [
        {"external_id": "m-2", "subscription_groups": [unsubscribe]},
        {"external_id": "m-3", "subscription_groups": [subscribe]},
        {
            "external_id": "m-5",
            "subscription_groups": [{"subscription_group_id": SMS, "subscription_state": "subscribed"}],
        },
    ]
    assert (mirrored["data_points"], mirrored["subscription_changes"]) == (0, 3)
    assert groups_of(emulator, MIRROR, 4) == {NEWS: "subscribed", SMS: "subscribed"}  # null: left alone

    # nothing pending after both syncs: the withheld subscribes are not sent again, nor counted
    before = emulator.stats()
    assert sync(project, GUARDED)["subscribes_withheld"] == 0
    assert emulator.stats()["requests"] == before["requests"]

    # --full-refresh resends every user whole, and still withholds every subscribe
    before = emulator.stats()
    refreshed = sync(project, GUARDED, "--full-refresh")
    current = [v for i in valid for v in states(SECOND, i).values()]
    assert delta(emulator, before) == {
        "data_points": ATTRIBUTES * len(valid),
        "subscription_changes": current.count("unsubscribed"),
        "subscription_subscribes": 0,
    }
    assert refreshed["subscribes_withheld"] == current.count("subscribed")
    assert all("subscribed" not in groups_of(emulator, GUARDED, i).values() for i in valid)

    # 3. user 5 subscribed to sms inside Braze; the warehouse, which had stated a subscribe
    # (withheld), now unsubscribes them: that unsubscribe goes out. User 9 left the model:
    # its attributes are unset, its group states forgotten, not sent
    subscribe_inside_braze(emulator, "g-5", SMS)
    dbt_run(project, THIRD)
    before, logged = emulator.stats(), len(emulator.requests_log)
    guarded = sync(project, GUARDED)
    assert groups_of(emulator, GUARDED, 5) == {NEWS: "unsubscribed", SMS: "unsubscribed"}
    sms_off = {"subscription_group_id": SMS, "subscription_state": "unsubscribed"}
    unset = {"external_id": "g-9", "_update_existing_only": True, "first_name": None, "email_subscribe": None}
    sent = sorted(sent_objects(emulator, logged), key=lambda o: str(o["external_id"]))
    assert sent == [{"external_id": "g-5", "subscription_groups": [sms_off]}, unset]
    assert delta(emulator, before) == {
        "data_points": ATTRIBUTES,
        "subscription_changes": 1,
        "subscription_subscribes": 0,
    }
    assert (guarded["subscription_changes"], guarded["subscribes_withheld"]) == (1, 0)
    assert groups_of(emulator, GUARDED, 9) == {NEWS: "unsubscribed", SMS: "unsubscribed"}
    held = project.query(
        "select attribute, value_hash from (select attribute, value_hash, row_number() over"
        " (partition by attribute order by acked_at desc) as recency from braze_state"
        f" where model_name = '{GUARDED}' and braze_key = 'g-9') latest where recency = 1"
    )
    assert sorted(held) == sorted(
        (a, None)
        for a in ("first_name", "email_subscribe", *(f"$subscription_group:{g}" for g in (NEWS, SMS)))
    )
