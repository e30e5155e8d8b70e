"""How the sync reads: keyset pages (Spark, Databricks), rendered by the read macros'
`page` and walked by fetchmany(), and the check that a read's columns are the layout
its rows are read by."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from dbt_braze.dbt_access import Page, _KeysetCursor
from dbt_braze.errors import WarehouseError
from dbt_braze.rows import OBJECT_COLUMNS

from fakes import Renderer

READ = """
select p.braze_key, count(*) as data_points
from pending p
where p.change_kind = 'upsert'
group by p.braze_key
"""


@pytest.fixture(scope="module")
def renderer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Renderer]:
    rendering = Renderer(tmp_path_factory.mktemp("reads"))
    yield rendering
    rendering.close()


def page_sql(renderer: Renderer, dialect: str, page: Page | None) -> str:
    return str(renderer.macro(dialect, "braze_keyset_page", sql=READ, page=page))


def test_the_whole_read_is_left_unordered(renderer: Renderer) -> None:
    # a streaming cursor does without the sort, which would hold the whole result
    assert page_sql(renderer, "databricks", None) == READ


def test_the_first_page_orders_and_limits_the_read(renderer: Renderer) -> None:
    sql = page_sql(renderer, "databricks", {"after": None, "rows": 1000})
    assert "where p.change_kind = 'upsert'" in sql
    assert sql.endswith("order by q.braze_key\nlimit 1000")
    assert "q.braze_key >" not in sql


@pytest.mark.parametrize(("dialect", "literal"), [("databricks", "'k\\'1\\\\'"), ("default", "'k''1\\'")])
def test_a_next_page_starts_after_the_last_key_as_the_dialect_quotes_it(
    renderer: Renderer, dialect: str, literal: str
) -> None:
    sql = page_sql(renderer, dialect, {"after": "k'1\\", "rows": 10})
    assert f"where q.braze_key > {literal}\n" in sql


@pytest.mark.parametrize(
    ("macro", "args"),
    [
        ("braze_read_objects_sql", {"model_name": "users"}),
        ("braze_read_removed_users_sql", {"model_name": "users", "mapped_only": True}),
    ],
)
def test_every_read_of_the_sync_takes_a_page(renderer: Renderer, macro: str, args: dict[str, Any]) -> None:
    whole = str(renderer.macro("databricks", macro, **args))
    paged = str(renderer.macro("databricks", macro, page={"after": "u1", "rows": 5}, **args))
    assert "order by" not in whole.lower()
    assert whole.strip() in paged and paged.endswith("order by q.braze_key\nlimit 5")


def test_a_read_whose_columns_differ_from_its_layout_fails_before_any_row_is_used(
    renderer: Renderer,
) -> None:
    # the same count of columns in another order: positional rows would be misread
    columns = ", ".join(reversed(OBJECT_COLUMNS))
    query = f"select {', '.join(f'null as {c}' for c in reversed(OBJECT_COLUMNS))}"
    with pytest.raises(WarehouseError, match=re.escape(f"returned the columns ({columns})")):
        list(renderer.warehouse.stream(lambda page: query, OBJECT_COLUMNS, 10))


def test_a_read_with_its_layout_streams_its_rows(renderer: Renderer) -> None:
    query = "select * from (values ('a', 1), ('b', 2)) t(braze_key, data_points)"
    batches = list(renderer.warehouse.stream(lambda page: query, ("braze_key", "data_points"), 1))
    assert batches == [[("a", 1)], [("b", 2)]]


class FakeConnections:
    """add_query() for page SQL: filters and limits `rows` as the SQL says."""

    def __init__(self, rows: list[tuple[str, int]]) -> None:
        self.rows = sorted(rows)
        self.queries: list[str] = []

    def add_query(self, sql: str, auto_begin: bool = True) -> tuple[None, Any]:
        self.queries.append(sql)
        limit = int(re.search(r"limit (\d+)$", sql).group(1))  # type: ignore[union-attr]
        after = re.search(r"q.braze_key > '([^']*)'", sql)
        rows = [r for r in self.rows if after is None or r[0] > after.group(1)]
        page = rows[:limit]

        class Cursor:
            description = (("braze_key",), ("data_points",))

            def fetchall(self) -> list[tuple[str, int]]:
                return page

        return None, Cursor()


def render(page: Page | None) -> str:
    assert page is not None
    after = "" if page["after"] is None else f"where q.braze_key > '{page['after']}'"
    return f"select * from ({READ}) q {after}\norder by q.braze_key\nlimit {page['rows']}"


@pytest.mark.parametrize("page_rows", [1, 3, 4, 10])
def test_fetchmany_reads_every_row_once_in_order(page_rows: int) -> None:
    rows = [(f"u{k:02d}", k % 3) for k in range(12)]  # one row per user
    connections = FakeConnections(rows)
    cursor = _KeysetCursor(connections, render({"after": None, "rows": page_rows}), render, page_rows)
    read: list[tuple[Any, ...]] = []
    while batch := cursor.fetchmany(5):
        assert len(batch) <= 5
        read.extend(batch)
    assert read == sorted(rows)
    # a short page ends the read: no query after it
    assert len(connections.queries) == len(rows) // page_rows + 1
    assert cursor.description == (("braze_key",), ("data_points",))
