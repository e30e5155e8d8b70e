"""`SyncEngine` against a scripted warehouse and a scripted Braze (tests/fakes.py): nothing
leaves the process.

`FakeStore` holds pending rows (key, attribute, value text, value type, value hash, is_new)
and serves them as the objects read does (one row per user: `render_objects` restates
macros/json.sql, whose SQL test_objects_sql.py checks against it on DuckDB); it records
every acknowledgement and rejection, unpacked per attribute by `warehouse.unpack`.
`FakeBraze` answers `track_encoded` / `delete_users` like `BrazeClient` (TrackResult,
DeleteResult), rejecting scripted users and optionally failing on the n-th request.
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from dbt_braze.braze import MAX_DELETE_IDS, MAX_TRACK_OBJECTS
from dbt_braze.engine import SAMPLE_SIZE, SyncEngine
from dbt_braze.errors import BrazeUnavailable, NotBuiltError, SyncError
from dbt_braze.report import model_summary
from dbt_braze.rows import ROW_SEPARATOR, Row
from dbt_braze.settings import SyncSettings
from dbt_braze.store import encode_cell

from fakes import (
    ATTRS,
    MODEL_NAME,
    RELATION,
    FakeBraze,
    FakeStore,
    key,
    make_engine,
    make_model,
    per_attribute,
    run,
    user_rows,
)

# -- grouping and batching ------------------------------------------------------------------------


def test_several_attributes_per_user_become_one_object_per_user() -> None:
    warehouse = FakeStore(upserts=user_rows(3))
    braze = FakeBraze()
    report = run(warehouse, braze)
    assert len(braze.track_calls) == 1
    assert braze.track_calls[0] == [
        {"external_id": key(i), "email": f"{key(i)}@example.com", "ltv": 12.5, "plan": "gold"}
        for i in range(3)
    ]
    assert report.users_created == 3
    assert report.users_updated == 0
    assert report.requests == 1
    assert report.data_points == 9
    assert report.rows_rejected == 0


def test_existing_users_count_as_updated() -> None:
    report = run(FakeStore(upserts=user_rows(2, new=False)), FakeBraze())
    assert (report.users_created, report.users_updated) == (0, 2)


def test_at_most_75_objects_per_request_and_no_user_twice() -> None:
    warehouse = FakeStore(upserts=user_rows(200))
    braze = FakeBraze()
    # 7 users per read batch: requests span read batches
    report = run(warehouse, braze, read_batch_rows=7)
    assert [len(call) for call in braze.track_calls] == [75, 75, 50]
    for call in braze.track_calls:
        ids = [obj["external_id"] for obj in call]
        assert len(ids) == len(set(ids))
        assert all(len(obj) == 1 + len(ATTRS) for obj in call)
    all_ids = [obj["external_id"] for obj in braze.sent_objects]
    assert sorted(all_ids) == [key(i) for i in range(200)]
    assert len(set(all_ids)) == 200
    assert report.requests == 3
    assert report.users_created == 200


def test_report_requests_come_from_the_client() -> None:
    report = run(FakeStore(upserts=user_rows(80)), FakeBraze(requests_per_call=3))
    assert report.requests == 6  # retries and splits counted by the client


def test_progress_is_reported_per_request() -> None:
    seen: list[tuple[str, int]] = []
    engine = make_engine(
        FakeStore(upserts=user_rows(80)), FakeBraze(), on_progress=lambda m, n: seen.append((m, n))
    )
    engine.sync_model(make_model(), RELATION)
    assert seen == [(MODEL_NAME, 75), (MODEL_NAME, 5)]


# -- acknowledgements and rejections ---------------------------------------------------------------


def test_only_accepted_objects_are_acknowledged_with_the_row_hashes() -> None:
    rows = user_rows(5)
    warehouse = FakeStore(upserts=rows)
    braze = FakeBraze(reject={key(1): "invalid email", key(3): "attribute too long"})
    report = run(warehouse, braze)

    expected_acked = {(r[0], r[1], r[4]) for r in rows if r[0] not in (key(1), key(3))}
    assert set(warehouse.all_acknowledged) == expected_acked
    assert len(warehouse.all_acknowledged) == len(expected_acked)
    assert set(warehouse.all_rejected) == {
        (k, a, f"h:{k}:{a}", reason)
        for k, reason in ((key(1), "invalid email"), (key(3), "attribute too long"))
        for a in ATTRS
    }
    assert not {r[0] for r in warehouse.all_acknowledged} & {key(1), key(3)}
    assert report.rows_rejected == 2
    assert report.rejection_samples == [(key(1), "invalid email"), (key(3), "attribute too long")]
    assert report.users_created == 3


def test_long_rejection_reasons_are_truncated_when_recorded() -> None:
    warehouse = FakeStore(upserts=user_rows(1))
    run(warehouse, FakeBraze(reject={key(0): "x" * 5000}))
    assert {len(r[3]) for r in warehouse.all_rejected} == {1000}


def test_local_rejection_is_recorded_and_never_sent() -> None:
    rows = user_rows(3)
    rows[4] = (key(1), "ltv", "NaN", "number", f"h:{key(1)}:ltv", True)
    warehouse = FakeStore(upserts=rows)
    braze = FakeBraze()
    report = run(warehouse, braze)

    assert [obj["external_id"] for obj in braze.sent_objects] == [key(0), key(2)]
    assert report.rows_rejected == 1
    ((rejected_key, reason),) = report.rejection_samples
    assert rejected_key == key(1)
    assert "rejected before sending" in reason and "NaN" in reason
    recorded = warehouse.all_rejected
    assert {(r[0], r[1], r[2]) for r in recorded} == {(key(1), a, f"h:{key(1)}:{a}") for a in ATTRS}
    assert all("NaN" in r[3] for r in recorded)
    assert key(1) not in {r[0] for r in warehouse.all_acknowledged}
    assert {r[0] for r in warehouse.all_acknowledged} == {key(0), key(2)}


def test_a_batch_rejected_entirely_locally_sends_no_request() -> None:
    rows = [
        (key(0), "ltv", "inf", "number", "h", True),
        (key(1), "ltv", "-inf", "number", "h", True),
    ]
    warehouse = FakeStore(upserts=rows)
    braze = FakeBraze()
    report = run(warehouse, braze)
    assert braze.track_calls == []
    assert report.requests == 0
    assert report.rows_rejected == 2
    assert warehouse.acknowledged == []
    assert len(warehouse.all_rejected) == 2


@pytest.mark.parametrize(("mode", "flag"), [("update", True), ("upsert", None)])
def test_update_mode_sets_update_existing_only(mode: str, flag: bool | None) -> None:
    braze = FakeBraze()
    run(FakeStore(upserts=user_rows(4)), braze, make_model(mode=mode))
    assert len(braze.sent_objects) == 4
    assert all(obj.get("_update_existing_only") is flag for obj in braze.sent_objects)


def test_braze_id_models_send_braze_id() -> None:
    braze = FakeBraze()
    run(FakeStore(upserts=user_rows(1)), braze, make_model(id_field="braze_id", mode="update"))
    (obj,) = braze.sent_objects
    assert obj["braze_id"] == key(0)
    assert "external_id" not in obj
    assert obj["_update_existing_only"] is True


# -- removed rows --------------------------------------------------------------------------------


def removed_rows(n: int, attrs: tuple[str, ...] = ("email", "plan"), start: int = 500) -> list[Row]:
    return [
        (key(i), a, None, None, f"old:{key(i)}:{a}", False) for i in range(start, start + n) for a in attrs
    ]


def test_on_removed_ignore_sends_nothing_for_removed_rows() -> None:
    warehouse = FakeStore(upserts=user_rows(2), removed=removed_rows(3))
    braze = FakeBraze()
    report = run(warehouse, braze, make_model(on_removed="ignore"))
    # removed users not even read, but for those recorded under another identifier (none here)
    assert warehouse.reads == [FakeStore.UPSERTS, f"{FakeStore.REMOVED} mapped_only=False recorded_elsewhere"]
    assert {obj["external_id"] for obj in braze.sent_objects} == {key(0), key(1)}
    assert braze.delete_calls == []
    assert report.removed_ignored is True
    assert report.users_unset == report.users_deleted == 0
    assert not {r[0] for r in warehouse.all_acknowledged} & {key(i) for i in range(500, 503)}


def test_on_removed_unset_sends_nulls_and_acknowledges_with_no_hash() -> None:
    warehouse = FakeStore(upserts=[], removed=removed_rows(2))
    braze = FakeBraze()
    report = run(warehouse, braze, make_model(on_removed="unset"))
    assert warehouse.reads[:2] == [FakeStore.UPSERTS, "braze_read_removed_users_sql mapped_only=True"]
    assert braze.track_calls == [
        [
            {"external_id": key(500), "_update_existing_only": True, "email": None, "plan": None},
            {"external_id": key(501), "_update_existing_only": True, "email": None, "plan": None},
        ]
    ]
    assert sorted(warehouse.all_acknowledged) == [
        (key(i), a, None) for i in (500, 501) for a in ("email", "plan")
    ]
    assert report.users_unset == 2
    assert report.attributes_unset == 4
    assert report.users_created == report.users_updated == 0
    assert report.removed_ignored is False


def test_on_removed_unset_rejections_are_recorded_not_acknowledged() -> None:
    warehouse = FakeStore(removed=removed_rows(2))
    run(warehouse, FakeBraze(reject={key(500): "nope"}), make_model(on_removed="unset"))
    assert {r[0] for r in warehouse.all_acknowledged} == {key(501)}
    assert {(r[0], r[3]) for r in warehouse.all_rejected} == {(key(500), "nope")}


def test_on_removed_delete_in_chunks_of_50_and_acknowledges_deleted_users() -> None:
    assert MAX_DELETE_IDS == 50
    warehouse = FakeStore(upserts=user_rows(1), removed=removed_rows(120))
    braze = FakeBraze(not_deleted={key(555)})
    report = run(warehouse, braze, make_model(on_removed="delete"), allow_removals=True)

    assert "braze_read_removed_users_sql mapped_only=False" in warehouse.reads
    assert [len(ids) for ids, _ in braze.delete_calls] == [50, 50, 20]
    assert {field for _, field in braze.delete_calls} == {"external_id"}
    deleted_ids = [i for ids, _ in braze.delete_calls for i in ids]
    assert deleted_ids == [key(i) for i in range(500, 620)]
    assert report.users_deleted == 119
    removed_acks = {r for r in warehouse.all_acknowledged if r[0] != key(0)}
    assert removed_acks == {(key(i), a, None) for i in range(500, 620) if i != 555 for a in ("email", "plan")}
    assert report.requests == 1 + 3


# -- the mass-removal guard ------------------------------------------------------------------------


def model_rows(n: int) -> list[Row]:
    """withheld() rows of a model holding n unique identifiers."""
    return [("model_rows", None, n)]


@pytest.mark.parametrize("on_removed", ["unset", "delete"])
def test_removing_most_users_pauses_the_model_before_anything_is_sent(on_removed: str) -> None:
    # the model emptied by a broken upstream: 40 users in Braze, none in the model
    warehouse = FakeStore(upserts=[], removed=removed_rows(40), withheld=model_rows(0))
    braze = FakeBraze()
    with pytest.raises(SyncError) as info:
        run(warehouse, braze, make_model(on_removed=on_removed))
    assert braze.track_calls == [] and braze.delete_calls == []
    assert warehouse.acknowledged == [] and warehouse.reads == []
    message = str(info.value)
    assert "40 of the 40 users" in message and "100.0%" in message
    assert "max_removed_share 10.0%" in message and "--allow-removals" in message


def test_the_guard_weighs_removals_against_the_users_braze_holds() -> None:
    # 100 users in the model (5 of them new), 11 removed: 11 / 106 = 10.4% > 10%
    upserts = user_rows(5, start=0) + user_rows(5, start=10, new=False)
    warehouse = FakeStore(upserts=upserts, removed=removed_rows(11), withheld=model_rows(100))
    with pytest.raises(SyncError, match="11 of the 106 users"):
        run(warehouse, FakeBraze(), make_model(on_removed="unset"))
    # 10.0% or less goes through: 11 / 111
    warehouse = FakeStore(upserts=upserts, removed=removed_rows(11), withheld=model_rows(105))
    report = run(warehouse, FakeBraze(), make_model(on_removed="unset"))
    assert report.users_unset == 11


def test_the_guard_spares_small_removals_ignore_full_refresh_and_allow_removals() -> None:
    floor = FakeStore(removed=removed_rows(10), withheld=model_rows(0))
    assert run(floor, FakeBraze(), make_model(on_removed="delete")).users_deleted == 10
    ignored = FakeStore(removed=removed_rows(40), withheld=model_rows(0))
    assert run(ignored, FakeBraze(), make_model(on_removed="ignore")).removed_ignored
    refresh = FakeStore(removed=removed_rows(40), withheld=model_rows(0), full_refresh=user_rows(1))
    run(refresh, FakeBraze(), make_model(on_removed="delete"), full_refresh=True)
    allowed = FakeStore(removed=removed_rows(40), withheld=model_rows(0))
    report = run(allowed, FakeBraze(), make_model(on_removed="delete"), allow_removals=True)
    assert report.users_deleted == 40


def test_the_guard_reads_max_removed_share_from_the_model() -> None:
    model = dataclasses.replace(make_model(on_removed="delete"), max_removed_share=1.0)
    warehouse = FakeStore(removed=removed_rows(40), withheld=model_rows(0))
    assert run(warehouse, FakeBraze(), model).users_deleted == 40


def test_full_refresh_reads_the_model_and_leaves_removed_rows_alone() -> None:
    model = make_model(on_removed="delete")
    warehouse = FakeStore(upserts=user_rows(1), removed=removed_rows(2), full_refresh=user_rows(4, start=10))
    braze = FakeBraze()
    run(warehouse, braze, model, full_refresh=True)
    assert warehouse.full_refresh_args == [(RELATION, "user_id", model.mapping_specs())]
    assert warehouse.reads == [FakeStore.FULL_REFRESH]
    assert [obj["external_id"] for obj in braze.sent_objects] == [key(i) for i in range(10, 14)]
    assert braze.delete_calls == []


# -- dry run ---------------------------------------------------------------------------------


def test_dry_run_sends_nothing_writes_nothing_but_counts() -> None:
    rows = user_rows(160)
    rows[0] = (key(0), "email", None, "text", None, True)  # a null: still a data point
    rows[4] = (key(1), "ltv", "nan", "number", "h", True)  # rejected locally
    warehouse = FakeStore(upserts=rows, removed=removed_rows(3))
    report = run(warehouse, None, make_model(on_removed="unset"), dry_run=True)

    assert warehouse.acknowledged == [] and warehouse.rejected == []
    # 159 users to send: 75 + 75 + 9 (the batch of 75 keeps its slot for the rejected user)
    assert report.requests == math.ceil(160 / MAX_TRACK_OBJECTS) + 1
    assert report.data_points == 159 * 3 + 3 * 2
    assert report.users_created == 159
    assert report.users_unset == 3 and report.attributes_unset == 6
    assert report.rows_rejected == 1
    assert len(report.sample_payloads) == SAMPLE_SIZE == 3
    assert report.sample_payloads[0] == {
        "external_id": key(0),
        "email": None,
        "ltv": 12.5,
        "plan": "gold",
    }
    assert [p["external_id"] for p in report.sample_payloads] == [key(0), key(2), key(3)]


def test_dry_run_delete_counts_without_calling_braze() -> None:
    warehouse = FakeStore(removed=removed_rows(60))
    report = run(warehouse, None, make_model(on_removed="delete"), dry_run=True, allow_removals=True)
    assert report.users_deleted == 60
    assert report.requests == 2
    assert warehouse.acknowledged == []


def test_a_braze_client_is_required_unless_dry_run() -> None:
    with pytest.raises(ValueError):
        SyncEngine(FakeStore(), None, SyncSettings())


def test_missing_pending_relation_stops_before_anything_is_sent() -> None:
    warehouse = FakeStore(upserts=user_rows(2), pending=False)
    braze = FakeBraze()
    with pytest.raises(NotBuiltError) as info:
        run(warehouse, braze)
    assert info.value.exit_code == 2
    assert braze.track_calls == [] and warehouse.reads == [] and warehouse.acknowledged == []


# -- checkpoints -----------------------------------------------------------------------------------


def test_checkpoints_by_object_count() -> None:
    warehouse = FakeStore(upserts=user_rows(95))
    braze = FakeBraze(reject={key(3): "bad"})
    run(warehouse, braze, checkpoint_objects=10)

    # 95 objects (94 accepted + 1 rejected): a flush at every 10th object, then the last 5
    assert len(warehouse.acknowledged) == 10
    assert len(warehouse.rejected) == 1
    for call in warehouse.acknowledged:
        assert len({r[0] for r in call}) <= 10
    expected = {(k, a, h) for k, a, _, _, h, _ in user_rows(95) if k != key(3)}
    assert len(warehouse.all_acknowledged) == len(expected) == 94 * 3
    assert set(warehouse.all_acknowledged) == expected


def test_checkpoints_by_time() -> None:
    now = [0.0]

    def tick() -> None:
        now[0] += 6.0  # each request takes 6 s

    warehouse = FakeStore(upserts=user_rows(30))
    engine = make_engine(
        warehouse, FakeBraze(on_request=tick), batch_size=10, checkpoint_seconds=10.0, clock=lambda: now[0]
    )
    engine.sync_model(make_model(), RELATION)
    # t=6: 10 accepted, no flush; t=12: the first accepted object flushes 11; the rest at the end
    assert [len({r[0] for r in call}) for call in warehouse.acknowledged] == [11, 19]


def test_braze_unavailable_flushes_what_was_accepted_and_propagates() -> None:
    warehouse = FakeStore(upserts=user_rows(200))
    braze = FakeBraze(fail_on_request=3, reject={key(7): "bad"})
    with pytest.raises(BrazeUnavailable):
        run(warehouse, braze)
    assert len(braze.track_calls) == 2
    acked_keys = {r[0] for r in warehouse.all_acknowledged}
    assert acked_keys == {key(i) for i in range(150)} - {key(7)}
    assert len(warehouse.all_acknowledged) == 149 * 3
    assert {r[0] for r in warehouse.all_rejected} == {key(7)}
    assert not acked_keys & {key(i) for i in range(150, 200)}


# -- withheld rows and the summary -----------------------------------------------------------------

WITHHELD = [
    ("withheld_duplicate", "dup-a", 3),
    ("withheld_duplicate", "dup-b", 2),
    ("withheld_null", None, 4),
]


def test_withheld_rows_are_counted() -> None:
    report = run(FakeStore(upserts=user_rows(1), withheld=WITHHELD), FakeBraze())
    assert report.withheld_null_rows == 4
    assert report.withheld_duplicate_keys == 2
    assert report.withheld_duplicate_rows == 5
    assert report.duplicate_samples == ["dup-a (3 rows)", "dup-b (2 rows)"]


def test_model_summary_mentions_withheld_counts_and_rejection_reasons() -> None:
    model = make_model()
    warehouse = FakeStore(upserts=user_rows(4, new=False), withheld=WITHHELD)
    report = run(warehouse, FakeBraze(reject={key(2): "invalid email address"}), model)
    text = model_summary(model, report, dry_run=False)
    assert text.startswith(f"{MODEL_NAME} (external_id, mode upsert, on_removed ignore):")
    assert "withheld, not sent: 4 rows with a null identifier, 2 duplicated identifiers (5 rows)" in text
    assert "dup-a (3 rows)" in text and "dup-b (2 rows)" in text
    assert f"rejected external_id={key(2)}: invalid email address" in text
    lines = {line.split("  ")[1].strip(): line.split()[-1] for line in text.splitlines()[1:7]}
    assert lines["users updated"] == "3"
    assert lines["rows rejected"] == "1"
    assert "removed rows: ignored" in text


def test_model_summary_dry_run_shows_estimates_and_samples() -> None:
    model = make_model()
    report = run(FakeStore(upserts=user_rows(2)), None, model, dry_run=True)
    text = model_summary(model, report, dry_run=True)
    assert "users would be created" in text
    assert "(estimated)" in text
    assert "sample payloads:" in text
    assert f'"external_id": "{key(1)}"' in text
    assert "withheld" not in text


AWKWARD_TEXTS = [
    *(f"k{chr(code)}k" for code in [*range(32), 127]),
    ROW_SEPARATOR,
    "",
    "a b",
    f"a{ROW_SEPARATOR}b",
    "O'Brien\\",
    "Zoë 🚀",
    "x616263",
]


def test_checkpoint_cells_round_trip_every_text() -> None:
    """Keys and reasons reach the warehouse exactly: separators and control
    characters included, '' distinct from NULL (macro braze_decode_cell)."""
    entries = [(text, f"plan{ROW_SEPARATOR}email", f"h1{ROW_SEPARATOR}", text) for text in AWKWARD_TEXTS]
    rows = per_attribute(entries)
    assert rows == [
        (text, attribute, value_hash, text)
        for text in AWKWARD_TEXTS
        for attribute, value_hash in (("plan", "h1"), ("email", None))
    ]
    assert per_attribute([("k", "plan", None)]) == [("k", "plan", None)]
    assert all(set(cell) <= set("x0123456789abcdef") for cell in map(encode_cell, AWKWARD_TEXTS))
