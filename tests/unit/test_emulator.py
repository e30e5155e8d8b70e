"""The Braze emulator over real loopback sockets, driven with requests."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

import pytest
import requests
from emulator_harness import AUTH, KEY, TRACK_ONLY_KEY, track

from dbt_braze.emulator import ALL_PERMISSIONS, BrazeEmulator, EmulatorConfig

# -- /users/track: success, partial success, refusal ---------------------------


def test_success_stores_profile(emu: BrazeEmulator, http: requests.Session) -> None:
    r = track(emu, http, {"external_id": "u1", "plan": "pro", "score": 1.5, "tags": ["a"]})
    assert r.status_code == 201
    assert r.json() == {"message": "success", "attributes_processed": 1}
    assert emu.profile("u1") == {"plan": "pro", "score": 1.5, "tags": ["a"]}
    assert emu.profiles == {"u1": {"plan": "pro", "score": 1.5, "tags": ["a"]}}
    assert emu.braze_id_of("u1") is not None
    assert emu.stats()["users_created"] == 1


def test_partial_errors_are_201_with_index(emu: BrazeEmulator, http: requests.Session) -> None:
    r = track(
        emu,
        http,
        {"external_id": "ok", "plan": "pro"},
        {"external_id": "bad", "email": "not an email"},
        {"external_id": "x", "braze_id": "y"},
    )
    assert r.status_code == 201
    body = r.json()
    assert body["attributes_processed"] == 1
    assert [(e["input_array"], e["index"]) for e in body["errors"]] == [
        ("attributes", 1),
        ("attributes", 2),
    ]
    assert "email" in body["errors"][0]["type"]
    assert emu.profile("bad") is None
    stats = emu.stats()
    assert (stats["objects_accepted"], stats["objects_rejected"]) == (1, 2)


def test_all_invalid_is_400(emu: BrazeEmulator, http: requests.Session) -> None:
    r = track(emu, http, {"external_id": 42, "plan": "pro"}, {"plan": "no identifier"})
    assert r.status_code == 400
    body = r.json()
    assert body["message"].startswith("Valid data must be provided")
    assert [e["index"] for e in body["errors"]] == [0, 1]
    assert emu.profiles == {}


def test_a_request_with_no_object_is_brazes_400_before_any_fault(
    emu: BrazeEmulator, http: requests.Session
) -> None:
    # what a sync's key check sends: Braze proves the key with a JSON 400, and the check
    # must not eat a fault a test scripted for the requests that follow
    emu.configure(scripted_statuses=[503], error_rate=1.0, error_status=502)
    for body in ({"attributes": []}, {}, {"attributes": [], "events": []}):
        r = http.post(f"{emu.url}/users/track", json=body, timeout=5)
        assert r.status_code == 400
        assert r.json() == {"message": "Valid data must be provided in the 'attributes', 'events', "
                            "or 'purchases' fields."}  # fmt: skip
    stats = emu.stats()
    assert stats["scripted_statuses_remaining"] == 1
    assert (stats["empty_track_requests"], stats["requests"], stats["track_requests"]) == (3, 0, 0)
    assert track(emu, http, {"external_id": "u1"}).status_code == 503
    assert http.post(f"{emu.url}/users/track", json={"attributes": []}, headers={"Authorization":
                     "Bearer wrong-key"}, timeout=5).status_code == 401  # fmt: skip


def test_76_objects_combined_is_400(emu: BrazeEmulator, http: requests.Session) -> None:
    attributes = [{"external_id": f"u{i}", "n": i} for i in range(50)]
    events = [{"external_id": f"u{i}", "name": "e", "time": "2026-01-01T00:00:00Z"} for i in range(26)]
    r = track(emu, http, *attributes, events=events)
    assert r.status_code == 400
    assert r.json()["message"] == "Max Input Length Exceeded"
    assert emu.profiles == {}
    r = track(emu, http, *attributes, events=events[:25])
    assert r.json() == {"message": "success", "attributes_processed": 50, "events_processed": 25}


def test_standard_fields(emu: BrazeEmulator, http: requests.Session) -> None:
    r = track(
        emu,
        http,
        {"external_id": "u1", "gender": "f", "country": "fr", "dob": "1990-02-28"},
        {"external_id": "u2", "country": "France", "email_subscribe": "opted_in"},
        {"external_id": "u3", "dob": "1990-02-30"},
        {"external_id": "u4", "push_subscribe": "yes"},
        {"external_id": "u5", "gender": "X"},
    )
    assert r.status_code == 201
    assert [e["index"] for e in r.json()["errors"]] == [2, 3, 4]
    assert emu.profile("u1") == {"gender": "F", "country": "FR", "dob": "1990-02-28"}
    assert emu.profile("u2") == {"email_subscribe": "opted_in"}  # unmappable country -> null


def test_null_unsets_and_long_string_is_not_applied(emu: BrazeEmulator, http: requests.Session) -> None:
    emu.add_user("u1", attributes={"plan": "pro", "nickname": "bob", "age": 3})
    r = track(emu, http, {"external_id": "u1", "plan": None, "nickname": "x" * 256, "age": 4})
    assert r.status_code == 201
    assert emu.profile("u1") == {"nickname": "bob", "age": 4}
    stats = emu.stats()
    assert (stats["attributes_unset"], stats["values_not_applied"]) == (1, 1)


def test_object_values_operators_and_merge(emu: BrazeEmulator, http: requests.Session) -> None:
    emu.add_user("u1", attributes={"address": {"city": "Paris", "zip": "75001"}, "n": 1})
    track(emu, http, {"external_id": "u1", "address": {"city": "Lyon"}, "n": {"inc": 2}})
    assert emu.profile("u1") == {"address": {"city": "Lyon"}, "n": 3}
    track(emu, http, {"external_id": "u1", "_merge_objects": True, "address": {"zip": "69001"}})
    track(emu, http, {"external_id": "u1", "tags": {"add": ["a", "b"]}})
    track(emu, http, {"external_id": "u1", "tags": {"remove": ["a"]}})
    assert emu.profile("u1") == {"address": {"city": "Lyon", "zip": "69001"}, "n": 3, "tags": ["b"]}


def test_nan_is_invalid_json(emu: BrazeEmulator, http: requests.Session) -> None:
    body = b'{"attributes": [{"external_id": "u1", "score": NaN}]}'
    r = http.post(f"{emu.url}/users/track", data=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert emu.profiles == {}


def test_body_too_large_is_413(emu: BrazeEmulator, http: requests.Session) -> None:
    emu.configure(max_body_bytes=1000)
    r = track(emu, http, {"external_id": "u1", "blob": "x" * 2000})
    assert r.status_code == 413
    assert track(emu, http, {"external_id": "u1", "plan": "pro"}).status_code == 201


# -- identifiers and update-only ----------------------------------------------


def test_update_only_ignores_unknown_user(emu: BrazeEmulator, http: requests.Session) -> None:
    r = track(emu, http, {"external_id": "ghost", "_update_existing_only": True, "plan": "pro"})
    assert r.status_code == 201
    assert r.json() == {"message": "success", "attributes_processed": 1}
    assert emu.profiles == {}
    stats = emu.stats()
    assert (stats["users_ignored_update_only"], stats["users_created"]) == (1, 0)
    assert stats["data_points"] == 1


def test_braze_id_never_creates_but_updates(emu: BrazeEmulator, http: requests.Session) -> None:
    r = track(emu, http, {"braze_id": "nobody", "_update_existing_only": False, "plan": "pro"})
    assert r.status_code == 201 and "errors" not in r.json()
    assert emu.profiles == {}
    braze_id = emu.add_user(braze_id="b-1", attributes={"plan": "free"})
    assert braze_id == "b-1"
    track(emu, http, {"braze_id": "b-1", "plan": "pro"})
    assert emu.profiles == {"braze_id:b-1": {"plan": "pro"}}


def test_data_points(emu: BrazeEmulator, http: requests.Session) -> None:
    track(
        emu,
        http,
        {"external_id": "u1", "_update_existing_only": False, "a": 1, "b": None, "c": "x"},
        {"external_id": "u2", "a": 1},
        {"plan": "refused objects are not counted"},
    )
    assert emu.stats()["data_points"] == 4


# -- auth, content type, path -------------------------------------------------


def test_401_echoes_the_key(emu: BrazeEmulator) -> None:
    r = requests.post(
        f"{emu.url}/users/track",
        json={"attributes": [{"external_id": "u1"}]},
        headers={"Authorization": "Bearer secret-abc-123"},
    )
    assert r.status_code == 401
    assert r.json() == {"message": "Invalid API key: secret-abc-123"}
    assert requests.post(f"{emu.url}/users/track", json={}).status_code == 401


def test_403_missing_permission(emu: BrazeEmulator) -> None:
    r = requests.post(
        f"{emu.url}/users/export/ids",
        json={"external_ids": ["u1"]},
        headers={"Authorization": f"Bearer {TRACK_ONLY_KEY}"},
    )
    assert r.status_code == 403
    assert "users.export.ids" in r.json()["message"]


def test_415_without_json_content_type(emu: BrazeEmulator, http: requests.Session) -> None:
    r = http.post(f"{emu.url}/users/track", data=b"{}", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415


def test_trailing_slash_is_404(emu: BrazeEmulator, http: requests.Session) -> None:
    r = http.post(f"{emu.url}/users/track/", json={"attributes": [{"external_id": "u1"}]})
    assert r.status_code == 404
    assert emu.profiles == {}


# -- rate limits and faults ---------------------------------------------------


class FakeClock:
    """Epoch seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.25

    def __call__(self) -> float:
        return self.now


