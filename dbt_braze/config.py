"""The `braze` meta blocks: validated once, here, into frozen dataclasses.

The JSON Schema shipped in `schema/braze_meta.schema.json` is the single
definition of each block's shape; the cross-key rules of the contract live
here, one check function per concern (identifier, mode, mappings), run in
order by the block's kind (`KINDS`; `users` is the only kind today: a
new kind lists its own checks, reusing the shared ones). Every problem is
collected, each prefixed with the model name and the path of the key as the
user wrote it, and raised together, before anything is sent. Nothing
downstream of this module sees a raw dict.

Rules shared with the on-run-end hook. The hook cannot call Python, and
Jinja cannot catch an error, so `braze_block_problems` in macros/hook.sql
carries its own copy of every rule that decides whether a block is accepted.
It needs all of them: the shape rules so that no SQL is rendered from a
value of the wrong type, the identifier and mapping rules because it builds
the pending changes from the identifier column and the mappings, and the
others so that it skips exactly the models `dbt-braze validate` refuses (a
pending relation is built only for a model the sync will take). Only the
messages differ: the hook's are shorter, and its warning points to
`dbt-braze validate` for the fix. Each rule and where its two copies live:

  rule                                        here                           hook.sql
  block shape: keys, types, enums, 0..1,      schema/braze_meta.schema.json  model_keys + column loop
    user_alias {name, label}
  not ephemeral                               validate_model                 materialized == 'ephemeral'
  exactly one of the ID_FIELDS                _check_identifier              identifiers
  no upsert with braze_id; no delete+update;  _check_mode                    mode / on_removed
    no delete with email or phone
  identifier column exists                    _check_identifier_column       id_column
  mapped column exists, not the identifier,   _check_mappings                entries loop
    mapped once; attribute name Braze takes
    (no `$`, <= 255 chars, no control char),
    not reserved, not taken by the identifier
    (IDENTIFIER_TAKES), mapped once
  subscription group column exists, not the   _check_subscription_groups     group_entries loop
    identifier, not mapped already; each
    group mapped once
  at least one attribute or group mapped      _check_something_mapped        "no attribute is mapped"
  an identifier column found                  Kind.build (_build_users)      "no identifier column"
  kind events/purchases: keys and types       schema `events`, `purchases`   braze_event_block_problems
                                                                               (macros/events.sql)
    exactly one identifier, its column        _check_identifier(_column)     identifiers (as for users)
    required keys, columns exist              _check_event_columns           required/optional loop
    property names: no `$`, <= 255, no        _check_properties              properties loop
      control char, not time/event_name,
      column mapped once
  kind catalog: keys and types, catalog      schema `catalog`                braze_catalog_block_problems
    name of letters, digits, - and _                                          (macros/catalogs.sql)
    `id` column exists                        _check_catalog_id              id_column
    field columns exist, not the id column,   _check_catalog_fields          fields loop
      mapped once; field names not `id`, no
      `.`, `$` or control char, <= 250

Change both together; tests/integration/test_meta_fuzz.py checks that they
accept the same blocks. Python-only: the wording and fixes of the messages,
the "did you mean" suggestions.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

import jsonschema

from dbt_braze.errors import MetaValidationError

# The kind of identifier, which is also the field that carries it in a Braze object.
IdField = Literal["external_id", "braze_id", "email", "phone", "user_alias"]
ID_FIELDS: tuple[IdField, ...] = ("external_id", "braze_id", "email", "phone", "user_alias")
Mode = Literal["upsert", "update"]
OnRemoved = Literal["ignore", "unset", "delete"]
Subscriptions = Literal["unsubscribe_only", "mirror"]

# Braze takes these as the object's identifier, never as attribute names
# (braze-api-notes.md, "Each attributes object has exactly one primary identifier").
RESERVED_ATTRIBUTE_NAMES = frozenset({"external_id", "braze_id", "user_alias"})
# Attribute names an identifier takes from the object, and why. `email` and `phone` are
# ordinary attributes, except that the object already holds the one that identifies it,
# and that Braze identifies by e-mail when an object holds both (braze-api-notes.md,
# "Identifiers other than external_id": "If both are present, email is used").
IDENTIFIER_TAKES: dict[str, dict[str, str]] = {
    "email": {"email": "the object holds it as the identifier"},
    "phone": {
        "phone": "the object holds it as the identifier",
        "email": "Braze would identify the user by this e-mail address instead of the phone number",
    },
}
# Deleting by an address that several profiles may share can reach another profile
# (contract, "Identifiers": `on_removed: delete` with external_id, braze_id and user_alias only).
_NO_DELETE_BY = {"email": "e-mail address", "phone": "phone number"}
# The fix appended to a shape problem under these keys: the schema's own words do not say
# how the key is written.
_SHAPE_FIXES = {
    "user_alias": "write it as `user_alias: {name: <column>, label: <text>}`",
    "subscription_groups": "write it as `subscription_groups: {<column>: <subscription group id>}`",
}
# The state keys a model's users by the kind of identifier and its value (contract,
# "Identifiers"): these kinds' keys start with a prefix naming the kind (`email:a@b.c`;
# `user_alias:<label>:<name>`), so a model whose identifier changes finds none of its old
# keys and sends every user whole. external_id and braze_id keys have none: they predate the
# other kinds, and a prefix now would make every existing model resend everything.
# macros/changes.sql (braze_key_prefix, braze_recorded_elsewhere_sql) holds the same rules.
# A catalog model's keys are its item ids after `catalog:` (kinds/catalogs.py): a model that
# changes kind never takes one kind's state for the other's.
CATALOG_KEY_PREFIX = "catalog:"
# The attribute that marks a catalog item's existence in the state (macros/catalogs.sql)
CATALOG_ITEM_MARKER = "$item"
KEY_PREFIXES = ("email:", "phone:", "user_alias:", CATALOG_KEY_PREFIX)
# A subscription group is diffed as one more attribute of this name and the group id
# (macros/subscriptions.sql, _braze_group_attribute_prefix); no attribute can collide
# with it, since Braze and _attribute_name_problem refuse names that start with `$`.
SUBSCRIPTION_GROUP_PREFIX = "$subscription_group:"
# A model with more duplicated identifiers than this share of its rows is paused.
DEFAULT_MAX_DUPLICATE_SHARE = 0.05
# A sync that would unset or delete more than this share of the model's users in
# Braze is paused (contract, "Safety rules": the mass-removal guard).
DEFAULT_MAX_REMOVED_SHARE = 0.1
# Braze refuses names of more characters, and names that start with `$`
# (braze-api-notes.md, "Property names: non-empty, at most 255 characters, no leading `$`").
MAX_ATTRIBUTE_NAME_LENGTH = 255
# Control characters would break the acknowledgement lists, joined with chr(31).
_CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class AttributeMapping:
    column: str
    attribute: str


@dataclass(frozen=True)
class SubscriptionGroupMapping:
    column: str
    group_id: str


@dataclass(frozen=True)
class BlockSource:
    """A `braze` block as found in the manifest, with where it was written."""

    path: str  # e.g. "config.meta.braze" or "columns.plan.config.meta.braze"
    block: Any


@dataclass(frozen=True)
class Identifier:
    """How the model's rows name their Braze user: the kind of identifier (the field
    that carries it in a Braze object), its column, and for `user_alias` the label."""

    field: IdField
    column: str  # the real column name, as the warehouse holds it; for user_alias the alias name
    alias_label: str | None = None  # the one label of every alias of the model


@dataclass(frozen=True)
class SyncPolicy:
    """What a sync may do to Braze: create users or not, removals, and the guards that pause it."""

    mode: Mode
    on_removed: OnRemoved
    max_duplicate_share: float = DEFAULT_MAX_DUPLICATE_SHARE
    max_removed_share: float = DEFAULT_MAX_REMOVED_SHARE
    subscriptions: Subscriptions = "unsubscribe_only"  # mirror: subscribes are sent too


@dataclass(frozen=True)
class Mappings:
    """The columns sent: each as one Braze attribute, sorted by attribute name, or as the
    state of one subscription group, sorted by group id."""

    attributes: tuple[AttributeMapping, ...]
    truncate_strings: bool = False  # strings over 255 characters: cut (True) or rejected locally
    subscription_groups: tuple[SubscriptionGroupMapping, ...] = ()


@dataclass(frozen=True)
class EventColumns:
    """The columns of a model of kind `events` or `purchases` (contract, "Events and
    purchases"): `fields` are the object's members taken from a column, in the order
    Braze documents them (events: name; purchases: product_id, currency, price and,
    when mapped, quantity); the properties are the ModelSync's `attributes`."""

    event_id: str
    time: str
    fields: tuple[tuple[str, str], ...]  # (member of the object, column)
    backfill: str = "none"  # none | all | YYYY-MM-DD: what the first run does with existing rows


@dataclass(frozen=True)
class ModelSync:
    """One model's validated sync configuration.

    Its flat attributes are what the engine, the warehouse and the reports
    read; `identifier`, `policy` and `mappings` give the same values grouped
    by concern, and `of` builds one from them."""

    model_name: str
    unique_id: str
    id_field: IdField
    id_column: str
    mode: Mode
    on_removed: OnRemoved
    attributes: tuple[AttributeMapping, ...]
    max_duplicate_share: float = DEFAULT_MAX_DUPLICATE_SHARE
    max_removed_share: float = DEFAULT_MAX_REMOVED_SHARE
    truncate_strings: bool = False  # strings over 255 characters: cut (True) or rejected locally
    alias_label: str | None = None  # with id_field user_alias: the label of every alias
    subscription_groups: tuple[SubscriptionGroupMapping, ...] = ()
    subscriptions: Subscriptions = "unsubscribe_only"
    kind: str = "users"  # KINDS: users | events | purchases | catalog
    events: EventColumns | None = None  # kinds events and purchases; their properties are `attributes`
    catalog: str | None = None  # kind catalog: the catalog's name; its fields are `attributes`

    @classmethod
    def of(
        cls, model_name: str, unique_id: str, identifier: Identifier, policy: SyncPolicy, mappings: Mappings
    ) -> ModelSync:
        return cls(
            model_name=model_name,
            unique_id=unique_id,
            id_field=identifier.field,
            id_column=identifier.column,
            mode=policy.mode,
            on_removed=policy.on_removed,
            attributes=mappings.attributes,
            max_duplicate_share=policy.max_duplicate_share,
            max_removed_share=policy.max_removed_share,
            truncate_strings=mappings.truncate_strings,
            alias_label=identifier.alias_label,
            subscription_groups=mappings.subscription_groups,
            subscriptions=policy.subscriptions,
        )

    @property
    def identifier(self) -> Identifier:
        return Identifier(self.id_field, self.id_column, self.alias_label)

    @property
    def policy(self) -> SyncPolicy:
        return SyncPolicy(
            self.mode, self.on_removed, self.max_duplicate_share, self.max_removed_share, self.subscriptions
        )

    @property
    def mappings(self) -> Mappings:
        return Mappings(self.attributes, self.truncate_strings, self.subscription_groups)

    @property
    def update_only(self) -> bool:
        return self.mode == "update"

    @property
    def key_prefix(self) -> str:
        """What this model's state keys start with, before the identifier's value (KEY_PREFIXES)."""
        if self.kind == "catalog":
            return CATALOG_KEY_PREFIX
        if self.id_field == "user_alias":
            return f"user_alias:{self.alias_label}:"
        return f"{self.id_field}:" if self.id_field in ("email", "phone") else ""

    def mapping_specs(self) -> list[dict[str, Any]]:
        """The mappings as the macros take them (the on-run-end hook builds the same from meta),
        subscription groups last (macros/subscriptions.sql, _braze_group_mappings); a
        catalog's item marker last (macros/catalogs.sql, braze_catalog_spec)."""
        if self.kind == "catalog":
            marker = AttributeMapping(self.id_column, CATALOG_ITEM_MARKER)
            return [{"column": m.column, "attribute": m.attribute} for m in (*self.attributes, marker)]
        return [
            {"column": m.column, "attribute": m.attribute, "truncate_strings": self.truncate_strings}
            for m in self.attributes
        ] + [
            {
                "column": g.column,
                "attribute": SUBSCRIPTION_GROUP_PREFIX + g.group_id,
                "subscriptions": self.subscriptions,
            }
            for g in self.subscription_groups
        ]


def recorded_elsewhere(key: str, key_prefix: str) -> bool:
    """Whether a state key was recorded under another identifier than the one whose keys
    start with `key_prefix` (macro braze_recorded_elsewhere_sql says the same in SQL)."""
    return not key.startswith(key_prefix) if key_prefix else key.startswith(KEY_PREFIXES)


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    text = resources.files("dbt_braze").joinpath("schema/braze_meta.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def _validator(definition: str) -> jsonschema.Draft202012Validator:
    schema = {**_schema(), "$ref": f"#/$defs/{definition}"}
    return jsonschema.Draft202012Validator(schema)


def _describe(value: Any) -> str:
    return (
        json.dumps(value)
        if isinstance(value, (str, int, float, bool)) or value is None
        else type(value).__name__
    )


def _schema_problems(model: str, source: BlockSource, definition: str) -> list[str]:
    problems = []
    for error in sorted(_validator(definition).iter_errors(source.block), key=lambda e: list(e.path)):
        path = ".".join([source.path, *(str(p) for p in error.path)])
        shape_fix = _SHAPE_FIXES.get(str(error.path[0])) if error.path and definition == "model" else None
        if error.validator == "additionalProperties" and "properties" in error.schema:
            props = list(error.schema["properties"])
            for key in sorted(str(k) for k in set(error.instance) - set(props)):
                close = difflib.get_close_matches(key, props, n=1)
                valid = f"valid keys: {', '.join(props)}"
                fix = f"did you mean `{close[0]}`?" if close else shape_fix or valid
                problems.append(f"{model}: {path}.{key}: unknown key; {fix}")
            continue
        if error.validator == "enum":
            choices = ", ".join(str(c) for c in error.validator_value)
            text = f"{_describe(error.instance)} is not valid; choose one of: {choices}"
        elif error.validator == "type":
            text = f"expected {error.validator_value}, got {_describe(error.instance)}"
        elif error.validator == "minLength":
            text = "expected a non-empty string"
        else:
            text = error.message
        problems.append(f"{model}: {path}: {text}" + (f"; {shape_fix}" if shape_fix else ""))
    return problems


def _find_column(name: str, columns: Mapping[str, str] | None) -> str | None:
    """The real column name for `name` (case-insensitive), or None if absent."""
    if columns is None:
        return name
    return columns.get(name.lower())


def _attribute_name_problem(attribute: str) -> str | None:
    if attribute.startswith("$"):
        return f"Braze attribute `{attribute}` starts with `$`, which Braze refuses; rename it"
    if len(attribute) > MAX_ATTRIBUTE_NAME_LENGTH:
        return (
            f"Braze attribute `{attribute[:40]}...` has {len(attribute)} characters; "
            f"Braze takes at most {MAX_ATTRIBUTE_NAME_LENGTH}"
        )
    if _CONTROL_CHARACTER.search(attribute):
        return f"Braze attribute {json.dumps(attribute)} holds a control character; rename it"
    return None


@dataclass
class Draft:
    """One model's block under validation: what the checks read, and what they found so far.

    The block has passed no rule yet: a check reads only values of the shape
    it needs (a value of the wrong shape is already reported by the schema)."""

    model_name: str
    here: str  # the block's path, as the user wrote it
    block: dict[str, Any]
    column_blocks: Mapping[str, BlockSource]
    columns: dict[str, str] | None  # lower-cased name: real name; None: not checked
    problems: list[str]
    id_keys: tuple[IdField, ...] = ()  # the identifier keys the block holds
    id_field: IdField = "external_id"  # the one identifier, once the block holds exactly one
    id_path: str = ""  # where its column is named, e.g. "config.meta.braze.user_alias.name"
    id_name: str = ""  # its column as written
    id_column: str | None = None  # its column as the warehouse holds it
    alias_label: str | None = None
    policy: SyncPolicy | None = None
    mappings: Mappings | None = None
    mapped_columns: dict[str, str] = field(default_factory=dict)  # lower-cased column: path
    subscription_groups: tuple[SubscriptionGroupMapping, ...] = ()

    def problem(self, path: str, text: str) -> None:
        self.problems.append(f"{self.model_name}: {path}: {text}")

    def missing_column(self, path: str, column: str) -> None:
        self.problem(
            path,
            f"column `{column}` does not exist in the model; "
            f"columns are: {', '.join(sorted(self.columns or {}))}",
        )


# A check reads the draft, reports its problems, records what it found, and
# returns False when the checks after it cannot run (a value of the wrong shape).
Check = Callable[[Draft], bool]


def _check_identifier(draft: Draft) -> bool:
    """Exactly one identifier; a `user_alias` names its column and its label."""
    block, here = draft.block, draft.here
    draft.id_keys = tuple(k for k in ID_FIELDS if k in block)
    if not all(_identifier_column_name(k, block[k]) is not None for k in draft.id_keys):
        return False  # a value of the wrong shape, reported by the schema
    if len(draft.id_keys) != 1:
        keys = [f"`{k}`" for k in draft.id_keys]
        found = (
            "it has neither an identifier column nor a user alias"
            if not keys
            else f"it has both {keys[0]} and {keys[1]}"
            if len(keys) == 2
            else f"it has {', '.join(keys[:-1])} and {keys[-1]}"
        )
        draft.problem(
            here,
            f"needs exactly one of {' or '.join(f'`{k}`' for k in ID_FIELDS)} ({found}); "
            "keep the one that names the column identifying the user, e.g. `external_id: user_id`",
        )
        return True
    draft.id_field = draft.id_keys[0]
    draft.id_name = _identifier_column_name(draft.id_field, block[draft.id_field]) or ""
    draft.id_path = f"{here}.{draft.id_field}"
    if draft.id_field == "user_alias":
        draft.id_path += ".name"
        label = block["user_alias"].get("label")
        draft.alias_label = label if isinstance(label, str) else None
    return True


def _identifier_column_name(key: IdField, value: Any) -> str | None:
    """The column an identifier names (`user_alias: {name: <column>}`), or None for a wrong shape."""
    if key == "user_alias":
        value = value.get("name") if isinstance(value, dict) else None
    return value if isinstance(value, str) else None


def _check_mode(draft: Draft) -> bool:
    """`mode` and `on_removed`, defaulted by the identifier, and the pairs they cannot form."""
    block, here = draft.block, draft.here
    mode: Mode = block.get("mode", "update" if draft.id_field == "braze_id" else "upsert")
    on_removed: OnRemoved = block.get("on_removed", "ignore")
    if mode not in ("upsert", "update") or on_removed not in ("ignore", "unset", "delete"):
        return False  # already reported by the schema
    if draft.id_field == "braze_id" and mode == "upsert" and len(draft.id_keys) == 1:
        draft.problem(
            f"{here}.mode",
            "`upsert` is not possible with `braze_id` "
            "(a Braze ID cannot create users); use `mode: update` or identify users by `external_id`",
        )
    if on_removed == "delete" and mode == "update":
        draft.problem(
            f"{here}.on_removed",
            "`delete` is not allowed with `mode: update`; use `unset` or `ignore`, or `mode: upsert`",
        )
    if on_removed == "delete" and draft.id_field in _NO_DELETE_BY:
        what = _NO_DELETE_BY[draft.id_field]
        draft.problem(
            f"{here}.on_removed",
            f"`delete` is not allowed with `{draft.id_field}`: several profiles may share one {what}, "
            f"so deleting by {what} can reach another profile; use `unset` or `ignore`, "
            "or identify users by `external_id`, `braze_id` or `user_alias`",
        )
    subscriptions = block.get("subscriptions", "unsubscribe_only")
    draft.policy = SyncPolicy(
        mode=mode,
        on_removed=on_removed,
        max_duplicate_share=_share(block, "max_duplicate_share", DEFAULT_MAX_DUPLICATE_SHARE),
        max_removed_share=_share(block, "max_removed_share", DEFAULT_MAX_REMOVED_SHARE),
        # another value is reported by the schema
        subscriptions="mirror" if subscriptions == "mirror" else "unsubscribe_only",
    )
    return True


def _share(block: dict[str, Any], key: str, default: float) -> float:
    """The share under `key`, or its default; one that is not a number is reported by the schema."""
    value = block.get(key, default)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def _check_identifier_column(draft: Draft) -> bool:
    """The identifier's column exists in the model."""
    if draft.id_name:
        draft.id_column = _find_column(draft.id_name, draft.columns)
        if draft.id_column is None:
            draft.missing_column(draft.id_path, draft.id_name)
    return True


def _mapping_entries(draft: Draft) -> list[tuple[str, str, str]]:
    """(path, column, attribute) of every mapping, model-level `attributes` first."""
    attributes = draft.block.get("attributes")
    entries: list[tuple[str, str, str]] = [
        (f"{draft.here}.attributes.{col}", col, attr)
        for col, attr in (attributes.items() if isinstance(attributes, dict) else [])
        if isinstance(attr, str)
    ]
    entries += [
        (f"{src.path}.attribute", col, src.block["attribute"])
        for col, src in draft.column_blocks.items()
        if isinstance(src.block, dict) and isinstance(src.block.get("attribute"), str)
    ]
    return entries


def _check_mappings(draft: Draft) -> bool:
    """Each mapped column exists, is not the identifier, is mapped once, to a name Braze takes."""
    entries = _mapping_entries(draft)
    mappings: list[AttributeMapping] = []
    seen_columns: dict[str, str] = {}
    seen_attributes: dict[str, str] = {}
    for path, col, attr in entries:
        real = _find_column(col, draft.columns)
        if real is None:
            draft.missing_column(path, col)
            continue
        name_problem = _attribute_name_problem(attr)
        if name_problem:
            draft.problem(path, name_problem)
        if attr in RESERVED_ATTRIBUTE_NAMES:
            draft.problem(
                path, f"`{attr}` is reserved by Braze for identifiers; choose another attribute name"
            )
        taken = IDENTIFIER_TAKES.get(draft.id_field, {}).get(attr)
        if taken:
            draft.problem(
                path,
                f"Braze attribute `{attr}` cannot be mapped in a model identified by `{draft.id_field}`: "
                f"{taken}; choose another attribute name",
            )
        if draft.id_column is not None and real.lower() == draft.id_column.lower():
            draft.problem(
                path,
                f"column `{col}` is the identifier column; "
                "it is sent as the identifier and cannot also be an attribute",
            )
        _map_once(draft, path, (col, real), ("Braze attribute", attr), seen_columns, seen_attributes)
        mappings.append(AttributeMapping(column=real, attribute=attr))

    draft.mapped_columns.update(seen_columns)
    draft.mappings = Mappings(
        attributes=tuple(sorted(mappings, key=lambda m: m.attribute)),
        truncate_strings=draft.block.get("truncate_strings") is True,
    )
    return True


def _check_subscription_groups(draft: Draft) -> bool:
    """Each subscription group's column exists, is neither the identifier nor mapped already
    (as an attribute, or to another group), and each group is mapped from one column."""
    groups = draft.block.get("subscription_groups")
    seen_groups: dict[str, str] = {}
    found: list[SubscriptionGroupMapping] = []
    for col, group_id in groups.items() if isinstance(groups, dict) else []:
        if not (isinstance(group_id, str) and group_id):
            continue  # reported by the schema
        path = f"{draft.here}.subscription_groups.{col}"
        real = _find_column(str(col), draft.columns)
        if real is None:
            draft.missing_column(path, str(col))
            continue
        if draft.id_column is not None and real.lower() == draft.id_column.lower():
            draft.problem(
                path,
                f"column `{col}` is the identifier column; "
                "it is sent as the identifier and cannot also be a subscription group",
            )
        elif real.lower() in draft.mapped_columns:
            draft.problem(
                path,
                f"column `{col}` is already mapped at {draft.mapped_columns[real.lower()]}; "
                "map each column once, as an attribute or as a subscription group",
            )
        if group_id in seen_groups:
            draft.problem(
                path,
                f"subscription group `{group_id}` is already mapped at {seen_groups[group_id]}; "
                "map each group from one column",
            )
        draft.mapped_columns.setdefault(real.lower(), path)
        seen_groups.setdefault(group_id, path)
        found.append(SubscriptionGroupMapping(column=real, group_id=group_id))
    draft.subscription_groups = tuple(sorted(found, key=lambda g: g.group_id))
    return True


def _check_something_mapped(draft: Draft) -> bool:
    """At least one attribute or subscription group (a column with a problem counts: it is reported)."""
    if not draft.mapped_columns and not draft.problems:
        draft.problem(
            draft.here,
            "no attribute is mapped; add `attributes:` (column: braze_attribute), "
            "a column-level `attribute:` or `subscription_groups:` (column: subscription group id)",
        )
    return True


def _build_users(draft: Draft, unique_id: str) -> ModelSync | None:
    if draft.problems or draft.id_column is None or draft.policy is None or draft.mappings is None:
        return None
    identifier = Identifier(draft.id_field, draft.id_column, draft.alias_label)
    mappings = replace(draft.mappings, subscription_groups=draft.subscription_groups)
    return ModelSync.of(draft.model_name, unique_id, identifier, draft.policy, mappings)


@dataclass(frozen=True)
class Kind:
    """A kind of model: its checks, run in this order (the order of the problems), and
    the config built from a draft they all passed (None when a problem was found)."""

    checks: tuple[Check, ...]
    build: Callable[[Draft, str], ModelSync | None]


# -- kinds events and purchases -------------------------------------------------------------

# Braze refuses these property names: they name the event object's own members
# (braze-api-notes.md, "`time` and `event_name` are reserved and cause API errors").
RESERVED_PROPERTY_NAMES = frozenset({"time", "event_name"})
# The columns each kind requires, then the optional ones, as the object's members.
EVENT_FIELDS = {"events": ("name",), "purchases": ("product_id", "currency", "price")}
OPTIONAL_EVENT_FIELDS = {"events": (), "purchases": ("quantity",)}


def _check_event_policy(draft: Draft) -> bool:
    """Events never remove anything; they may create their user, but by a braze_id."""
    draft.policy = SyncPolicy(
        mode="update" if draft.id_field == "braze_id" else "upsert",
        on_removed="ignore",
        max_duplicate_share=_share(draft.block, "max_duplicate_share", DEFAULT_MAX_DUPLICATE_SHARE),
    )
    return True


def _check_event_columns(draft: Draft) -> bool:
    """`event_id`, `time` and the kind's fields name columns of the model; required ones are there."""
    kind = draft.block["kind"]
    for key in ("event_id", "time", *EVENT_FIELDS[kind], *OPTIONAL_EVENT_FIELDS[kind]):
        name = draft.block.get(key)
        if name is None and key not in OPTIONAL_EVENT_FIELDS[kind]:
            draft.problem(draft.here, f"`{key}` is required for kind {kind}; name the column holding it")
        elif isinstance(name, str) and name and _find_column(name, draft.columns) is None:
            draft.missing_column(f"{draft.here}.{key}", name)
    return True


def _check_properties(draft: Draft) -> bool:
    """Each property's column exists and is mapped once, to a name Braze takes and does not reserve."""
    properties = draft.block.get("properties")
    mappings: list[AttributeMapping] = []
    seen_columns: set[str] = set()
    for col, name in properties.items() if isinstance(properties, dict) else []:
        if not isinstance(name, str):
            continue
        path = f"{draft.here}.properties.{col}"
        real = _find_column(col, draft.columns)
        if real is None:
            draft.missing_column(path, col)
            continue
        problem = _attribute_name_problem(name)
        if problem:
            draft.problem(path, problem.replace("Braze attribute", "property"))
        if name in RESERVED_PROPERTY_NAMES:
            draft.problem(path, f"property `{name}` is reserved by Braze; choose another name")
        if real.lower() in seen_columns:
            draft.problem(path, f"column `{col}` is already mapped; map each column once")
        seen_columns.add(real.lower())
        mappings.append(AttributeMapping(column=real, attribute=name))
    draft.mappings = Mappings(attributes=tuple(sorted(mappings, key=lambda m: m.attribute)))
    return True


def _build_events(draft: Draft, unique_id: str) -> ModelSync | None:
    if draft.problems or draft.id_column is None or draft.policy is None or draft.mappings is None:
        return None
    kind = draft.block["kind"]
    columns = draft.columns

    def column(key: str) -> str:
        found = _find_column(draft.block[key], columns)
        assert found is not None  # checked by _check_event_columns
        return found

    present = [k for k in (*EVENT_FIELDS[kind], *OPTIONAL_EVENT_FIELDS[kind]) if k in draft.block]
    events = EventColumns(
        event_id=column("event_id"),
        time=column("time"),
        fields=tuple((key, column(key)) for key in present),
        backfill=draft.block.get("backfill", "none"),
    )
    config = ModelSync.of(
        draft.model_name,
        unique_id,
        Identifier(draft.id_field, draft.id_column, draft.alias_label),
        draft.policy,
        draft.mappings,
    )
    return dataclasses.replace(config, kind=kind, events=events)


# -- kind catalog ----------------------------------------------------------------------------

# Braze's limits on catalog field names and item ids (braze-api-notes.md, "Catalogs": ids of
# at most 250 characters; keys without `.` or `$`). `id` is the item's own member.
MAX_CATALOG_NAME_LENGTH = 250
_FIELD_NAME_REFUSED = re.compile(r"[.$\x00-\x1f\x7f]")


def _check_catalog_id(draft: Draft) -> bool:
    """`id` names a column of the model: the item id (kinds/catalogs.py checks each value)."""
    name = draft.block.get("id")
    if isinstance(name, str) and name:
        draft.id_name, draft.id_path = name, f"{draft.here}.id"
        _check_identifier_column(draft)
    on_removed = draft.block.get("on_removed", "ignore")
    draft.policy = SyncPolicy(
        mode="upsert",
        on_removed="delete" if on_removed == "delete" else "ignore",  # another value: the schema's
        max_duplicate_share=_share(draft.block, "max_duplicate_share", DEFAULT_MAX_DUPLICATE_SHARE),
        max_removed_share=_share(draft.block, "max_removed_share", DEFAULT_MAX_REMOVED_SHARE),
    )
    return True


def _catalog_field_problem(name: str) -> str | None:
    if name == "id":
        return "`id` is the item id, not a field; name the id column under `id:` instead"
    if _FIELD_NAME_REFUSED.search(name):
        return f"catalog field {json.dumps(name)} holds `.`, `$` or a control character, which Braze refuses"
    if len(name) > MAX_CATALOG_NAME_LENGTH:
        return f"catalog field `{name[:40]}...` has {len(name)} characters; Braze takes at most 250"
    return None


def _check_catalog_fields(draft: Draft) -> bool:
    """Each field's column exists, is not the id column, is mapped once, to a name Braze takes."""
    fields = draft.block.get("fields")
    mappings: list[AttributeMapping] = []
    seen_columns: dict[str, str] = {}
    seen_fields: dict[str, str] = {}
    for col, name in fields.items() if isinstance(fields, dict) else []:
        if not (isinstance(name, str) and name):
            continue  # reported by the schema
        path = f"{draft.here}.fields.{col}"
        real = _find_column(str(col), draft.columns)
        if real is None:
            draft.missing_column(path, str(col))
            continue
        problem = _catalog_field_problem(name)
        if problem:
            draft.problem(path, problem)
        if draft.id_column is not None and real.lower() == draft.id_column.lower():
            draft.problem(path, f"column `{col}` is the id column; it is sent as the item id")
        _map_once(draft, path, (col, real), ("catalog field", name), seen_columns, seen_fields)
        mappings.append(AttributeMapping(column=real, attribute=name))
    draft.mappings = Mappings(attributes=tuple(sorted(mappings, key=lambda m: m.attribute)))
    return True


def _build_catalog(draft: Draft, unique_id: str) -> ModelSync | None:
    if draft.problems or draft.id_column is None or draft.policy is None or draft.mappings is None:
        return None
    config = ModelSync.of(
        draft.model_name, unique_id, Identifier("external_id", draft.id_column), draft.policy, draft.mappings
    )
    return dataclasses.replace(config, kind="catalog", catalog=draft.block["catalog"])


_CATALOG_KIND = Kind(checks=(_check_catalog_id, _check_catalog_fields), build=_build_catalog)

# The `kind:` of a block picks its entry (contract, "Beyond user attributes"), each kind
# reusing the shared checks and adding its own.
_EVENT_KIND = Kind(
    checks=(
        _check_identifier,
        _check_event_policy,
        _check_identifier_column,
        _check_event_columns,
        _check_properties,
    ),
    build=_build_events,
)
KINDS: dict[str, Kind] = {
    "users": Kind(
        checks=(
            _check_identifier,
            _check_mode,
            _check_identifier_column,
            _check_mappings,
            _check_subscription_groups,
            _check_something_mapped,
        ),
        build=_build_users,
    ),
    "events": _EVENT_KIND,
    "purchases": _EVENT_KIND,
    "catalog": _CATALOG_KIND,
}


def validate_model(
    model_name: str,
    unique_id: str,
    model_block: BlockSource,
    column_blocks: Mapping[str, BlockSource],
    warehouse_columns: Iterable[str] | None,
    materialized: str | None = None,
) -> tuple[ModelSync | None, list[str]]:
    """Validate one model's blocks; return the config (if valid) and every problem.

    `warehouse_columns` is the model's real columns; None skips the existence
    checks (the warehouse was not consulted). `materialized` is the model's
    materialization from the manifest.
    """
    problems = _schema_problems(model_name, model_block, _definition(model_block.block))
    if materialized == "ephemeral":
        problems.append(
            f"{model_name}: the model is ephemeral: it has no relation to compute changes from; "
            "materialize it as a table or a view (config: materialized: table)"
        )
    for source in column_blocks.values():
        problems += _schema_problems(model_name, source, "column")
    if not isinstance(model_block.block, dict):
        return None, problems or [f"{model_name}: {model_block.path}: expected a mapping"]
    # Keep going after schema problems so that every rule's problems are reported
    # at once; values of the wrong shape are simply left out of the rule checks.
    draft = Draft(
        model_name=model_name,
        here=model_block.path,
        block=model_block.block,
        column_blocks=column_blocks,
        columns=None if warehouse_columns is None else {c.lower(): c for c in warehouse_columns},
        problems=problems,
    )
    kind_name = model_block.block.get("kind", "users")
    kind = KINDS.get(kind_name, KINDS["users"]) if isinstance(kind_name, str) else KINDS["users"]
    for check in kind.checks:
        if not check(draft):
            return None, problems
    config = kind.build(draft, unique_id)
    return (None, problems) if config is None else (config, [])


def _definition(block: Any) -> str:
    """The schema definition a block is checked against: its kind's (`model` for users)."""
    kind = block.get("kind") if isinstance(block, dict) else None
    return kind if kind in ("events", "purchases", "catalog") else "model"


def raise_if_problems(problems: list[str]) -> None:
    if problems:
        raise MetaValidationError(problems)


def _map_once(
    draft: Draft,
    path: str,
    column: tuple[str, str],
    target: tuple[str, str],
    seen_columns: dict[str, str],
    seen_targets: dict[str, str],
) -> None:
    """Each column mapped once, each Braze name (an attribute, a catalog field) from one
    column: a second mapping of either is a problem at `path`. `column`: as meta names it
    and as the model spells it; `target`: what the name is (`Braze attribute`) and the name."""
    (col, real), (what, name) = column, target
    if real.lower() in seen_columns:
        draft.problem(
            path, f"column `{col}` is already mapped at {seen_columns[real.lower()]}; map each column once"
        )
    if name in seen_targets:
        draft.problem(
            path,
            f"{what} `{name}` is already mapped at {seen_targets[name]}; "
            f"map each {what.split()[-1]} from one column",
        )
    seen_columns.setdefault(real.lower(), path)
    seen_targets.setdefault(name, path)
