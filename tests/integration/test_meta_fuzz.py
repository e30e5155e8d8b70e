"""`dbt-braze validate` and the on-run-end hook accept and refuse the same blocks.

The hook cannot call the Python validator: it carries its own copy of the
rules (macros/hook.sql, braze_block_problems). A fixed-seed generator writes
a few hundred `braze` blocks, valid and invalid mixed (unknown keys, wrong
types, YAML keys that are not strings, column names in another case or
holding quotes, attribute names Braze refuses, column-level blocks, legacy
`meta`, every identifier including malformed `user_alias` blocks,
`on_removed: delete` by e-mail or phone, `subscription_groups` and
`subscriptions`, blocks of kind events and purchases), as the models of one
DuckDB project. One `dbt run` and one
`dbt-braze validate` then must agree model by model: validate accepts a
model exactly when the hook built its pending relation (a model that maps
subscription groups and no attribute included), every other model is named
in a dbt warning, and nothing shows a traceback.
"""

from __future__ import annotations

import datetime
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness import DbtProject, write_dbt_project
from warehouses import profile_yaml

SEED = 20261207
MODELS = 300

# Every model has these columns (real names as the warehouse holds them).
MODEL_SQL = """\
select i as user_id, 'b' || i as braze_uid, 'u' || i || '@example.com' as email,
       'free' as plan, cast(i * 1.5 as decimal(10, 2)) as ltv, 'q' || i as "qu""ote",
       'T' as "true", 'one' as "1", i as "Score", (i % 2 = 0) as "on",
       'c' || i || '@example.com' as contact_email, '+1415555010' || i as phone_number,
       'crm' || i as crm_id, (i % 2 = 0) as newsletter, 'subscribed' as sms_opt,
       'e' || i as event_id, 'signed_up' as event_name, timestamp '2026-01-01 10:00:00' as occurred_at,
       'USD' as cur
from generate_series(1, 3) t(i)
"""
COLUMNS = [
    "email",
    "EMAIL",
    "plan",
    "ltv",
    'qu"ote',
    "Score",
    "score",
    "on",
    "missing",
    "user_id",
    "braze_uid",
    "contact_email",
    "newsletter",
]
ID_KEYS = ["external_id", "braze_id", "email", "phone", "user_alias"]
# A valid identifier of each kind, case varied where the column allows it.
ID_VALUES: dict[str, list[Any]] = {
    "external_id": ["user_id", "USER_ID", "User_Id"],
    "braze_id": ["braze_uid"],
    "email": ["contact_email", "CONTACT_EMAIL"],
    "phone": ["phone_number"],
    "user_alias": [{"name": "crm_id", "label": "crm"}, {"name": "CRM_ID", "label": "crm id"}],
}
ALIASES: list[Any] = [
    "crm_id",
    ["crm_id"],
    None,
    {},
    {"name": "crm_id"},
    {"label": "crm"},
    {"name": "crm_id", "label": ""},
    {"name": "crm_id", "label": 3},
    {"name": "crm_id", "label": None},
    {"name": "", "label": "crm"},
    {"name": 7, "label": "crm"},
    {"name": "nope", "label": "crm"},
    {"name": "crm_id", "label": "crm", "extra": 1},
    {"nmae": "crm_id", "label": "crm"},
    {"name": "crm_id", "label": "crm"},
    {"name": "user_id", "label": "crm"},
]
GROUP = "5b0fd0e8-0c9c-4d6d-9a1f-1d0f7b8e2a11"
OTHER_GROUP = "0a3c7f52-3b1e-45a2-8f7e-7c9d2b6e4f90"
GROUPS: list[Any] = [
    None,
    [],
    "newsletter",
    {},
    {"newsletter": None},
    {"newsletter": ""},
    {"newsletter": 3},
    {"newsletter": GROUP, "NEWSLETTER": OTHER_GROUP},  # one column twice
    {"newsletter": GROUP, "sms_opt": GROUP},  # one group from two columns
    {"user_id": GROUP},  # the identifier column (with external_id)
    {"crm_id": GROUP},  # the identifier column (with user_alias)
    {"plan": GROUP},  # also an attribute, often
    {"nope": GROUP},
    {True: GROUP},
    {"newsletter": GROUP, "sms_opt": OTHER_GROUP},
]
# keys YAML does not read as strings: `true` and `1` name real columns once written as JSON
ODD_KEYS: list[Any] = [True, 1, None, 1.5]
IDENTIFIERS: list[Any] = [
    "user_id",
    "USER_ID",
    "User_Id",
    "braze_uid",
    "nope",
    "",
    1,
    None,
    True,
    ["user_id"],
]
NAMES: list[Any] = [
    "email_address",
    "plan",
    "ltv",
    "o'neil",
    'say "hi"',
    "ünïcode",
    "$plan",
    "a" * 255,
    "b" * 256,
    "tab\there",
    "unit\x1fsep",
    "external_id",
    "user_alias",
    "email",
    "phone",
    "",
    None,
    7,
    True,
    ["plan"],
    datetime.date(2024, 1, 1),
]


