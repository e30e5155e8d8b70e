"""The lifecycle on Spark (dbt-spark's local `session` method), one scenario.

A local Spark session starts a JVM, and its embedded Derby metastore admits one JVM at a
time, so the steps run one after another, as a user runs them: `dbt run` and `dbt-braze
sync`. Each runs in-process in a step runner (spark_steps.py) whose JVM starts once, as
the DuckDB and PostgreSQL tests run theirs in the pytest process: a JVM a step cost 20 to
60 s on two busy cores. The crash kills the runner's process group, JVM and all,
mid-sync; a new runner does the rerun. The Braze emulator lives in the pytest process
(it is only HTTP). Spark's session time zone is set to Europe/Paris, so that the
timestamps Braze receives prove to be UTC whatever the session zone (including values
that fall in the hour Paris skips when it moves to summer time).

Every Spark query is slow beside DuckDB's, so the scenario keeps to four `dbt run`s and
six syncs, with small data (the shape of the work, not its volume, is what differs on
Spark): removed rows and the failure and retry share one `dbt run`. Compaction's rewrite
and its interruptions are a second test with a project of its own
(test_spark_compaction), which pytest-xdist runs on the other worker meanwhile. The
model maps two subscription groups too (under the default `unsubscribe_only`), which
ride along every step: they cost no data point, a subscribe is never sent, and removed
users' groups are not unset. A second model, keyed by e-mail, rides along: its state
keys carry their prefix, its duplicated address is withheld and its malformed one
refused before sending.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from dbt_braze.emulator import BrazeEmulator

from harness import API_KEY, REPO_ROOT, braze_model, expected_profile, write_dbt_project
from warehouses import profile_yaml, spark_available

pytestmark = [pytest.mark.integration, pytest.mark.spark]

N = 300
SESSION_TIME_ZONE = "Europe/Paris"
# 2026-03-29T01:00:00Z: user i is seen i minutes later, so the values cross
# 02:00-03:00 UTC, wall-clock times Paris skips that night
SEEN_EPOCH = int(datetime(2026, 3, 29, 1, 0, tzinfo=timezone.utc).timestamp())
STEP_TIMEOUT = 300
STEP_RUNNER = Path(__file__).with_name("spark_steps.py")
NEWS, SMS = "5b0fd0e8-0c9c-4d6d-9a1f-1d0f7b8e2a11", "0a3c7f52-3b1e-45a2-8f7e-7c9d2b6e4f90"
NEWSLETTER = "(i % 2 = 0)"  # subscribed: even users (a boolean column)
SMS_STATE = "case when i % 3 = 0 then 'unsubscribed' else 'subscribed' end"  # a text column


def users_sql(n: int, *, plan: str = "'free'", where: str = "", newsletter: str = NEWSLETTER) -> str:
    """harness.users_sql in Spark SQL, plus a timestamp and a struct column, and two
    subscription group columns."""
    return f"""
        select i as user_id,
               'user' || i || '@example.com' as email,
               'Name ' || i as first_name,
               {plan} as plan,
               cast(i * 1.5 as decimal(10, 2)) as ltv,
               (i % 2 = 0) as is_vip,
               date_add(date '2024-01-01', cast(i as int)) as signed_up_on,
               timestamp_seconds({SEEN_EPOCH} + i * 60) as seen_at,
               named_struct('tier', i % 3, 'note', cast(null as string)) as props,
               {newsletter} as newsletter, {SMS_STATE} as sms
        from (select id as i from range(1, {n + 1})) t
        {where}
    """


def events_sql(n: int, *, plan: str = "'free'") -> str:
    """Event `e<i>` of user i (i - N past N: users get a second event), at the user's seen_at
    (crossing the hour Paris skips)."""
    return f"""
        select (i - 1) % {N} + 1 as user_id, concat('e', cast(i as string)) as event_id,
               'signed_up' as event_name,
               timestamp_seconds({SEEN_EPOCH} + i * 60) as occurred_at, {plan} as plan
        from (select id as i from range(1, {n + 1})) t
    """


EVENTS_BLOCK = {
    "kind": "events",
    "external_id": "user_id",
    "event_id": "event_id",
    "name": "event_name",
    "time": "occurred_at",
    "properties": {"event_id": "eid", "plan": "plan"},
    "backfill": "all",
}


# A catalog of 20 items; `changed`: the items whose price moves; `where`: a filter over i.
PRODUCTS_SQL = """
    select concat('p', cast(id as string)) as product_id, concat('Product ', cast(id as string)) as title,
           cast(case when id <= {changed} then id * 2.0 else id * 1.5 end as double) as price
    from range(1, 21) {where}