def test_rate_limit_headers_and_429(http: requests.Session) -> None:
    clock = FakeClock()
    config = EmulatorConfig(rate_limit=2, rate_window_seconds=1.0, retry_after_header=True)
    with BrazeEmulator(api_keys={KEY: ALL_PERMISSIONS}, config=config, clock=clock) as emu:
        obj = {"external_id": "u1", "n": 1}
        first, second, third = (track(emu, http, obj) for _ in range(3))
        assert [r.status_code for r in (first, second, third)] == [201, 201, 429]
        assert first.headers["X-RateLimit-Limit"] == "2"
        assert [r.headers["X-RateLimit-Remaining"] for r in (first, second)] == ["1", "0"]
        assert first.headers["X-RateLimit-Reset"] == "1700000002"  # the window's end, rounded up
        assert third.headers["X-Ratelimit-Retry-After"] == third.headers["Retry-After"] == "1"
        assert "X-RateLimit-Reset" in third.headers
        clock.now += 0.99
        assert track(emu, http, obj).status_code == 429  # the same window
        clock.now += 0.01
        again = track(emu, http, obj)
        assert again.status_code == 201 and again.headers["X-RateLimit-Remaining"] == "1"
        assert emu.stats()["rate_limited"] == 2


def test_rate_limit_delta_reset_style(emu: BrazeEmulator, http: requests.Session) -> None:
    emu.configure(rate_limit=10, rate_window_seconds=3.0, rate_limit_reset_style="delta")
    r = track(emu, http, {"external_id": "u1", "n": 1})
    assert 0 <= int(r.headers["X-RateLimit-Reset"]) <= 3
    emu.configure(rate_limit=None)
    assert "X-RateLimit-Limit" not in track(emu, http, {"external_id": "u1"}).headers


