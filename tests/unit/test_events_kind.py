"""Kinds events and purchases in the engine: each row sent at most once, recorded in flight
before it is sent, unknown when Braze's answer is, never sent again unless asked."""

from __future__ import annotations

import dataclasses

import pytest

from dbt_braze.engine import unknown_message
from dbt_braze.errors import BrazeUnavailable
from dbt_braze.report import model_summary

from fakes import FakeBraze, FakeStore, event_rows, make_event_model, run


def store_with(n: int, **kwargs: object) -> FakeStore:
    store = FakeStore()
    store.event_objects = event_rows(n, **kwargs)  # type: ignore[arg-type]
    return store


def test_each_row_goes_once_as_an_event_with_its_identifier() -> None:
    store, braze = store_with(3), FakeBraze()
    report = run(store, braze, make_event_model())
    assert [array for array, _ in braze.event_calls] == ["events"]
    assert braze.sent_events[0] == {
        "external_id": "u0",
        "time": "2026-01-01T00:00:00Z",
        "name": "ordered",
        "properties": {"n": 0},
    }
    assert store.logged("delivered") == ["e00000", "e00001", "e00002"]
    assert report.events_sent == 3 and report.unknown_rows == 0 and braze.track_calls == []


def test_purchases_go_in_the_purchases_array() -> None:
    store, braze = store_with(2), FakeBraze()
    run(store, braze, make_event_model("purchases"))
    assert [array for array, _ in braze.event_calls] == ["purchases"]


def test_a_second_sync_sends_nothing() -> None:
    store, braze = store_with(5), FakeBraze()
    run(store, braze, make_event_model())
    report = run(store, braze, make_event_model())
    assert len(braze.sent_events) == 5 and report.events_sent == 0


def test_every_window_is_recorded_in_flight_in_one_write_before_it_is_sent() -> None:
    store, braze = store_with(250), FakeBraze()
    seen: list[int] = []

    def check(objects: list[dict[str, object]]) -> None:
        in_flight = {i for i, _, status, _ in store.event_log if status == "in_flight"}
        assert {f"e{int(str(o['external_id'])[1:]):05d}" for o in objects} <= in_flight
        seen.append(len(objects))

    braze.on_event_request = check
    run(store, braze, make_event_model(), checkpoint_objects=100, batch_size=75)
    in_flight_writes = [w for w in store.event_writes if w and w[0][2] == "in_flight"]
    # windows of whole batches reaching 100 objects: 75 + 75, then 75 + 25
    assert [len(w) for w in in_flight_writes] == [150, 100]
    assert seen == [75, 75, 75, 25]
    assert store.logged("delivered") == sorted(f"e{i:05d}" for i in range(250))


def test_unknown_answers_are_recorded_with_the_reason_and_never_sent_again() -> None:
    store, braze = store_with(4), FakeBraze()
    braze.unknown = {"u1": "the connection dropped after the body was sent", "u3": "504 Gateway Timeout"}
    report = run(store, braze, make_event_model())
    assert store.logged("unknown") == ["e00001", "e00003"]
    assert ("e00001", "hash1", "unknown", "the connection dropped after the body was sent") in store.event_log
    assert report.events_unknown == 2 and report.unknown_rows == 2 and report.events_sent == 2
    braze.unknown = {}
    again = run(store, braze, make_event_model())
    assert len(braze.sent_events) == 4 and again.unknown_rows == 2
    assert "--resend-unknown" in unknown_message(again) and "--forget-unknown" in unknown_message(again)
    assert "--resend-unknown" in model_summary(make_event_model(), again, dry_run=False)


def test_resend_unknown_sends_the_unknown_rows_again_then_the_new_ones() -> None:
    store, braze = store_with(4), FakeBraze()
    braze.unknown = {"u2": "timeout after the body was written"}
    run(store, braze, make_event_model())
    braze.unknown = {}
    store.event_objects += event_rows(1, start=4)
    report = run(store, braze, make_event_model(), resend_unknown=True)
    assert [o["external_id"] for o in braze.sent_events[4:]] == ["u2", "u4"]
    assert report.unknown_rows == 0 and store.logged("unknown") == []
    assert store.reads[-2:] == ["braze_read_events_sql unknown=True", "braze_read_events_sql unknown=False"]