def attribute_name(rng: random.Random, valid: bool) -> Any:
    return f"attr_{rng.randrange(10_000)}" if valid else rng.choice(NAMES)


def column_key(rng: random.Random) -> Any:
    return rng.choice(ODD_KEYS) if rng.random() < 0.1 else rng.choice(COLUMNS)


EVENT_KEYS = {
    "events": {"event_id": "event_id", "name": "event_name", "time": "occurred_at"},
    "purchases": {
        "event_id": "event_id",
        "product_id": "plan",
        "currency": "cur",
        "price": "ltv",
        "time": "occurred_at",
    },
}
PROPERTY_NAMES: list[Any] = [*NAMES, "time", "event_name"]


def generate_event_block(rng: random.Random) -> dict[Any, Any]:
    """A block of kind events or purchases, valid or with one to three things changed."""
    kind = rng.choice(["events", "purchases"])
    identifier = rng.choice(ID_KEYS)
    block: dict[Any, Any] = {"kind": kind, identifier: rng.choice(ID_VALUES[identifier]), **EVENT_KEYS[kind]}
    block["properties"] = {
        rng.choice(["plan", "ltv", "Score", 'qu"ote']): f"p_{k}" for k in range(rng.randint(0, 2))
    }
    if kind == "purchases" and rng.random() < 0.5:
        block["quantity"] = "Score"
    if rng.random() < 0.5:
        block["backfill"] = rng.choice(["none", "all", "2026-01-01", datetime.date(2025, 6, 1)])
    if rng.random() < 0.45:
        return block
    for _ in range(rng.randint(1, 3)):
        change = rng.randrange(8)
        if change == 0:
            block.pop(rng.choice([*EVENT_KEYS[kind], "external_id"]), None)
        elif change == 1:
            block[rng.choice([*EVENT_KEYS[kind], "external_id", "braze_id"])] = rng.choice(IDENTIFIERS)
        elif change == 2:
            block[rng.choice(["mode", "attributes", "name", "quantity", "on_removed"])] = "plan"
        elif change == 3 and isinstance(block.get("properties"), dict):
            block["properties"][column_key(rng)] = rng.choice(PROPERTY_NAMES)
        elif change == 4:
            block["properties"] = rng.choice([None, [], "plan", {"plan": None}])
        elif change == 5:
            block["backfill"] = rng.choice(["yesterday", "2026-13-01", 3, None, "ALL", True])
        elif change == 6:
            block["kind"] = rng.choice(["event", None, 3, "users"])
        else:
            block["max_duplicate_share"] = rng.choice([0.5, 1.5, "x", None])
    return block