def test_scripted_statuses(emu: BrazeEmulator, http: requests.Session) -> None:
    emu.configure(scripted_statuses=[429, 503, 201, 202])
    replies = [track(emu, http, {"external_id": "u1", "n": i}) for i in range(5)]
    assert [r.status_code for r in replies] == [429, 503, 201, 202, 201]
    assert replies[3].json() == {"message": "queued"}  # Braze's maintenance answer
    assert emu.profile("u1") == {"n": 4}
    log = emu.requests_log
    assert [entry.status for entry in log] == [429, 503, 201, 202, 201]
    assert log[0].path == "/users/track" and log[0].body["attributes"][0]["n"] == 0
    assert emu.stats()["scripted_statuses_remaining"] == 0


def test_error_rate_with_html_body(emu: BrazeEmulator, http: requests.Session) -> None:
    emu.configure(error_rate=1.0, error_status=502, error_body="html", seed=1)
    r = track(emu, http, {"external_id": "u1", "plan": "pro"})
    assert r.status_code == 502
    assert r.headers["Content-Type"] == "text/html" and r.text.startswith("<html>")
    assert emu.profiles == {}


def test_drop_after_apply(emu: BrazeEmulator, http: requests.Session) -> None:
    emu.configure(drop_after_apply_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        track(emu, http, {"external_id": "u1", "plan": "pro"})
    assert emu.profile("u1") == {"plan": "pro"}
    assert emu.stats()["dropped_connections"] == 1
    assert emu.requests_log[-1].status == 0


def test_drop_before_apply(emu: BrazeEmulator, http: requests.Session) -> None:
    emu.configure(drop_before_apply_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        track(emu, http, {"external_id": "u1", "plan": "pro"})
    assert emu.profiles == {}
    emu.configure(drop_before_apply_rate=0.0)
    assert track(emu, http, {"external_id": "u1", "plan": "pro"}).status_code == 201


def test_same_user_overlaps(emu: BrazeEmulator) -> None:
    emu.configure(latency_ms=300)
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def send(external_id: str) -> None:
        barrier.wait()
        body = {"attributes": [{"external_id": external_id, "n": 1}]}
        statuses.append(requests.post(f"{emu.url}/users/track", json=body, headers=AUTH).status_code)

    for users in (["u1", "u1"], ["u2", "u3"]):
        threads = [threading.Thread(target=send, args=(user,)) for user in users]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert statuses == [201] * 4
    stats = emu.stats()
    assert stats["same_user_overlaps"] == 1
    assert stats["max_concurrent_requests"] == 2


# -- delete, export, inspection, CLI ------------------------------------------


def test_delete_and_export(emu: BrazeEmulator, http: requests.Session) -> None:
    emu.add_user("u1", attributes={"plan": "pro", "email": "a@b.co"})
    emu.add_user("u2", attributes={"plan": "free"})
    r = http.post(
        f"{emu.url}/users/export/ids",
        json={"external_ids": ["u1", "nobody"], "fields_to_export": ["email", "custom_attributes"]},
    )
    assert r.status_code == 201
    body = r.json()
    assert body["invalid_user_ids"] == ["nobody"]
    [user] = body["users"]
    assert user["external_id"] == "u1" and user["braze_id"] == emu.braze_id_of("u1")
    assert user["email"] == "a@b.co" and user["custom_attributes"] == {"plan": "pro"}

    r = http.post(f"{emu.url}/users/delete", json={"external_ids": ["u1", "nobody"]})
    assert r.status_code == 201 and r.json() == {"deleted": 2, "message": "success"}
    assert list(emu.profiles) == ["u2"]
    assert emu.stats()["users_deleted"] == 1
    both = {"external_ids": ["u2"], "braze_ids": ["x"]}
    assert http.post(f"{emu.url}/users/delete", json=both).status_code == 400
    too_many = {"external_ids": [f"u{i}" for i in range(51)]}
    assert http.post(f"{emu.url}/users/delete", json=too_many).status_code == 400
    assert http.post(f"{emu.url}/users/export/ids", json=too_many).status_code == 400


def test_inspection_endpoints(emu: BrazeEmulator) -> None:
    r = requests.post(f"{emu.url}/_emulator/users", json={"external_id": "u1", "attributes": {"a": 1}})
    assert r.status_code == 201 and r.json()["braze_id"] == emu.braze_id_of("u1")
    assert requests.get(f"{emu.url}/_emulator/profiles").json() == {"u1": {"a": 1}}
    r = requests.post(f"{emu.url}/_emulator/config", json={"max_objects_per_request": 50})
    assert r.status_code == 200 and emu.config.max_objects_per_request == 50
    assert requests.post(f"{emu.url}/_emulator/config", json={"nope": 1}).status_code == 400
    assert requests.get(f"{emu.url}/_emulator/stats").json()["requests"] == 0
    assert requests.post(f"{emu.url}/_emulator/reset").status_code == 200
    assert emu.profiles == {}


def test_configure_validates(emu: BrazeEmulator) -> None:
    with pytest.raises(ValueError, match="unknown emulator knob"):
        emu.configure(error_rat=0.5)
    with pytest.raises(ValueError, match="error_rate"):
        emu.configure(error_rate=2)
    with pytest.raises(ValueError, match="already exists"):
        emu.add_user("u1")
        emu.add_user("u1")


def test_sink_mode_counts_without_storing(emu: BrazeEmulator, http: requests.Session) -> None:
    emu.configure(sink_mode=True)
    r = track(emu, http, {"external_id": "u1", "a": 1, "b": 2}, {"external_id": "u2", "a": 1})
    assert r.json() == {"message": "success", "attributes_processed": 2}
    assert emu.profiles == {}
    assert (emu.stats()["objects_accepted"], emu.stats()["data_points"]) == (2, 3)


def test_command_line_serves_until_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "dbt_braze.emulator", "--port", "0", "--api-key", "cli-key"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("braze emulator listening on http://127.0.0.1:")
        url = line.split()[-1]
        body = {"attributes": [{"external_id": "u1", "plan": "pro"}]}
        r = requests.post(f"{url}/users/track", json=body, headers={"Authorization": "Bearer cli-key"})
        assert r.status_code == 201
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
