"""Keyset paging (Spark, Databricks): the page SQL, and fetchmany() over pages
served by a fake connection manager that evaluates the page's key condition in Python."""

from __future__ import annotations

import re
from typing import Any

import pytest

from dbt_braze.warehouse import _KeysetCursor, keyset_page_sql

READ = """
select p.braze_key, count(*) as data_points
from pending p
where p.change_kind = 'upsert'
group by p.braze_key
order by p.braze_key
"""


def test_first_page_drops_the_read_order_and_orders_the_page() -> None:
    sql = keyset_page_sql(READ, None, 1000)
    assert "order by p.braze_key" not in sql
    assert "where p.change_kind = 'upsert'" in sql
    assert sql.endswith("order by q.braze_key\nlimit 1000")
    assert "q.braze_key >" not in sql


def test_next_page_starts_after_the_last_key() -> None:
    sql = keyset_page_sql(READ.replace("order by p.braze_key\n", "order by braze_key;\n"), "k'1\\", 10)
    assert "where q.braze_key > 'k\\'1\\\\'\n" in sql


def test_a_read_without_the_key_order_is_refused() -> None:
    with pytest.raises(ValueError, match="order by braze_key"):
        keyset_page_sql("select braze_key, attribute from pending order by attribute", None)


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
            def fetchall(self) -> list[tuple[str, int]]:
                return page

        return None, Cursor()


@pytest.mark.parametrize("page_rows", [1, 3, 4, 10])
def test_fetchmany_reads_every_row_once_in_order(page_rows: int) -> None:
    rows = [(f"u{k:02d}", k % 3) for k in range(12)]  # one row per user
    connections = FakeConnections(rows)
    cursor = _KeysetCursor(connections, READ, page_rows)
    read: list[tuple[Any, ...]] = []
    while batch := cursor.fetchmany(5):
        assert len(batch) <= 5
        read.extend(batch)
    assert read == sorted(rows)
    # a short page ends the read: no query after it
    assert len(connections.queries) == len(rows) // page_rows + 1
