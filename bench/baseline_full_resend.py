"""The sync a user would write by hand: resend every row, every time.

Reads every row of a table from DuckDB and posts each one, with all of its
mapped attributes (nulls included), to Braze `/users/track`: 75 objects per
request, one request after the other, one `requests.Session`. No change
detection, no state, no concurrency, no retries beyond "fail loudly".

    python bench/baseline_full_resend.py --db warehouse.duckdb --table main.bench_users \
        --id-column user_id --map email=email --map plan=plan_tier ...

Needs BRAZE_API_KEY and BRAZE_REST_ENDPOINT. Prints one JSON line at the end:
{"rows": .., "objects_sent": .., "requests": .., "seconds": .., "failed_requests": ..}.
Rows are read with fetchmany so memory stays bounded (a fetchall() version
would be shorter still, and hold the whole table in memory).
"""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import json
import os
import sys
import time

import duckdb
import requests

BATCH = 75


def to_json_value(value: object) -> object:
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value.replace(microsecond=0).isoformat() + "Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, help="DuckDB file")
    parser.add_argument("--table", required=True, help="schema.table to read")
    parser.add_argument("--id-column", required=True)
    parser.add_argument(
        "--map", action="append", default=[], metavar="COLUMN=ATTRIBUTE", help="a mapped column; repeatable"
    )
    parser.add_argument("--limit", type=int, default=None, help="read at most this many rows")
    args = parser.parse_args(argv)
    mapping = [tuple(m.split("=", 1)) for m in args.map]
    endpoint = os.environ["BRAZE_REST_ENDPOINT"].rstrip("/")
    key = os.environ["BRAZE_API_KEY"]

    columns = ", ".join([f'"{args.id_column}"'] + [f'"{column}"' for column, _ in mapping])
    attributes = [attribute for _, attribute in mapping]
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    url = f"{endpoint}/users/track"

    started = time.perf_counter()
    rows = objects_sent = requests_made = failed = 0
    batch: list[dict[str, object]] = []

    def send() -> None:
        nonlocal requests_made, objects_sent, failed
        response = session.post(url, data=json.dumps({"attributes": batch}), timeout=60)
        requests_made += 1
        if 200 <= response.status_code < 300:
            objects_sent += len(batch)
        else:
            failed += 1
            print(f"request failed: {response.status_code} {response.text[:200]}", file=sys.stderr)
        batch.clear()

    with duckdb.connect(args.db, read_only=True) as conn:
        limit = f" limit {int(args.limit)}" if args.limit else ""
        cursor = conn.execute(f"select {columns} from {args.table}{limit}")
        while True:
            chunk = cursor.fetchmany(10_000)
            if not chunk:
                break
            for row in chunk:
                rows += 1
                obj: dict[str, object] = {"external_id": str(row[0])}
                for attribute, value in zip(attributes, row[1:], strict=True):
                    obj[attribute] = to_json_value(value)
                batch.append(obj)
                if len(batch) == BATCH:
                    send()
    if batch:
        send()
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "rows": rows,
                "objects_sent": objects_sent,
                "requests": requests_made,
                "seconds": round(seconds, 3),
                "failed_requests": failed,
            }
        )
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