def generate_block(rng: random.Random) -> tuple[Any, dict[str, Any], bool]:
    """(model block or a `missing` marker, column-level blocks, whether legacy `meta` holds them)."""
    if rng.random() < 0.3:
        return generate_event_block(rng), {}, rng.random() < 0.15
    clean = rng.random() < 0.45  # mostly valid: change one thing at most
    block: dict[Any, Any] = {}
    identifier = rng.choice(["external_id", "external_id", *ID_KEYS[1:]])
    block[identifier] = rng.choice(ID_VALUES[identifier])
    attributes: dict[Any, Any] = {}
    for _ in range(rng.randint(0, 4)):
        attributes[rng.choice(["email", "EMAIL", "plan", "ltv", 'qu"ote', "Score", "on"])] = attribute_name(
            rng, True
        )
    block["attributes"] = attributes
    if identifier == "braze_id":
        block["mode"] = "update"
    if rng.random() < 0.25:
        block["subscription_groups"] = rng.choice(
            [{"newsletter": GROUP}, {"newsletter": GROUP, "sms_opt": OTHER_GROUP}]
        )
        if rng.random() < 0.5:
            block["subscriptions"] = rng.choice(["unsubscribe_only", "mirror"])
    column_blocks: dict[str, Any] = {}
    if rng.random() < 0.2:
        column_blocks[rng.choice(["plan", "ltv", "Score"])] = {"attribute": attribute_name(rng, True)}
    if not clean:
        for _ in range(rng.randint(1, 3)):
            mutate(rng, block, column_blocks)
    if rng.random() < 0.03:
        return "missing", column_blocks or {"plan": {"attribute": "plan"}}, False
    if rng.random() < 0.03:
        return rng.choice([None, "user_id", ["external_id"], 3]), column_blocks, False
    return block, column_blocks, rng.random() < 0.15


def mutate(rng: random.Random, block: dict[Any, Any], column_blocks: dict[str, Any]) -> None:
    attributes = block.get("attributes")
    kind = rng.randrange(17)
    if kind == 0:
        key = rng.choice(ID_KEYS)  # often a second identifier
        block[key] = rng.choice(IDENTIFIERS + ID_VALUES[key])
    elif kind == 1:
        for key in ID_KEYS:
            block.pop(key, None)
        block[rng.choice(ID_KEYS)] = rng.choice(IDENTIFIERS)
    elif kind == 2:
        block["mode"] = rng.choice(["upsert", "update", "Upsert", None, 1])
    elif kind == 3:
        block["on_removed"] = rng.choice(["ignore", "unset", "delete", "Delete", None, False])
    elif kind == 4:
        if rng.random() < 0.3:
            block["truncate_strings"] = rng.choice([True, False, "yes", 1, None])
        else:
            share = rng.choice(["max_duplicate_share", "max_removed_share"])
            block[share] = rng.choice([0, 0.5, 1, 1.5, -0.1, True, "0.1", None, float("nan")])
    elif kind == 5:
        block[rng.choice(["atributes", "Mode", 1, True, None])] = rng.choice(["x", {"email": "email"}])
    elif kind == 6:
        block["attributes"] = rng.choice([None, [], "email", {}, {"email": None}])
    elif kind in (7, 8) and isinstance(attributes, dict):
        attributes[column_key(rng)] = attribute_name(rng, rng.random() < 0.4)
    elif kind == 9 and isinstance(attributes, dict):
        attributes[rng.choice(COLUMNS)] = rng.choice(NAMES)
    elif kind == 10:
        column_blocks[rng.choice(["plan", "ltv", "Score", "user_id", "email", "nope"])] = rng.choice(
            [
                {"attribute": attribute_name(rng, rng.random() < 0.5)},
                {"attribute": "x", "extra": 1},
                {},
                None,
                "plan",
            ]
        )
    elif kind == 11 and isinstance(attributes, dict):  # one attribute from two columns, or the identifier
        attributes[rng.choice(["plan", "ltv", "user_id", "USER_ID", "braze_uid", "crm_id", "newsletter"])] = (
            rng.choice(["plan", *(list(attributes.values())[:1])])
        )
    elif kind == 12:
        for key in ID_KEYS:
            block.pop(key, None)
        block["user_alias"] = rng.choice(ALIASES)
    elif kind == 13:  # delete by e-mail or phone
        for key in ID_KEYS:
            block.pop(key, None)
        key = rng.choice(["email", "phone"])
        block[key] = rng.choice(ID_VALUES[key])
        block["on_removed"] = rng.choice(["delete", "delete", "unset"])
    elif kind == 14:
        block["subscription_groups"] = rng.choice(GROUPS)
    elif kind == 15:
        block["subscriptions"] = rng.choice(["unsubscribe_only", "mirror", "Mirror", "always", None, True])
    elif kind == 16 and isinstance(attributes, dict):  # the names an e-mail or phone identifier takes
        attributes[rng.choice(["plan", "ltv", "Score"])] = rng.choice(["email", "phone"])


