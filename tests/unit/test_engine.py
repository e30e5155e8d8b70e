"""`SyncEngine` against a scripted warehouse and a scripted Braze: nothing leaves the process.

`FakeWarehouse` holds pending rows (key, attribute, value text, value type, value hash, is_new)
and serves them as the objects read does (one row per user: `render_objects` restates
macros/json.sql, whose SQL test_objects_sql.py checks against it on DuckDB); it records
every acknowledgement and rejection, unpacked per attribute by `warehouse.unpack`.
`FakeBraze` answers `track_encoded` / `delete_users` like `BrazeClient` (TrackResult,
DeleteResult), rejecting scripted users and optionally failing on the n-th request.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from dbt_braze.braze import DeleteResult, TrackResult
from dbt_braze.config import AttributeMapping, ModelSync
from dbt_braze.engine import (
    MAX_DELETE_IDS,
    SAMPLE_SIZE,
    ModelReport,
    SyncEngine,
    SyncOptions,
)
from dbt_braze.errors import BrazeUnavailable, NotBuiltError, SyncError
from dbt_braze.payloads import MAX_OBJECTS_PER_REQUEST, ObjectAcks
from dbt_braze.report import model_summary
from dbt_braze.warehouse import ROW_SEPARATOR, RelationRef, Row, encode_cell, unpack

MODEL_NAME = "braze_users"
RELATION = RelationRef(None, "main", MODEL_NAME)
ATTRS = ("email", "ltv", "plan")


def make_model(
    *, mode: str = "upsert", on_removed: str = "ignore", id_field: str = "external_id"
) -> ModelSync:
    return ModelSync(
        model_name=MODEL_NAME,
        unique_id=f"model.shop.{MODEL_NAME}",
        id_field=id_field,  # type: ignore[arg-type]
        id_column="user_id",
        mode=mode,  # type: ignore[arg-type]
        on_removed=on_removed,  # type: ignore[arg-type]
        attributes=tuple(AttributeMapping(a, a) for a in ATTRS),
    )


def key(i: int) -> str:
    return f"u{i:04d}"


def user_rows(n: int, attrs: tuple[str, ...] = ATTRS, *, start: int = 0, new: bool = True) -> list[Row]:
    """Rows for users start..start+n-1, ordered by key then attribute (as the read sql)."""
    typed = {"email": "text", "ltv": "number", "plan": "text"}
    values = {"email": "{k}@example.com", "ltv": "12.50", "plan": "gold"}
    rows: list[Row] = []
    for i in range(start, start + n):
        k = key(i)
        for a in attrs:
            rows.append((k, a, values.get(a, "v").format(k=k), typed.get(a, "text"), f"h:{k}:{a}", new))
    return rows


RAW_JSON_TYPES = ("integer", "number", "boolean", "json")
NON_FINITE = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}


def render_objects(rows: list[Row]) -> list[Row]:
    """macros/json.sql braze_user_objects_sql, restated: one row per user, in key order."""
    objects: list[Row] = []
    ordered = sorted(rows, key=lambda r: (r[0], r[1]))
    for user_key, group in itertools.groupby(ordered, key=lambda r: r[0]):
        changes = list(group)
        pairs = [
            json.dumps(a, ensure_ascii=False)
            + ":"
            + ("null" if t is None else t if vt in RAW_JSON_TYPES else json.dumps(t, ensure_ascii=False))
            for _, a, t, vt, _, _ in changes
        ]
        body = ",".join(pairs)
        invalid = [
            f"{a}: {t} is not a finite number; Braze accepts no NaN or infinity"
            for _, a, t, vt, _, _ in changes
            if vt == "number" and str(t).lower() in NON_FINITE
        ]
        objects.append(
            (
                user_key,
                changes[0][5],
                len(changes),
                body,
                ROW_SEPARATOR.join(c[1] for c in changes),
                ROW_SEPARATOR.join(c[4] or "" for c in changes),
                max(invalid) if invalid else None,
                int(any(vt == "json" and t is not None for _, _, t, vt, _, _ in changes)),
            )
        )
    return objects


def removed_users(rows: list[Row]) -> list[Row]:
    ordered = sorted(rows, key=lambda r: (r[0], r[1]))
    return [
        (k, ROW_SEPARATOR.join(r[1] for r in group))
        for k, group in itertools.groupby(ordered, key=lambda r: r[0])
    ]


def per_attribute(entries: list[Any]) -> list[tuple[Any, ...]]:
    """Per-user checkpoint entries as rows, the way the warehouse inserts them."""
    columns = [text.split(ROW_SEPARATOR) for text in unpack(entries)]
    return [tuple(map(decode_cell, row)) for row in zip(*columns, strict=True)]


def decode_cell(cell: str) -> str | None:
    """What macro braze_decode_cell makes of a cell of warehouse.encode_cell."""
    return None if cell == "" else bytes.fromhex(cell[1:]).decode("utf-8")


class FakeWarehouse:
    UPSERTS = "-- upserts"
    FULL_REFRESH = "-- full refresh"

    def __init__(
        self,
        upserts: list[Row] | None = None,
        removed: list[Row] | None = None,
        withheld: list[Row] | None = None,
        full_refresh: list[Row] | None = None,
        *,
        pending: bool = True,
    ) -> None:
        self.pending_rows = {self.UPSERTS: upserts or [], self.FULL_REFRESH: full_refresh or []}
        self.rows: dict[str, list[Row]] = {
            "-- removed mapped_only=True": removed_users(removed or []),
            "-- removed mapped_only=False": removed_users(removed or []),
        }
        self._withheld = withheld or []
        self._pending = pending
        self.reads: list[str] = []
        self.full_refresh_args: list[tuple[Any, ...]] = []
        self.acknowledged: list[list[tuple[Any, ...]]] = []
        self.rejected: list[list[tuple[Any, ...]]] = []
        self.events: list[str] = []

    STAMP = "2026-11-28 10:00:00"

    def _objects(self, marker: str) -> str:
        objects = render_objects(self.pending_rows[marker])
        if marker == self.UPSERTS:  # read from braze_objects__<model>: acknowledged by key
            objects = [(*row, self.STAMP) for row in objects]
        self.rows[marker] = objects
        return marker

    def require_pending(self, model_name: str) -> None:
        assert model_name == MODEL_NAME
        if not self._pending:
            raise NotBuiltError(f"{model_name}: no pending-changes relation", hint="run `dbt run` first")

    def withheld(self, model_name: str) -> list[Row]:
        assert model_name == MODEL_NAME
        return list(self._withheld)

    def pending_users(self, model_name: str) -> dict[str, int]:
        assert model_name == MODEL_NAME
        removed = {row[0] for row in self.rows["-- removed mapped_only=False"]}
        new = {row[0] for row in self.pending_rows[self.UPSERTS] if row[5]}
        return {"removed": len(removed), "new": len(new)}

    def stream(self, sql: str, batch_rows: int = 10_000) -> Iterator[list[Row]]:
        self.reads.append(sql)
        rows = self.rows[sql]
        for i in range(0, len(rows), batch_rows):
            yield rows[i : i + batch_rows]

    def read_objects_sql(self, model: ModelSync) -> str:
        assert model.model_name == MODEL_NAME
        return self._objects(self.UPSERTS)

    def read_removed_users_sql(self, model_name: str, *, mapped_only: bool) -> str:
        assert model_name == MODEL_NAME
        return f"-- removed mapped_only={mapped_only}"

    def read_full_refresh_sql(self, model: ModelSync, relation: RelationRef) -> str:
        self.full_refresh_args.append((relation, model.id_column, model.attributes))
        return self._objects(self.FULL_REFRESH)

    def acknowledge(self, model_name: str, rows: Any) -> None:
        assert model_name == MODEL_NAME
        self.acknowledged.append(list(rows))
        self.events.append("acknowledge")

    def record_rejected(self, model_name: str, rows: Any) -> None:
        assert model_name == MODEL_NAME
        self.rejected.append(list(rows))
        self.events.append("record_rejected")

    def background(self, name: str, work: Any) -> threading.Thread:
        thread = threading.Thread(target=work, name=name, daemon=True)
        thread.start()
        return thread

    def checkpoint(
        self, model_name: str, run_id: str, acked: Any, rejected: Any, acked_objects: ObjectAcks | None
    ) -> None:
        """One transaction in the real warehouse: rejections first, then acknowledgements
        (by key: what braze_objects__<model> holds for those keys, which the users' entries
        restate for a relation rebuilt since)."""
        if rejected:
            self.record_rejected(model_name, per_attribute(rejected))
        if acked_objects is not None:
            assert acked_objects.stamp == self.STAMP
            by_key = {row[0]: row for row in self.rows[self.UPSERTS]}
            assert acked_objects.users == [(k, by_key[k][4], by_key[k][5]) for k in acked_objects.keys]
            acked = [*acked, *((k, by_key[k][4], by_key[k][5]) for k in acked_objects.keys)]
        if acked:
            self.acknowledge(model_name, per_attribute(acked))

    @property
    def all_acknowledged(self) -> list[tuple[str, str, str | None]]:
        return [row for call in self.acknowledged for row in call]

    @property
    def all_rejected(self) -> list[tuple[str, str, str | None, str]]:
        return [row for call in self.rejected for row in call]


class FakeBraze:
    def __init__(
        self,
        *,
        reject: dict[str, str] | None = None,
        fail_on_request: int | None = None,
        not_deleted: set[str] | None = None,
        requests_per_call: int = 1,
        on_request: Any = None,
    ) -> None:
        self.reject = reject or {}
        self.fail_on_request = fail_on_request
        self.not_deleted = not_deleted or set()
        self.requests_per_call = requests_per_call
        self.on_request = on_request
        self.track_calls: list[list[dict[str, Any]]] = []
        self.delete_calls: list[tuple[list[str], str]] = []

    def track_encoded(self, parts: list[bytes]) -> TrackResult:
        objects = [json.loads(part) for part in parts]
        if self.on_request is not None:
            self.on_request()
        if self.fail_on_request == len(self.track_calls) + 1:
            raise BrazeUnavailable("Braze did not answer after 5 attempts")
        self.track_calls.append([dict(o) for o in objects])
        rejected = {}
        for i, obj in enumerate(objects):
            ident = obj.get("external_id", obj.get("braze_id"))
            if ident in self.reject:
                rejected[i] = self.reject[ident]
        accepted = [i for i in range(len(objects)) if i not in rejected]
        return TrackResult(accepted=accepted, rejected=rejected, requests=self.requests_per_call)

    def delete_users(self, ids: list[str], id_field: Any) -> DeleteResult:
        self.delete_calls.append((list(ids), id_field))
        return DeleteResult(deleted=[i for i in ids if i not in self.not_deleted], requests=1)

    @property
    def sent_objects(self) -> list[dict[str, Any]]:
        return [obj for call in self.track_calls for obj in call]


def run(
    warehouse: FakeWarehouse,
    braze: FakeBraze | None,
    model: ModelSync | None = None,
    **options: Any,
) -> ModelReport:
    engine = SyncEngine(warehouse, braze, SyncOptions(**options), clock=lambda: 0.0)
    return engine.sync_model(model or make_model(), RELATION)


# -- grouping and batching ------------------------------------------------------------------------


def test_several_attributes_per_user_become_one_object_per_user() -> None:
    warehouse = FakeWarehouse(upserts=user_rows(3))
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
    report = run(FakeWarehouse(upserts=user_rows(2, new=False)), FakeBraze())
    assert (report.users_created, report.users_updated) == (0, 2)


def test_at_most_75_objects_per_request_and_no_user_twice() -> None:
    warehouse = FakeWarehouse(upserts=user_rows(200))
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
    report = run(FakeWarehouse(upserts=user_rows(80)), FakeBraze(requests_per_call=3))
    assert report.requests == 6  # retries and splits counted by the client


def test_progress_is_reported_per_request() -> None:
    seen: list[tuple[str, int]] = []
    engine = SyncEngine(
        FakeWarehouse(upserts=user_rows(80)),
        FakeBraze(),
        SyncOptions(),
        clock=lambda: 0.0,
        on_progress=lambda m, n: seen.append((m, n)),
    )
    engine.sync_model(make_model(), RELATION)
    assert seen == [(MODEL_NAME, 75), (MODEL_NAME, 5)]


# -- acknowledgements and rejections ---------------------------------------------------------------


def test_only_accepted_objects_are_acknowledged_with_the_row_hashes() -> None:
    rows = user_rows(5)
    warehouse = FakeWarehouse(upserts=rows)
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
    warehouse = FakeWarehouse(upserts=user_rows(1))
    run(warehouse, FakeBraze(reject={key(0): "x" * 5000}))
    assert {len(r[3]) for r in warehouse.all_rejected} == {1000}


def test_local_rejection_is_recorded_and_never_sent() -> None:
    rows = user_rows(3)
    rows[4] = (key(1), "ltv", "NaN", "number", f"h:{key(1)}:ltv", True)
    warehouse = FakeWarehouse(upserts=rows)
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
    warehouse = FakeWarehouse(upserts=rows)
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
    run(FakeWarehouse(upserts=user_rows(4)), braze, make_model(mode=mode))
    assert len(braze.sent_objects) == 4
    assert all(obj.get("_update_existing_only") is flag for obj in braze.sent_objects)


def test_braze_id_models_send_braze_id() -> None:
    braze = FakeBraze()
    run(FakeWarehouse(upserts=user_rows(1)), braze, make_model(id_field="braze_id", mode="update"))
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
    warehouse = FakeWarehouse(upserts=user_rows(2), removed=removed_rows(3))
    braze = FakeBraze()
    report = run(warehouse, braze, make_model(on_removed="ignore"))
    assert warehouse.reads == [FakeWarehouse.UPSERTS]  # removed rows not even read
    assert {obj["external_id"] for obj in braze.sent_objects} == {key(0), key(1)}
    assert braze.delete_calls == []
    assert report.removed_ignored is True
    assert report.users_unset == report.users_deleted == 0
    assert not {r[0] for r in warehouse.all_acknowledged} & {key(i) for i in range(500, 503)}


def test_on_removed_unset_sends_nulls_and_acknowledges_with_no_hash() -> None:
    warehouse = FakeWarehouse(upserts=[], removed=removed_rows(2))
    braze = FakeBraze()
    report = run(warehouse, braze, make_model(on_removed="unset"))
    assert warehouse.reads == [FakeWarehouse.UPSERTS, "-- removed mapped_only=True"]
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
    warehouse = FakeWarehouse(removed=removed_rows(2))
    run(warehouse, FakeBraze(reject={key(500): "nope"}), make_model(on_removed="unset"))
    assert {r[0] for r in warehouse.all_acknowledged} == {key(501)}
    assert {(r[0], r[3]) for r in warehouse.all_rejected} == {(key(500), "nope")}


def test_on_removed_delete_in_chunks_of_50_and_acknowledges_deleted_users() -> None:
    assert MAX_DELETE_IDS == 50
    warehouse = FakeWarehouse(upserts=user_rows(1), removed=removed_rows(120))
    braze = FakeBraze(not_deleted={key(555)})
    report = run(warehouse, braze, make_model(on_removed="delete"), allow_removals=True)

    assert "-- removed mapped_only=False" in warehouse.reads
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
    warehouse = FakeWarehouse(upserts=[], removed=removed_rows(40), withheld=model_rows(0))
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
    warehouse = FakeWarehouse(upserts=upserts, removed=removed_rows(11), withheld=model_rows(100))
    with pytest.raises(SyncError, match="11 of the 106 users"):
        run(warehouse, FakeBraze(), make_model(on_removed="unset"))
    # 10.0% or less goes through: 11 / 111
    warehouse = FakeWarehouse(upserts=upserts, removed=removed_rows(11), withheld=model_rows(105))
    report = run(warehouse, FakeBraze(), make_model(on_removed="unset"))
    assert report.users_unset == 11


def test_the_guard_spares_small_removals_ignore_full_refresh_and_allow_removals() -> None:
    floor = FakeWarehouse(removed=removed_rows(10), withheld=model_rows(0))
    assert run(floor, FakeBraze(), make_model(on_removed="delete")).users_deleted == 10
    ignored = FakeWarehouse(removed=removed_rows(40), withheld=model_rows(0))
    assert run(ignored, FakeBraze(), make_model(on_removed="ignore")).removed_ignored
    refresh = FakeWarehouse(removed=removed_rows(40), withheld=model_rows(0), full_refresh=user_rows(1))
    run(refresh, FakeBraze(), make_model(on_removed="delete"), full_refresh=True)
    allowed = FakeWarehouse(removed=removed_rows(40), withheld=model_rows(0))
    report = run(allowed, FakeBraze(), make_model(on_removed="delete"), allow_removals=True)
    assert report.users_deleted == 40


def test_the_guard_reads_max_removed_share_from_the_model() -> None:
    model = dataclasses.replace(make_model(on_removed="delete"), max_removed_share=1.0)
    warehouse = FakeWarehouse(removed=removed_rows(40), withheld=model_rows(0))
    assert run(warehouse, FakeBraze(), model).users_deleted == 40


def test_full_refresh_reads_the_model_and_leaves_removed_rows_alone() -> None:
    model = make_model(on_removed="delete")
    warehouse = FakeWarehouse(
        upserts=user_rows(1), removed=removed_rows(2), full_refresh=user_rows(4, start=10)
    )
    braze = FakeBraze()
    run(warehouse, braze, model, full_refresh=True)
    assert warehouse.full_refresh_args == [(RELATION, "user_id", model.attributes)]
    assert warehouse.reads == [FakeWarehouse.FULL_REFRESH]
    assert [obj["external_id"] for obj in braze.sent_objects] == [key(i) for i in range(10, 14)]
    assert braze.delete_calls == []


# -- dry run ---------------------------------------------------------------------------------


def test_dry_run_sends_nothing_writes_nothing_but_counts() -> None:
    rows = user_rows(160)
    rows[0] = (key(0), "email", None, "text", None, True)  # a null: still a data point
    rows[4] = (key(1), "ltv", "nan", "number", "h", True)  # rejected locally
    warehouse = FakeWarehouse(upserts=rows, removed=removed_rows(3))
    report = run(warehouse, None, make_model(on_removed="unset"), dry_run=True)

    assert warehouse.acknowledged == [] and warehouse.rejected == []
    # 159 users to send: 75 + 75 + 9 (the batch of 75 keeps its slot for the rejected user)
    assert report.requests == math.ceil(160 / MAX_OBJECTS_PER_REQUEST) + 1
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
    warehouse = FakeWarehouse(removed=removed_rows(60))
    report = run(warehouse, None, make_model(on_removed="delete"), dry_run=True, allow_removals=True)
    assert report.users_deleted == 60
    assert report.requests == 2
    assert warehouse.acknowledged == []


def test_a_braze_client_is_required_unless_dry_run() -> None:
    with pytest.raises(ValueError):
        SyncEngine(FakeWarehouse(), None, SyncOptions())


def test_missing_pending_relation_stops_before_anything_is_sent() -> None:
    warehouse = FakeWarehouse(upserts=user_rows(2), pending=False)
    braze = FakeBraze()
    with pytest.raises(NotBuiltError) as info:
        run(warehouse, braze)
    assert info.value.exit_code == 2
    assert braze.track_calls == [] and warehouse.reads == [] and warehouse.acknowledged == []


# -- checkpoints -----------------------------------------------------------------------------------


def test_checkpoints_by_object_count() -> None:
    warehouse = FakeWarehouse(upserts=user_rows(95))
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

    warehouse = FakeWarehouse(upserts=user_rows(30))
    engine = SyncEngine(
        warehouse,
        FakeBraze(on_request=tick),
        SyncOptions(batch_size=10, checkpoint_seconds=10.0),
        clock=lambda: now[0],
    )
    engine.sync_model(make_model(), RELATION)
    # t=6: 10 accepted, no flush; t=12: the first accepted object flushes 11; the rest at the end
    assert [len({r[0] for r in call}) for call in warehouse.acknowledged] == [11, 19]


def test_braze_unavailable_flushes_what_was_accepted_and_propagates() -> None:
    warehouse = FakeWarehouse(upserts=user_rows(200))
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
    report = run(FakeWarehouse(upserts=user_rows(1), withheld=WITHHELD), FakeBraze())
    assert report.withheld_null_rows == 4
    assert report.withheld_duplicate_keys == 2
    assert report.withheld_duplicate_rows == 5
    assert report.duplicate_samples == ["dup-a (3 rows)", "dup-b (2 rows)"]


def test_model_summary_mentions_withheld_counts_and_rejection_reasons() -> None:
    model = make_model()
    warehouse = FakeWarehouse(upserts=user_rows(4, new=False), withheld=WITHHELD)
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
    report = run(FakeWarehouse(upserts=user_rows(2)), None, model, dry_run=True)
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
