"""The emulator's users by e-mail, phone and alias, their subscription groups,
and deletes by those identifiers: real HTTP over loopback, as test_emulator.py."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from emulator_harness import track

from dbt_braze.emulator import BrazeEmulator

NEWSLETTER = "5b0fd0e8-0c9c-4d6d-9a1f-1d0f7b8e2a11"
SMS = "0a3c7f52-3b1e-45a2-8f7e-7c9d2b6e4f90"


def delete(emu: BrazeEmulator, http: requests.Session, body: dict[str, Any]) -> requests.Response:
    return http.post(f"{emu.url}/users/delete", json=body, timeout=5)


def error_indexes(response: requests.Response) -> list[int]:
    return [error["index"] for error in response.json().get("errors", [])]


def only(users: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(users) == 1, users
    return users[0]


# -- resolution by e-mail and phone ----------------------------------------------


def test_a_shared_email_updates_the_most_recent_profile_with_an_external_id(
    emu: BrazeEmulator, http: requests.Session
) -> None:
    shared = {"email": "shared@example.com"}
    emu.add_user("older", attributes=shared)
    emu.add_user("newer", attributes=shared)
    track(emu, http, {"external_id": "older", "touched": 1})  # now "older" is the more recent
    emu.add_user(attributes=shared)  # the most recent of all, but without an external id
    r = track(emu, http, {"email": "shared@example.com", "plan": "pro"})
    assert r.status_code == 201 and "errors" not in r.json()
    assert [u["external_id"] for u in emu.users(email="shared@example.com") if "plan" in u["attributes"]] == [
        "older"
    ]
    assert emu.stats()["users_created"] == 0


def test_a_shared_email_without_external_ids_updates_the_most_recent_profile(
    emu: BrazeEmulator, http: requests.Session
) -> None:
    first = emu.add_user(attributes={"email": "anon@example.com"})
    second = emu.add_user(attributes={"email": "anon@example.com"})
    track(emu, http, {"email": "anon@example.com", "n": 1})
    assert [u["braze_id"] for u in emu.users(email="anon@example.com") if "n" in u["attributes"]] == [second]
    track(emu, http, {"braze_id": first, "touched": True})  # now the first is the more recent
    track(emu, http, {"email": "anon@example.com", "n": 2})
    assert {u["braze_id"]: u["attributes"]["n"] for u in emu.users(email="anon@example.com")} == {
        first: 2,
        second: 1,
    }


def test_an_unknown_email_or_phone_creates_a_profile_in_upsert(
    emu: BrazeEmulator, http: requests.Session
) -> None:
    r = track(
        emu,
        http,
        {"email": "new@example.com", "plan": "pro"},
        {"phone": "+1 415-555-0123", "plan": "free"},
    )
    assert r.json() == {"message": "success", "attributes_processed": 2}
    by_email = only(emu.users(email="new@example.com"))
    assert (by_email["external_id"], by_email["user_alias"]) == (None, None)
    assert by_email["attributes"] == {"email": "new@example.com", "plan": "pro"}
    by_phone = only(emu.users(phone="+14155550123"))
    assert by_phone["attributes"] == {"phone": "+14155550123", "plan": "free"}
    stats = emu.stats()
    assert (stats["users_created"], stats["data_points"]) == (2, 2)  # the identifier is no data point
    # the same number written otherwise is the same user
    track(emu, http, {"phone": "+1 (415) 555.0123", "plan": "team"})
    assert only(emu.users(phone="+14155550123"))["attributes"]["plan"] == "team"
    assert len(emu.users()) == 2


def test_an_unknown_email_or_phone_creates_nothing_under_update_only(
    emu: BrazeEmulator, http: requests.Session
) -> None:
    r = track(
        emu,
        http,
        {"email": "ghost@example.com", "_update_existing_only": True, "plan": "pro"},
        {"phone": "+14155550199", "_update_existing_only": True, "plan": "pro"},
    )
    assert r.json() == {"message": "success", "attributes_processed": 2}
    assert emu.users() == []
    stats = emu.stats()
    assert (stats["users_created"], stats["users_ignored_update_only"]) == (0, 2)
    emu.add_user("u1", attributes={"email": "known@example.com"})
    track(emu, http, {"email": "known@example.com", "_update_existing_only": True, "plan": "pro"})
    assert emu.profile("u1") == {"email": "known@example.com", "plan": "pro"}


def test_with_both_email_and_phone_the_email_identifies(emu: BrazeEmulator, http: requests.Session) -> None:
    emu.add_user("u1", attributes={"email": "both@example.com"})
    emu.add_user("u2", attributes={"phone": "+14155550123"})
    r = track(emu, http, {"email": "both@example.com", "phone": "+33612345678"})
    assert r.status_code == 201 and "errors" not in r.json()
    assert emu.profile("u1") == {"email": "both@example.com", "phone": "+33612345678"}
    assert only(emu.users(phone="+33612345678"))["external_id"] == "u1"
    assert emu.profile("u2") == {"phone": "+14155550123"}
    assert emu.stats()["data_points"] == 1  # the phone, an attribute here


def test_email_and_phone_on_an_external_id_object_are_attributes(
    emu: BrazeEmulator, http: requests.Session
) -> None:
    track(emu, http, {"external_id": "u1", "email": "a@example.com", "phone": "+14155550123"})
    assert emu.profile("u1") == {"email": "a@example.com", "phone": "+14155550123"}
    assert emu.stats()["data_points"] == 2
    # and the profile is found by them afterwards
    track(emu, http, {"email": "a@example.com", "plan": "pro"}, {"phone": "+14155550123", "seats": 3})
    assert emu.profile("u1") == {"email": "a@example.com", "phone": "+14155550123", "plan": "pro", "seats": 3}
    track(emu, http, {"external_id": "u1", "email": None})
    assert emu.users(email="a@example.com") == []
    assert emu.stats()["users_created"] == 1


def test_events_are_identified_by_email_too(emu: BrazeEmulator, http: requests.Session) -> None:
    emu.add_user("u1", attributes={"email": "a@example.com"})
    event = {"email": "a@example.com", "name": "login", "time": "2026-01-01T00:00:00Z"}
    assert track(emu, http, events=[event]).json() == {"message": "success", "events_processed": 1}
    assert only(emu.users(external_id="u1"))["events"] == 1


# -- aliases -----------------------------------------------------------------------


def test_an_alias_profile_is_created_only_with_an_explicit_false(
    emu: BrazeEmulator, http: requests.Session
) -> None:
    alias = {"alias_name": "crm-42", "alias_label": "crm"}
    track(emu, http, {"user_alias": alias, "plan": "free"})  # the default for aliases: update only
    assert emu.users() == [] and emu.stats()["users_ignored_update_only"] == 1
    track(emu, http, {"user_alias": alias, "_update_existing_only": True, "plan": "free"})
    assert emu.users() == []
    track(emu, http, {"user_alias": alias, "_update_existing_only": False, "plan": "free"})
    created = only(emu.users(user_alias=("crm", "crm-42")))
    assert (created["external_id"], created["user_alias"]) == (None, alias)
    track(emu, http, {"user_alias": alias, "plan": "pro"})  # now it exists: the default updates it
    assert only(emu.users(user_alias=("crm", "crm-42")))["attributes"] == {"plan": "pro"}
    assert emu.stats()["users_created"] == 1
    assert emu.users(user_alias=("other", "crm-42")) == []


def test_malformed_identifiers_are_refused_object_by_object(
    emu: BrazeEmulator, http: requests.Session
) -> None:
    r = track(
        emu,
        http,
        {"external_id": "ok", "plan": "pro"},
        {"user_alias": {"alias_name": "a"}, "plan": "pro"},
        {"user_alias": {"alias_name": "a", "alias_label": "l", "extra": 1}, "_update_existing_only": False},
        {"user_alias": {"alias_name": "", "alias_label": "l"}, "_update_existing_only": False},
        {"user_alias": "crm-42", "_update_existing_only": False},
        {"email": 42, "plan": "pro"},
        {"email": "not an email", "plan": "pro"},
        {"phone": 14155550123, "plan": "pro"},
        {"phone": "call me", "plan": "pro"},
        {"phone": "+1234", "plan": "pro"},
        {"external_id": "u2", "phone": 14155550123},
        {"external_id": "u3", "user_alias": {"alias_name": "a", "alias_label": "l"}},
        {"plan": "no identifier at all"},
    )
    assert r.status_code == 201
    assert error_indexes(r) == list(range(1, 13))
    assert list(emu.profiles) == ["ok"]


# -- subscription groups ----------------------------------------------------------------


def test_subscription_group_states_are_kept_per_profile(emu: BrazeEmulator, http: requests.Session) -> None:
    subscribe = {"subscription_group_id": NEWSLETTER, "subscription_state": "subscribed"}
    r = track(
        emu,
        http,
        {
            "external_id": "u1",
            "plan": "pro",
            "subscription_groups": [
                subscribe,
                {"subscription_group_id": SMS, "subscription_state": "unsubscribed"},
            ],
        },  # fmt: skip
        {"external_id": "u2", "subscription_groups": [subscribe]},
    )
    assert r.json() == {"message": "success", "attributes_processed": 2}
    assert only(emu.users(external_id="u1"))["subscription_groups"] == {
        NEWSLETTER: "subscribed",
        SMS: "unsubscribed",
    }
    assert emu.profile("u1") == {"plan": "pro"}  # states are not attributes
    groups = [{"subscription_group_id": NEWSLETTER, "subscription_state": "unsubscribed"}]
    track(emu, http, {"external_id": "u1", "subscription_groups": groups})
    assert only(emu.users(external_id="u1"))["subscription_groups"] == {
        NEWSLETTER: "unsubscribed",
        SMS: "unsubscribed",
    }
    assert only(emu.users(external_id="u2"))["subscription_groups"] == {NEWSLETTER: "subscribed"}


def test_subscription_groups_are_validated(emu: BrazeEmulator, http: requests.Session) -> None:
    def group(**fields: Any) -> dict[str, Any]:
        return {"external_id": "u1", "subscription_groups": [fields]}

    r = track(
        emu,
        http,
        group(subscription_group_id=NEWSLETTER, subscription_state="unsubscribed"),
        group(subscription_group_id=NEWSLETTER, subscription_state="opted_in"),
        group(subscription_group_id=NEWSLETTER),
        group(subscription_state="subscribed"),
        group(subscription_group_id="", subscription_state="subscribed"),
        group(subscription_group_id=7, subscription_state="subscribed"),
        group(subscription_group_id=NEWSLETTER, subscription_state="subscribed", channel="email"),
        {"external_id": "u1", "subscription_groups": {"id": NEWSLETTER}},
        {"external_id": "u1", "subscription_groups": None},
        {"external_id": "u1", "subscription_groups": ["subscribed"]},
    )
    assert error_indexes(r) == list(range(1, 10))
    assert only(emu.users(external_id="u1"))["subscription_groups"] == {NEWSLETTER: "unsubscribed"}


def test_subscription_changes_are_no_data_points(emu: BrazeEmulator, http: requests.Session) -> None:
    groups = [
        {"subscription_group_id": NEWSLETTER, "subscription_state": "subscribed"},
        {"subscription_group_id": SMS, "subscription_state": "unsubscribed"},
    ]
    objects = (
        {"external_id": "u1", "plan": "pro", "subscription_groups": groups},
        {"email": "a@example.com", "subscription_groups": groups[1:]},
    )
    track(emu, http, *objects)
    stats = emu.stats()
    counts = (stats["data_points"], stats["subscription_changes"], stats["subscription_subscribes"])
    assert counts == (1, 3, 1)
    emu.reset()
    emu.configure(sink_mode=True)  # sink mode counts them the same way, without validating
    track(emu, http, *objects)
    stats = emu.stats()
    assert (stats["data_points"], stats["subscription_changes"], stats["subscription_subscribes"]) == counts


def test_subscription_groups_by_email_change_every_profile_with_it(
    emu: BrazeEmulator, http: requests.Session
) -> None:
    emu.add_user("u1", attributes={"email": "shared@example.com"}, subscription_groups={SMS: "subscribed"})
    emu.add_user("u2", attributes={"email": "shared@example.com"})
    emu.add_user("u3", attributes={"email": "other@example.com"})
    groups = [{"subscription_group_id": NEWSLETTER, "subscription_state": "unsubscribed"}]
    track(emu, http, {"email": "shared@example.com", "plan": "pro", "subscription_groups": groups})
    states = {u["external_id"]: u["subscription_groups"] for u in emu.users()}
    assert states == {
        "u1": {SMS: "subscribed", NEWSLETTER: "unsubscribed"},
        "u2": {NEWSLETTER: "unsubscribed"},
        "u3": {},
    }
    assert [u["external_id"] for u in emu.users() if "plan" in u["attributes"]] == ["u2"]  # attributes: one
    assert emu.stats()["subscription_changes"] == 1


def test_email_and_push_subscribe_take_only_the_three_states(
    emu: BrazeEmulator, http: requests.Session
) -> None:
    r = track(
        emu,
        http,
        {"external_id": "u1", "email_subscribe": "opted_in", "push_subscribe": "subscribed"},
        {"external_id": "u2", "email_subscribe": "unsubscribed"},
        {"external_id": "u3", "email_subscribe": "yes"},
        {"external_id": "u4", "push_subscribe": True},
        {"external_id": "u5", "email_subscribe": "Subscribed"},
    )
    assert error_indexes(r) == [2, 3, 4]
    assert emu.profile("u1") == {"email_subscribe": "opted_in", "push_subscribe": "subscribed"}


def test_seeding_refuses_an_invalid_subscription_state(emu: BrazeEmulator) -> None:
    with pytest.raises(ValueError, match="subscription states"):
        emu.add_user("u1", subscription_groups={NEWSLETTER: "opted_in"})
    assert emu.users() == []


# -- /users/delete by alias, e-mail and phone ---------------------------------------------


def test_delete_by_user_alias(emu: BrazeEmulator, http: requests.Session) -> None:
    emu.add_user(user_alias=("crm", "a"))
    emu.add_user("u1", user_alias=("crm", "b"))
    emu.add_user(user_alias=("crm", "c"))
    aliases = [{"alias_name": "a", "alias_label": "crm"}, {"alias_name": "b", "alias_label": "crm"}]
    r = delete(emu, http, {"user_aliases": [*aliases, {"alias_name": "nobody", "alias_label": "crm"}]})
    assert r.status_code == 201 and r.json() == {"deleted": 3, "message": "success"}
    assert [u["user_alias"]["alias_name"] for u in emu.users()] == ["c"]
    assert emu.stats()["users_deleted"] == 2
    for bad in ([{"alias_name": "c"}], ["c"], [{"alias_name": "c", "alias_label": ""}]):
        assert delete(emu, http, {"user_aliases": bad}).status_code == 400
    assert len(emu.users()) == 1


def test_delete_by_email_needs_a_prioritization(emu: BrazeEmulator, http: requests.Session) -> None:
    emu.add_user("u1", attributes={"email": "a@example.com"})
    for entries in (
        ["a@example.com"],
        [{"email": "a@example.com"}],
        [{"email": "a@example.com", "prioritization": []}],
        [{"email": "a@example.com", "prioritization": ["newest"]}],
        [{"email": "a@example.com", "prioritization": ["identified", "unidentified"]}],
        [{"email": "not an email", "prioritization": ["identified"]}],
    ):
        r = delete(emu, http, {"email_addresses": entries})
        assert r.status_code == 400, entries
    assert emu.profile("u1") is not None
    r = delete(emu, http, {"email_addresses": [{"email": "a@example.com", "prioritization": ["identified"]}]})
    assert r.status_code == 201 and emu.users() == []


def test_delete_by_email_follows_the_prioritization(emu: BrazeEmulator, http: requests.Session) -> None:
    shared = {"email": "s@example.com"}
    emu.add_user("u1", attributes=shared)
    old_anonymous = emu.add_user(attributes=shared)
    new_anonymous = emu.add_user(attributes=shared)

    def delete_shared(*prioritization: str) -> None:
        entry = {"email": "s@example.com", "prioritization": list(prioritization)}
        assert delete(emu, http, {"email_addresses": [entry]}).status_code == 201

    delete_shared("unidentified")  # two unidentified profiles: Braze deletes neither
    assert len(emu.users(email="s@example.com")) == 3
    delete_shared("unidentified", "least_recently_updated")
    assert [u["braze_id"] for u in emu.users(email="s@example.com")] == [
        emu.braze_id_of("u1"),
        new_anonymous,
    ]
    assert old_anonymous not in {u["braze_id"] for u in emu.users()}
    delete_shared("identified", "most_recently_updated")
    assert [u["braze_id"] for u in emu.users()] == [new_anonymous]
    assert emu.stats()["users_deleted"] == 2


def test_delete_by_phone_number(emu: BrazeEmulator, http: requests.Session) -> None:
    emu.add_user("u1", attributes={"phone": "+14155550123"})
    emu.add_user("u2", attributes={"phone": "+14155550124"})
    entry = {"phone": "+1 415 555 0123", "prioritization": ["most_recently_updated"]}
    assert delete(emu, http, {"phone_numbers": [entry]}).status_code == 201
    assert list(emu.profiles) == ["u2"]
    # the number is free again: an upsert by it creates a phone-only profile
    track(emu, http, {"phone": "+14155550123", "plan": "pro"})
    assert only(emu.users(phone="+14155550123"))["external_id"] is None
    assert delete(emu, http, {"phone_numbers": [{"phone": "+14155550124"}]}).status_code == 400
    bad = {"phone": "call me", "prioritization": ["identified"]}
    assert delete(emu, http, {"phone_numbers": [bad]}).status_code == 400
    assert len(emu.users()) == 2


def test_delete_takes_at_most_50_of_one_identifier_type(emu: BrazeEmulator, http: requests.Session) -> None:
    for i in range(51):
        emu.add_user(user_alias=("crm", f"a{i}"), attributes={"email": f"u{i}@example.com"})
    aliases = [{"alias_name": f"a{i}", "alias_label": "crm"} for i in range(51)]
    emails = [{"email": f"u{i}@example.com", "prioritization": ["unidentified"]} for i in range(51)]
    assert delete(emu, http, {"user_aliases": aliases}).status_code == 400
    assert delete(emu, http, {"email_addresses": emails}).status_code == 400
    assert len(emu.users()) == 51
    mixed = {"user_aliases": aliases[:1], "email_addresses": emails[1:2]}
    assert delete(emu, http, mixed).status_code == 400
    assert delete(emu, http, {"user_aliases": aliases[:50]}).json() == {"deleted": 50, "message": "success"}
    assert delete(emu, http, {"email_addresses": emails[50:]}).status_code == 201
    assert emu.users() == []


# -- inspection over HTTP ----------------------------------------------------------------


def test_inspection_finds_users_by_email_phone_and_alias(emu: BrazeEmulator) -> None:
    seed = {
        "user_alias": {"alias_name": "crm-1", "alias_label": "crm"},
        "attributes": {"email": "a@example.com", "phone": "+14155550123"},
        "subscription_groups": {NEWSLETTER: "unsubscribed"},
    }
    r = requests.post(f"{emu.url}/_emulator/users", json=seed, timeout=5)
    assert r.status_code == 201
    braze_id = r.json()["braze_id"]
    emu.add_user("u2", attributes={"email": "a@example.com"})
    everyone = requests.get(f"{emu.url}/_emulator/users", timeout=5).json()
    assert [u["braze_id"] for u in everyone] == [braze_id, emu.braze_id_of("u2")]
    assert everyone[0] == {
        "braze_id": braze_id,
        "external_id": None,
        "user_alias": seed["user_alias"],
        "email": "a@example.com",
        "phone": "+14155550123",
        "attributes": seed["attributes"],
        "subscription_groups": {NEWSLETTER: "unsubscribed"},
        "events": 0,
        "purchases": 0,
    }

    def find(**identifiers: Any) -> list[str]:
        found = requests.post(f"{emu.url}/_emulator/users/find", json=identifiers, timeout=5)
        assert found.status_code == 200
        return [user["braze_id"] for user in found.json()]

    assert find(email="a@example.com") == [braze_id, emu.braze_id_of("u2")]
    assert find(phone="+1 415 555 0123") == [braze_id]
    assert find(user_alias=seed["user_alias"]) == [braze_id]
    assert find(email="a@example.com", external_id="u2") == [emu.braze_id_of("u2")]
    assert find(phone="not a number") == [] and find(email="b@example.com") == []
    assert requests.post(f"{emu.url}/_emulator/users/find", json={"mail": "x"}, timeout=5).status_code == 400