def schema_entry(name: str, block: Any, column_blocks: dict[str, Any], legacy: bool) -> dict[str, Any]:
    meta_key = "meta" if legacy else "config"
    entry: dict[str, Any] = {"name": name}
    if not (isinstance(block, str) and block == "missing"):
        entry[meta_key] = {"braze": block} if legacy else {"meta": {"braze": block}}
    if column_blocks:
        entry["columns"] = [
            {"name": column, **({"meta": {"braze": cb}} if legacy else {"config": {"meta": {"braze": cb}}})}
            for column, cb in column_blocks.items()
        ]
    return entry


# Beside the generated blocks, one block per rule of the identifiers and subscription groups,
# each breaking that rule alone, and what both must make of it.
PLAN = {"plan": "plan"}
RULE_BLOCKS: list[tuple[dict[str, Any], str]] = [
    ({"email": "contact_email", "on_removed": "unset", "attributes": PLAN}, "built"),
    ({"phone": "phone_number", "mode": "update", "attributes": {"email": "email_address"}}, "built"),
    ({"user_alias": {"name": "CRM_ID", "label": "crm"}, "on_removed": "delete", "attributes": PLAN}, "built"),
    (
        {
            "external_id": "user_id",
            "attributes": PLAN,
            "subscription_groups": {"newsletter": GROUP, "sms_opt": OTHER_GROUP},
            "subscriptions": "mirror",
        },
        "built",
    ),
    ({"email": "contact_email", "subscription_groups": {"newsletter": GROUP}}, "built"),
    ({"email": "contact_email", "on_removed": "delete", "attributes": PLAN}, "refused"),
    ({"phone": "phone_number", "on_removed": "delete", "attributes": PLAN}, "refused"),
    ({"email": "contact_email", "attributes": {"plan": "email"}}, "refused"),
    ({"phone": "phone_number", "attributes": {"plan": "email"}}, "refused"),
    ({"phone": "phone_number", "attributes": {"plan": "phone"}}, "refused"),
    ({"email": "contact_email", "phone": "phone_number", "attributes": PLAN}, "refused"),
    ({"user_alias": "crm_id", "attributes": PLAN}, "refused"),
    ({"user_alias": {"name": "crm_id"}, "attributes": PLAN}, "refused"),
    ({"user_alias": {"name": "crm_id", "label": ""}, "attributes": PLAN}, "refused"),
    ({"user_alias": {"name": "crm_id", "label": "crm", "id": "x"}, "attributes": PLAN}, "refused"),
    ({"user_alias": {"name": "nope", "label": "crm"}, "attributes": PLAN}, "refused"),
    ({"user_alias": {"name": "crm_id", "label": "crm"}, "attributes": {"crm_id": "crm"}}, "refused"),
    ({"external_id": "user_id", "attributes": PLAN, "subscription_groups": {"plan": GROUP}}, "refused"),
    ({"external_id": "user_id", "attributes": PLAN, "subscription_groups": {"User_Id": GROUP}}, "refused"),
    ({"external_id": "user_id", "attributes": PLAN, "subscription_groups": {"nope": GROUP}}, "refused"),
    ({"external_id": "user_id", "attributes": PLAN, "subscription_groups": {"newsletter": ""}}, "refused"),
    ({"external_id": "user_id", "attributes": PLAN, "subscription_groups": ["newsletter"]}, "refused"),
    (
        {
            "external_id": "user_id",
            "attributes": PLAN,
            "subscription_groups": {"newsletter": GROUP, "sms_opt": GROUP},
        },
        "refused",
    ),
    (
        {
            "external_id": "user_id",
            "attributes": PLAN,
            "subscription_groups": {"newsletter": GROUP, "NEWSLETTER": OTHER_GROUP},
        },
        "refused",
    ),
    ({"external_id": "user_id", "attributes": PLAN, "subscriptions": "always"}, "refused"),
    ({"email": "contact_email", "subscription_groups": {}}, "refused"),
]


def wide_model() -> dict[str, Any]:
    """300 attributes over 300 columns: the fingerprint once exceeded DuckDB's expression depth."""
    return {"external_id": "user_id", "attributes": {f"c{k}": f"attribute_{k}" for k in range(300)}}