"""
PRODUCTS_BLOCK = {
    "name": "braze_products",
    "config": {
        "meta": {
            "braze": {
                "kind": "catalog",
                "catalog": "products",
                "id": "product_id",
                "fields": {"title": "title", "price": "price"},
                "on_removed": "delete",
            }
        }
    },
}


def products(changed: int = 0, removed: tuple[int, ...] = ()) -> dict[str, dict[str, object]]:
    return {
        f"p{i}": {"title": f"Product {i}", "price": i * 2.0 if i <= changed else i * 1.5}
        for i in range(1, 21)
        if i not in removed
    }


# The e-mail-keyed model: two users, a duplicated address, one Braze would refuse.
CONTACTS_SQL = """
    select * from values
        ('c1@example.com', 'free'), ('c2@example.com', {plan}),
        ('dup@example.com', 'free'), ('dup@example.com', 'pro'), ('not an email', 'free')
    as t(email, plan)
"""
CONTACTS_BLOCK = {
    "name": "braze_contacts",
    "config": {
        "meta": {
            "braze": {"email": "email", "attributes": {"plan": "contact_plan"}, "max_duplicate_share": 0.5}
        }
    },
}


def contact(emulator: BrazeEmulator, email: str) -> dict[str, Any]:
    (user,) = emulator.users(email=email)
    assert user["external_id"] is None  # an email-only profile
    return dict(user["attributes"])


def expected(i: int, plan: str = "free") -> dict[str, object]:
    seen = datetime.fromtimestamp(SEEN_EPOCH + i * 60, tz=timezone.utc)
    return {
        **expected_profile(i, plan),
        "seen_at": seen.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "props": {"tier": i % 3, "note": None},
    }


ATTRIBUTES = 8


def groups_of(emulator: BrazeEmulator, i: int) -> dict[str, str]:
    (user,) = emulator.users(external_id=str(i))
    return dict(user["subscription_groups"])


def assert_braze_holds(emulator: BrazeEmulator, users: dict[int, dict[str, object]]) -> None:
    """The profiles with an external id (braze_users') are `users`."""
    profiles = {key: p for key, p in emulator.profiles.items() if not key.startswith("braze_id:")}
    wrong = [i for i, profile in users.items() if profiles.get(str(i)) != profile]
    assert not wrong, f"{len(wrong)} profiles differ, e.g. user {wrong[0]}: {profiles.get(str(wrong[0]))}"
    assert len(profiles) == len(users)


@dataclass
class Step:
    exit_code: int
    output: str
    seconds: float


class SparkProject:
    """A dbt project on a local Spark session; its commands run in a step runner."""

    def __init__(self, root: Path, emulator: BrazeEmulator) -> None:
        self.root = root
        self.timings: list[tuple[str, float]] = []
        self._steps: subprocess.Popen[str] | None = None
        self._started = 0.0
        (root / "models").mkdir(parents=True)
        write_dbt_project(root)
        profile = yaml.safe_load(profile_yaml("spark", root, "braze_spark"))
        params = profile["braze_it"]["outputs"]["dev"]["server_side_parameters"]
        params["spark.sql.session.timeZone"] = SESSION_TIME_ZONE
        # Short-lived JVMs running small queries: 200 shuffle partitions and
        # adaptive re-planning only add tasks and stages, and C2 compilation
        # never pays off (together: a dbt run in ~half the time).
        params["spark.sql.shuffle.partitions"] = "2"
        params["spark.sql.adaptive.enabled"] = "false"
        params["spark.driver.extraJavaOptions"] += " -XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
        (root / "profiles.yml").write_text(yaml.safe_dump(profile, sort_keys=False))
        (root / "packages.yml").write_text(f"packages:\n  - local: {REPO_ROOT}\n")
        (root / "dbt_packages").mkdir()
        (root / "dbt_packages" / "dbt_braze").symlink_to(REPO_ROOT)
        self.env = {
            **os.environ,
            "BRAZE_API_KEY": API_KEY,
            "BRAZE_REST_ENDPOINT": emulator.url,
            "DO_NOT_TRACK": "1",
            "PYTHONWARNINGS": "ignore",
        }

    def write_model(self, sql: str, name: str = "braze_users") -> None:
        (self.root / "models" / f"{name}.sql").write_text(textwrap.dedent(sql))

    def write_schema(self, models: list[dict[str, Any]]) -> None:
        text = yaml.safe_dump({"version": 2, "models": models}, sort_keys=False)
        (self.root / "models" / "schema.yml").write_text(text)

    def _command(self, *args: str) -> list[str]:
        return [*args, "--project-dir", str(self.root), "--profiles-dir", str(self.root)]

    def _runner(self) -> subprocess.Popen[str]:
        """The step runner (spark_steps.py), started on first use and after a kill; in a
        process group of its own: killing the group kills its JVM too."""
        if self._steps is None:
            started = time.monotonic()
            self._steps = subprocess.Popen(
                [sys.executable, str(STEP_RUNNER), str(self.root / "jvm.log")],
                cwd=self.root,
                env=self.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
            assert json.loads(self._answer(STEP_TIMEOUT)) == {"ready": True}
            self.timings.append(("(step runner start)", time.monotonic() - started))
        return self._steps

    def _answer(self, timeout: float) -> str:
        assert self._steps is not None and self._steps.stdout is not None
        readable, _, _ = select.select([self._steps.stdout], [], [], timeout)
        line = self._steps.stdout.readline() if readable else ""
        if not line:
            self.kill()
            log = (self.root / "jvm.log").read_text(errors="replace")[-4000:]
            raise AssertionError(f"the step runner died or hung ({timeout:.0f} s):\n{log}")
        return line

    def start(self, tool: str, *args: str) -> None:
        """Send a step to the runner without waiting for it (`finish` reads its answer)."""
        runner = self._runner()
        assert runner.stdin is not None
        request = {"tool": tool, "args": self._command(*args), "env": self.env}
        runner.stdin.write(json.dumps(request) + "\n")
        runner.stdin.flush()
        self._started = time.monotonic()

    def running(self) -> bool:
        """Whether the step started last is still running."""
        assert self._steps is not None and self._steps.stdout is not None
        return not select.select([self._steps.stdout], [], [], 0)[0]

    def finish(self, label: str) -> Step:
        answer = json.loads(self._answer(STEP_TIMEOUT))
        seconds = time.monotonic() - self._started
        self.timings.append((label, seconds))
        return Step(answer["exit_code"], _without_jvm_noise(answer["output"]), seconds)

    def run(self, label: str, tool: str, *args: str) -> Step:
        self.start(tool, *args)
        return self.finish(label)

    def dbt_run(self) -> Step:
        step = self.run("dbt run", "dbt", "run")
        assert step.exit_code == 0, f"dbt run failed:\n{step.output[-4000:]}"
        return step

    def sync(self, *options: str, label: str = "sync") -> Step:
        return self.run(label, "braze", "sync", *options)

    def kill(self) -> None:
        """SIGKILL the runner's group (a step in flight dies with its JVM); the next step
        starts another runner once the JVM has let go of the Derby metastore."""
        if self._steps is None:
            return
        process, self._steps = self._steps, None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)

    def close(self) -> None:
        """End the runner: its stdin closes, it returns, its JVM goes with it."""
        if self._steps is None:
            return
        process, self._steps = self._steps, None
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._steps = process
            self.kill()


def _without_jvm_noise(output: str) -> str:
    """Spark's own log lines and progress bars, which say nothing about the test."""
    noise = (" WARN ", "log4j", "sc.setLogLevel", "[Stage ", "WARNING: Using incubator")
    return "\n".join(line for line in output.splitlines() if not any(n in line for n in noise))


@pytest.fixture
def spark_project(tmp_path: Path, emulator: BrazeEmulator) -> Iterator[SparkProject]:
    assert spark_available(), (
        "Spark is not usable here: install the `spark` extra (pip install -e '.[spark]', "
        "scripts/bootstrap does) and a Java 17+ runtime on PATH or in JAVA_HOME"
    )
    project = SparkProject(tmp_path / "project", emulator)
    try:
        yield project
    finally:
        project.close()


def test_spark_lifecycle(spark_project: SparkProject, emulator: BrazeEmulator) -> None:
    started = time.monotonic()
    project = spark_project
    block = braze_model(on_removed="unset")
    block["config"]["meta"]["braze"]["attributes"].update({"seen_at": "seen_at", "props": "props"})
    block["config"]["meta"]["braze"]["subscription_groups"] = {"newsletter": NEWS, "sms": SMS}
    project.write_schema(
        [
            block,
            CONTACTS_BLOCK,
            {"name": "braze_events", "config": {"meta": {"braze": EVENTS_BLOCK}}},
            PRODUCTS_BLOCK,
        ]
    )
    emulator.create_catalog("products", {"title": "string", "price": "number"})
    model: dict[int, dict[str, object]] = {i: expected(i) for i in range(1, N + 1)}
    project.env["DBT_BRAZE_COMPACTION_RATIO"] = "0"  # compaction: test_spark_compaction

    # 1. first sync: Braze equals the model, and has each event once, its time in UTC
    project.write_model(users_sql(N))
    project.write_model(CONTACTS_SQL.format(plan="'free'"), name="braze_contacts")
    project.write_model(events_sql(N), "braze_events")
    project.write_model(PRODUCTS_SQL.format(changed=0, where=""), "braze_products")
    project.dbt_run()
    first = project.sync()
    assert first.exit_code == 0, first.output
    assert emulator.catalog_items("products") == products()
    assert_braze_holds(emulator, model)
    assert contact(emulator, "c1@example.com") == {"email": "c1@example.com", "contact_plan": "free"}
    assert emulator.users(email="dup@example.com") == []
    assert "duplicated: email:dup@example.com (2 rows)" in first.output
    assert "rejected email=not an email: rejected before sending: email 'not an email'" in first.output
    stats = emulator.stats()
    assert stats["objects_received"] == N + 2 + N  # nothing of the duplicated or refused; N events
    assert stats["data_points"] == N * ATTRIBUTES + 2  # the group states are no data points
    # the unsubscribes only: odd users' newsletter, every third user's sms
    assert (stats["subscription_changes"], stats["subscription_subscribes"]) == (N // 2 + N // 3, 0)
    assert (groups_of(emulator, 2), groups_of(emulator, 3)) == (
        {},
        {NEWS: "unsubscribed", SMS: "unsubscribed"},
    )

    events = {e["properties"]["eid"]: e for e in emulator.events()}
    assert len(events) == len(emulator.events()) == N
    assert {e: events[e]["time"] for e in ("e1", "e90")} == {
        "e1": expected(1)["seen_at"],
        "e90": expected(90)["seen_at"],
    }

    # 2. an incremental change: exactly the changed data points are sent, also by e-mail
    # (the keys of the e-mail model's state and of its new diff match); users 1 to 10
    # flip their newsletter: the even ones' unsubscribes go, the odd ones' subscribes not
    before = emulator.stats()
    flipped = "case when i <= 10 then i % 2 = 1 else i % 2 = 0 end"
    project.write_model(users_sql(N, plan="case when i <= 37 then 'pro' else 'free' end", newsletter=flipped))
    project.write_model(CONTACTS_SQL.format(plan="'pro'"), name="braze_contacts")
    # new events are sent once; an event changed after it was sent is not sent again
    project.write_model(events_sql(N + 10, plan="case when i = 1 then 'pro' else 'free' end"), "braze_events")
    # three prices change, an item leaves: one PATCH of the prices alone, one DELETE
    project.write_model(PRODUCTS_SQL.format(changed=3, where="where id <> 5"), "braze_products")
    project.dbt_run()
    assert project.sync().exit_code == 0
    assert emulator.catalog_items("products") == products(changed=3, removed=(5,))
    catalog_writes = [(r.method, r.body) for r in emulator.requests_log if "/catalogs/" in r.path]
    assert catalog_writes[-2:] == [
        ("PATCH", {"items": [{"id": f"p{i}", "price": i * 2.0} for i in (1, 2, 3)]}),
        ("DELETE", {"items": [{"id": "p5"}]}),
    ]
    assert len(emulator.events()) == N + 10 and emulator.stats()["duplicate_events"] == 0
    stats = emulator.stats()
    assert stats["data_points"] - before["data_points"] == 37 + 1
    assert stats["subscription_changes"] - before["subscription_changes"] == 5
    assert stats["subscription_subscribes"] == 0
    assert (groups_of(emulator, 2), groups_of(emulator, 3)) == (
        {NEWS: "unsubscribed"},
        {NEWS: "unsubscribed", SMS: "unsubscribed"},
    )
    model.update({i: expected(i, "pro") for i in range(1, 38)})
    assert_braze_holds(emulator, model)
    assert contact(emulator, "c2@example.com") == {"email": "c2@example.com", "contact_plan": "pro"}

    # 3. removed rows (on_removed: unset), while Braze answers 503 to
    # everything: the sync gives up (exit 1) having acknowledged nothing, so the
    # retry unsets every mapped attribute of both users, no more, no less (their
    # subscription groups are no attributes)
    plan = "case when i <= 37 then 'pro' else 'free' end"
    project.write_model(users_sql(N, plan=plan, where="where i not in (4, 7)", newsletter=flipped))
    project.dbt_run()
    emulator.configure(error_rate=1.0)
    unset_before = emulator.stats()["attributes_unset"]
    failed = project.sync("--max-retry-seconds", "2", label="sync (Braze down)")
    assert failed.exit_code == 1, failed.output
    assert "unreachable" in failed.output.lower(), failed.output
    assert emulator.stats()["attributes_unset"] == unset_before
    assert_braze_holds(emulator, model)
    emulator.configure(error_rate=0.0)
    retry = project.sync(label="sync (retry)")
    assert retry.exit_code == 0, retry.output
    assert emulator.stats()["attributes_unset"] - unset_before == 2 * ATTRIBUTES
    assert_braze_holds(emulator, {**model, 4: {}, 7: {}})

    # 4. a crash and a rerun: the removed rows come back and every user
    # changes; the sync is killed (with its JVM) mid-run, the rerun finishes
    # the work
    project.write_model(users_sql(N, plan="'team'"))
    project.dbt_run()
    emulator.configure(latency_ms=250)
    received = emulator.stats()["objects_received"]
    window = 50
    options = ("--batch-size", "25", "--concurrency", "1", "--checkpoint-objects", str(window))
    project.start("braze", "sync", *options)
    kill_after = emulator.stats()["track_requests"] + 5
    deadline = time.monotonic() + STEP_TIMEOUT
    while emulator.stats()["track_requests"] < kill_after:
        assert project.running(), project.finish("sync (to be killed)").output
        assert time.monotonic() < deadline, "the sync sent nothing"
        time.sleep(0.02)
    project.kill()
    emulator.configure(latency_ms=0)
    sent_before_kill = emulator.stats()["objects_received"] - received
    assert 0 < sent_before_kill < N
    rerun = project.sync(label="sync (rerun)")
    assert rerun.exit_code == 0, rerun.output
    assert_braze_holds(emulator, {i: expected(i, "team") for i in range(1, N + 1)})
    resent = emulator.stats()["objects_received"] - received - N
    assert 0 <= resent <= 2 * window + 2 * 25 + 25
    assert emulator.stats()["subscription_subscribes"] == 0

    total = time.monotonic() - started
    print(
        f"\nSpark scenario: {total:.0f} s; crash: {sent_before_kill} objects sent before the kill, "
        f"{resent} sent again"
    )
    for label, seconds in project.timings:
        print(f"  {label:<22} {seconds:5.1f} s")


# -- compaction (issue 16): the rewrite through a copy, its interruptions ---------------------


def test_spark_compaction(spark_project: SparkProject, emulator: BrazeEmulator) -> None:
    """A test of its own, beside the lifecycle on the other worker: a first sync and a
    change of every user's plan leave both logs due at one row per key."""
    project = spark_project
    block = braze_model(on_removed="unset")
    block["config"]["meta"]["braze"]["attributes"].update({"seen_at": "seen_at", "props": "props"})
    project.write_schema([block])
    project.env["DBT_BRAZE_COMPACTION_RATIO"] = "0"  # compaction: in check_compaction only
    for plan in ("'free'", "'team'"):
        project.write_model(users_sql(N, plan=plan))
        project.dbt_run()
        step = project.sync()
        assert step.exit_code == 0, step.output
    assert_braze_holds(emulator, {i: expected(i, "team") for i in range(1, N + 1)})
    check_compaction(project, emulator)
    for label, seconds in project.timings:
        print(f"  {label:<22} {seconds:5.1f} s")


# A run-operation of the test project: the latest row per key of both logs (model|key,
# value or '-'), the logs' row counts, braze_users' diff and the rewrite's leftover tables,
# printed as one `PROBE {json}` line; then `crash` ({log: point}) leaves each log as a
# crash at that point of braze_rewrite_log would: `built` (after 1: `__compacting` built),
# `renamed` (after 2: `__compacted`), `torn` (in 3: the log overwritten with 3 rows of the
# copy only), `overwritten` (after 3, before the copy is dropped).
PROBE_MACRO = """
{% macro compaction_probe(crash={}) %}
  {%- set result = {'latest': {}, 'rows': {}, 'leftovers': []} -%}
  {%- for log, keys, time, value in [('state', 'braze_key, attribute', 'acked_at', 'value_hash'),
                                     ('fingerprints', 'braze_key', 'recorded_at', 'fingerprint')] -%}
    {%- set relation = dbt_braze.braze_compaction_log(log)['relation'] -%}
    {%- set latest = run_query(
          "select concat_ws('|', model_name, " ~ keys ~ "), coalesce(cast(" ~ value ~ " as string), '-') "
          ~ "from (select *, max(" ~ time ~ ") over (partition by model_name, " ~ keys ~ ") as latest_at "
          ~ "from " ~ relation ~ ") ranked where " ~ time ~ " = latest_at") -%}
    {%- do result['latest'].update({log: latest.rows | map('list') | list}) -%}
    {%- set count = run_query('select count(*) from ' ~ relation).columns[0].values()[0] -%}
    {%- do result['rows'].update({log: count | int}) -%}
    {%- for copy in dbt_braze.braze_compaction_copies(log).values() -%}
      {%- if adapter.get_relation(copy.database, copy.schema, copy.identifier) is not none -%}
        {%- do result['leftovers'].append(copy.identifier) -%}
      {%- endif -%}
    {%- endfor -%}
  {%- endfor -%}
  {%- set diff = run_query("select change_kind, braze_key, attribute from "
        ~ dbt_braze.braze_pending_relation('braze_users') ~ " where change_kind in ('upsert', 'removed')") -%}
  {%- do result.update({'diff': diff.rows | map('list') | list}) -%}
  {%- do print('PROBE ' ~ tojson(result)) -%}
  {%- for log, point in crash.items() -%}
    {%- set stop = {'built': 1, 'renamed': 2, 'torn': 2, 'overwritten': 3}[point] -%}
    {%- do dbt_braze.braze_rewrite_log(log, 'braze_users', stop) -%}
    {%- if point == 'torn' -%}
      {%- do run_query('insert overwrite table ' ~ dbt_braze.braze_compaction_log(log)['relation']
            ~ ' select * from ' ~ dbt_braze.braze_compaction_copies(log)['complete'] ~ ' limit 3') -%}
    {%- endif -%}
  {%- endfor -%}
{% endmacro %}
"""


@dataclass
class Probe:
    latest: dict[str, dict[str, frozenset[str]]]  # log -> key -> its latest values (gone keys left out)
    rows: dict[str, int]
    leftovers: list[str]
    diff: list[list[str]]


def probe(project: SparkProject, label: str, **crash: str) -> Probe:
    crash_args = json.dumps({"crash": crash})
    step = project.run(label, "dbt", "run-operation", "compaction_probe", "--args", crash_args)
    assert step.exit_code == 0, step.output[-4000:]
    (line,) = [line for line in step.output.splitlines() if line.startswith("PROBE ")]
    found = json.loads(line.removeprefix("PROBE "))
    latest: dict[str, dict[str, frozenset[str]]] = {}
    for log, rows in found["latest"].items():
        by_key: dict[str, set[str]] = {}
        for key, value in rows:
            by_key.setdefault(key, set()).add(value)
        # a key whose latest rows all hold nothing reads as absent, as a compacted one
        latest[log] = {key: frozenset(held) for key, held in by_key.items() if held != {"-"}}
    return Probe(latest, found["rows"], found["leftovers"], found["diff"])


def users_json(step: Step) -> dict[str, Any]:
    """The models of a sync's or status's `--output json` (stdout, among the JVM's lines)."""
    start = step.output.index("\n{") + 1 if not step.output.startswith("{") else 0
    document, _ = json.JSONDecoder().raw_decode(step.output[start:])
    return {m["model"]: m for m in document["models"]}


def check_compaction(project: SparkProject, emulator: BrazeEmulator) -> None:
    """A compaction leaves the latest state and fingerprint of every key as they were, the
    logs at about their keys and the next diff the same; a rewrite interrupted at any of
    its steps is finished by the next `dbt run` (hook) or sync, losing nothing."""
    (project.root / "macros").mkdir(exist_ok=True)
    (project.root / "macros" / "compaction_probe.sql").write_text(PROBE_MACRO)
    before = probe(project, "probe")
    assert before.leftovers == []

    # the churn so far is due at 1 row per key: the sync sends nothing, compacts
    del project.env["DBT_BRAZE_COMPACTION_RATIO"]
    step = project.sync("--compaction-ratio", "1", "--output", "json", label="sync (compacts)")
    assert step.exit_code == 0, step.output
    report = users_json(step)
    assert report["braze_users"]["compacted"] == ["state", "fingerprints"], report["braze_users"]
    assert sum(m.get("data_points", 0) for m in report.values()) == 0
    status = project.run("status", "braze", "status", "--output", "json")
    assert status.exit_code == 0, status.output
    sizes = users_json(status)["braze_users"]["logs"]
    assert sizes["state_keys"] >= N * ATTRIBUTES and sizes["fingerprint_keys"] == N, sizes
    assert sizes["state_rows"] <= sizes["state_keys"] < before.rows["state"], sizes
    assert sizes["fingerprint_rows"] <= sizes["fingerprint_keys"], sizes

    # a crash inside step 3 of the state's rewrite, one inside step 1 of the fingerprints'
    compacted = probe(project, "probe (crash)", state="torn", fingerprints="built")
    assert compacted.latest == before.latest and compacted.leftovers == []
    assert all(compacted.rows[log] < before.rows[log] for log in ("state", "fingerprints"))

    # the next `dbt run`'s hook finishes both before it reads: the diff is the change only
    plan = "case when i <= 20 then 'gold' else 'team' end"
    project.write_model(users_sql(N, plan=plan))
    project.dbt_run()
    recovered = probe(project, "probe (crash)", state="overwritten", fingerprints="renamed")
    assert recovered.leftovers == []
    assert recovered.latest["state"] == before.latest["state"]
    # every unchanged user is vouched for by a fingerprint (recorded by the last sync for
    # what Braze accepted, or by the hook for rows that came out equal)
    prints = recovered.latest["fingerprints"]
    assert {f"braze_users|{i}" for i in range(21, N + 1)} <= {
        k for k in prints if k.startswith("braze_users|")
    }
    assert {k: v for k, v in prints.items() if not k.startswith("braze_users|")} == {
        k: v for k, v in before.latest["fingerprints"].items() if not k.startswith("braze_users|")
    }
    assert sorted(recovered.diff) == sorted(["upsert", str(i), "plan"] for i in range(1, 21))

    # the next sync finishes both rewrites before it reads, sends that change and no more
    sent = emulator.stats()["data_points"]
    step = project.sync("--output", "json", label="sync (after crash)")
    assert step.exit_code == 0, step.output
    assert emulator.stats()["data_points"] - sent == 20
    assert_braze_holds(emulator, {i: expected(i, "gold" if i <= 20 else "team") for i in range(1, N + 1)})
    after = probe(project, "probe")
    assert after.leftovers == []
    plans = {f"braze_users|{i}|plan" for i in range(1, 21)}
    assert {k: v for k, v in after.latest["state"].items() if k not in plans} == {
        k: v for k, v in before.latest["state"].items() if k not in plans
    }
    assert after.latest["state"].keys() == before.latest["state"].keys()
    second = project.sync("--output", "json", label="sync (second)")
    assert second.exit_code == 0 and sum(m.get("data_points", 0) for m in users_json(second).values()) == 0