def test_forget_unknown_records_them_as_delivered_without_sending() -> None:
    store, braze = store_with(3), FakeBraze()
    braze.unknown = {"u0": "504"}
    run(store, braze, make_event_model())
    report = run(store, braze, make_event_model(), forget_unknown=True)
    assert len(braze.sent_events) == 3 and report.unknown_rows == 0
    assert store.logged("delivered") == ["e00000", "e00001", "e00002"]


def test_ids_left_in_flight_by_a_crash_become_unknown_not_pending() -> None:
    store, braze = store_with(3), FakeBraze()
    store.event_log.append(("e00001", "hash1", "in_flight", None))
    report = run(store, braze, make_event_model())
    assert ("in_flight", "unknown") in store.moves
    assert [o["external_id"] for o in braze.sent_events] == ["u0", "u2"]
    assert report.unknown_rows == 1 and store.logged("unknown") == ["e00001"]


def test_a_local_rejection_is_recorded_and_never_sent() -> None:
    store, braze = store_with(3, invalid={1: "currency: usd is not an ISO 4217 code"}), FakeBraze()
    report = run(store, braze, make_event_model())
    assert [o["external_id"] for o in braze.sent_events] == ["u0", "u2"]
    assert store.logged("rejected") == ["e00001"] and report.rows_rejected == 1


def test_a_json_property_holding_nan_is_rejected_locally() -> None:
    store, braze = FakeStore(), FakeBraze()
    store.event_objects = [
        ("e1", "u1", "h", '"time":"2026-01-01T00:00:00Z","properties":{"a":[NaN]}', None, 1)
    ]
    report = run(store, braze, make_event_model())
    assert braze.sent_events == [] and report.rows_rejected == 1
    assert "NaN" in report.rejection_samples[0][1]


def test_a_braze_error_is_raised_once_what_settled_is_recorded() -> None:
    store, braze = store_with(6), FakeBraze()
    braze.error_on_request = 2
    with pytest.raises(BrazeUnavailable):
        run(store, braze, make_event_model(), batch_size=3)
    # the first request was recorded delivered; the second's rows stay in flight: unknown next run
    assert store.logged("delivered") == ["e00000", "e00001", "e00002"]
    assert store.logged("in_flight") == ["e00003", "e00004", "e00005"]


def test_a_dry_run_writes_nothing_and_shows_samples() -> None:
    store, braze = store_with(2), FakeBraze()
    report = run(store, None, make_event_model(), dry_run=True)
    assert store.event_log == [] and store.moves == [] and braze.event_calls == []
    assert report.events_sent == 2 and report.sample_payloads[0]["external_id"] == "u0"


def test_full_refresh_sends_nothing_again() -> None:
    store, braze = store_with(2), FakeBraze()
    run(store, braze, make_event_model())
    run(store, braze, make_event_model(), full_refresh=True)
    assert len(braze.sent_events) == 2


def test_events_address_users_by_every_identifier() -> None:
    store, braze = store_with(2), FakeBraze()
    alias = dataclasses.replace(make_event_model(), id_field="user_alias", alias_label="crm")
    run(store, braze, alias)
    sent = braze.sent_events[0]
    assert sent["user_alias"] == {"alias_name": "u0", "alias_label": "crm"}
    assert sent["_update_existing_only"] is False  # Braze's default for aliases is update-only
    assert "external_id" not in sent and sent["name"] == "ordered"


def test_a_phone_braze_would_refuse_is_rejected_locally() -> None:
    store, braze = FakeStore(), FakeBraze()
    store.event_objects = [
        (*row[:1], phone, *row[2:])
        for row, phone in zip(event_rows(2), ["+14155550123", "555 0123"], strict=True)
    ]
    by_phone = dataclasses.replace(make_event_model(), id_field="phone")
    report = run(store, braze, by_phone)
    assert [o["phone"] for o in braze.sent_events] == ["+14155550123"]
    assert store.logged("rejected") == ["e00001"] and "E.164" in report.rejection_samples[0][1]