def test_validate_and_the_hook_accept_the_same_blocks(tmp_path: Path) -> None:
    started = time.monotonic()
    root = tmp_path / "project"
    (root / "models").mkdir(parents=True)
    write_dbt_project(root)
    (root / "profiles.yml").write_text(profile_yaml("duckdb", root, "main"))
    (root / "dbt_packages").mkdir()
    (root / "dbt_packages" / "dbt_braze").symlink_to(Path(__file__).resolve().parents[2])
    project = DbtProject(root, {"DO_NOT_TRACK": "1"})

    rng = random.Random(SEED)
    entries = []
    blocks: dict[str, Any] = {}
    for index in range(MODELS):
        name = f"fz_{index:03d}" if index % 10 else f"fz_o'b_{index:03d}"
        project.write_model(MODEL_SQL, name)
        block, column_blocks, legacy = generate_block(rng)
        blocks[name] = block
        entries.append(schema_entry(name, block, column_blocks, legacy))
    expected: dict[str, str] = {}
    for index, (block, verdict) in enumerate(RULE_BLOCKS):
        name = f"fz_rule_{index:02d}"
        project.write_model(MODEL_SQL, name)
        blocks[name], expected[name] = block, verdict
        entries.append(schema_entry(name, block, {}, False))
    columns = ", ".join(f"i as c{k}" for k in range(300))
    project.write_model(f"select i as user_id, {columns} from generate_series(1, 3) t(i)", "fz_wide")
    entries.append({"name": "fz_wide", "config": {"meta": {"braze": wide_model()}}})
    project.write_schema(entries)

    # A subprocess without PYTEST_CURRENT_TEST: under pytest dbt raises, in its thread pool,
    # on the log events of a node whose meta has a key that is not a string (the run then
    # never ends); a user's run logs a note instead.
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    run = subprocess.run(
        [
            str(Path(sys.executable).parent / "dbt"),
            "run",
            "--project-dir",
            str(root),
            "--profiles-dir",
            str(root),
        ],
        cwd=root,
        env={**env, "DO_NOT_TRACK": "1"},
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr  # exits 0 whatever the blocks
    validate = project.braze("validate")
    assert validate.exit_code == 2, validate.output
    for output in (run.stdout, run.stderr, validate.output):
        assert "Traceback" not in output
    refused = {line[4:].split(": ", 1)[0] for line in validate.output.splitlines() if line.startswith("  - ")}
    names = [e["name"] for e in entries]
    assert refused <= set(names), refused - set(names)
    tables = [row[0] for row in project.query("select table_name from information_schema.tables")]
    pending = {t.removeprefix("braze_pending__") for t in tables if t.startswith("braze_pending__")}
    warned = {name for name, _ in re.findall(r"dbt_braze: skipping (.+?): (.*)", run.stdout)}
    disagree = [
        (
            name,
            "validate refuses" if name in refused else "validate accepts",
            "hook built" if name in pending else "hook skipped",
        )
        for name in names
        if (name in refused) == (name in pending)
    ]
    assert not disagree, disagree[:10]
    assert {name: "built" if name in pending else "refused" for name in expected} == expected
    assert warned == refused
    # a fair mix, so that the agreement means something
    assert 0.3 * len(names) < len(pending) < 0.7 * len(names), len(pending)
    groups_alone = [n for n in pending if isinstance(blocks.get(n), dict) and not blocks[n].get("attributes")]
    assert any("subscription_groups" in blocks[n] for n in groups_alone), "no model mapped groups alone"
    for key in ("email", "phone", "user_alias", "subscription_groups"):
        built = [n for n in pending if isinstance(blocks.get(n), dict) and key in blocks[n]]
        assert built, f"no model with {key} was accepted"
    assert "fz_wide" in pending and "fz_o'b_000" in names
    events = {name for name, block in blocks.items() if isinstance(block, dict) and "kind" in block}
    assert len(events & pending) > 10 and len(events - pending) > 10, (len(events), len(events & pending))
    assert {k for n in events & pending for k in ("email", "phone", "user_alias") if k in blocks[n]} == {
        "email",
        "phone",
        "user_alias",
    }
    print(f"{len(names)} models, {len(pending)} accepted, {time.monotonic() - started:.1f} s")
