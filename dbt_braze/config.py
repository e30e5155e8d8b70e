"""The `braze` meta blocks: validated once, here, into frozen dataclasses.

The JSON Schema shipped in `schema/braze_meta.schema.json` is the single
definition of each block's shape; the cross-key rules of the contract live in
`validate_model`. Every problem is collected, each prefixed with the model name
and the path of the key as the user wrote it, and raised together, before
anything is sent. Nothing downstream of this module sees a raw dict.

The on-run-end hook cannot call Python: `braze_block_problems` in
macros/hook.sql is its copy of every rule here that decides whether a block
is accepted (the schema included). Change both together;
tests/integration/test_meta_fuzz.py checks that they accept the same blocks.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

import jsonschema

from dbt_braze.errors import MetaValidationError

IdField = Literal["external_id", "braze_id"]
Mode = Literal["upsert", "update"]
OnRemoved = Literal["ignore", "unset", "delete"]

# Braze takes these as the object's identifier, never as attribute names
# (braze-api-notes.md, "Each attributes object has exactly one primary identifier").
RESERVED_ATTRIBUTE_NAMES = frozenset({"external_id", "braze_id", "user_alias"})
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
class BlockSource:
    """A `braze` block as found in the manifest, with where it was written."""

    path: str  # e.g. "config.meta.braze" or "columns.plan.config.meta.braze"
    block: Any


@dataclass(frozen=True)
class ModelSync:
    """One model's validated sync configuration."""

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

    @property
    def update_only(self) -> bool:
        return self.mode == "update"


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
    props = _schema()["$defs"][definition]["properties"]
    for error in sorted(_validator(definition).iter_errors(source.block), key=lambda e: list(e.path)):
        path = ".".join([source.path, *(str(p) for p in error.path)])
        if error.validator == "additionalProperties" and error.schema is _schema()["$defs"][definition]:
            for key in sorted(set(error.instance) - set(props)):
                close = difflib.get_close_matches(str(key), list(props), n=1)
                fix = f"did you mean `{close[0]}`?" if close else f"valid keys: {', '.join(props)}"
                problems.append(f"{model}: {path}.{key}: unknown key; {fix}")
        elif error.validator == "enum":
            choices = ", ".join(str(c) for c in error.validator_value)
            problems.append(
                f"{model}: {path}: {_describe(error.instance)} is not valid; choose one of: {choices}"
            )
        elif error.validator == "type":
            problems.append(
                f"{model}: {path}: expected {error.validator_value}, got {_describe(error.instance)}"
            )
        elif error.validator == "required":
            problems.append(f"{model}: {path}: {error.message}")
        else:
            problems.append(f"{model}: {path}: {error.message}")
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
    problems = _schema_problems(model_name, model_block, "model")
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

    block: dict[str, Any] = model_block.block
    here = model_block.path
    columns = None if warehouse_columns is None else {c.lower(): c for c in warehouse_columns}

    identifiers = [k for k in ("external_id", "braze_id") if k in block]
    if not all(isinstance(block[k], str) for k in identifiers):
        return None, problems
    id_field: IdField = "external_id"
    if len(identifiers) != 1:
        problems.append(
            f"{model_name}: {here}: needs exactly one of `external_id` or `braze_id` "
            f"(found {'both' if identifiers else 'neither'}); name the column holding the Braze identifier"
        )
    else:
        id_field = "braze_id" if identifiers[0] == "braze_id" else "external_id"
    id_column_name = block.get(id_field, "")

    mode: Mode = block.get("mode", "update" if id_field == "braze_id" else "upsert")
    on_removed: OnRemoved = block.get("on_removed", "ignore")
    if mode not in ("upsert", "update") or on_removed not in ("ignore", "unset", "delete"):
        return None, problems  # already reported by the schema
    if id_field == "braze_id" and mode == "upsert" and len(identifiers) == 1:
        problems.append(
            f"{model_name}: {here}.mode: `upsert` is not possible with `braze_id` "
            "(a Braze ID cannot create users); use `mode: update` or identify users by `external_id`"
        )
    if on_removed == "delete" and mode == "update":
        problems.append(
            f"{model_name}: {here}.on_removed: `delete` is not allowed with `mode: update`; "
            "use `unset` or `ignore`, or `mode: upsert`"
        )

    id_column = None
    if id_column_name:
        id_column = _find_column(id_column_name, columns)
        if id_column is None:
            problems.append(
                f"{model_name}: {here}.{id_field}: column `{id_column_name}` does not exist in the model; "
                f"columns are: {', '.join(sorted(columns or {}))}"
            )

    attributes = block.get("attributes")
    entries: list[tuple[str, str, str]] = [
        (f"{here}.attributes.{col}", col, attr)
        for col, attr in (attributes.items() if isinstance(attributes, dict) else [])
        if isinstance(attr, str)
    ]
    entries += [
        (f"{src.path}.attribute", col, src.block["attribute"])
        for col, src in column_blocks.items()
        if isinstance(src.block, dict) and isinstance(src.block.get("attribute"), str)
    ]

    mappings: list[AttributeMapping] = []
    seen_columns: dict[str, str] = {}
    seen_attributes: dict[str, str] = {}
    for path, col, attr in entries:
        real = _find_column(col, columns)
        if real is None:
            problems.append(
                f"{model_name}: {path}: column `{col}` does not exist in the model; "
                f"columns are: {', '.join(sorted(columns or {}))}"
            )
            continue
        name_problem = _attribute_name_problem(attr)
        if name_problem:
            problems.append(f"{model_name}: {path}: {name_problem}")
        if attr in RESERVED_ATTRIBUTE_NAMES:
            problems.append(
                f"{model_name}: {path}: `{attr}` is reserved by Braze for identifiers; "
                "choose another attribute name"
            )
        if id_column is not None and real.lower() == id_column.lower():
            problems.append(
                f"{model_name}: {path}: column `{col}` is the identifier column; "
                "it is sent as the identifier and cannot also be an attribute"
            )
        if real.lower() in seen_columns:
            problems.append(
                f"{model_name}: {path}: column `{col}` is already mapped at {seen_columns[real.lower()]}; "
                "map each column once"
            )
        if attr in seen_attributes:
            problems.append(
                f"{model_name}: {path}: Braze attribute `{attr}` is already mapped at "
                f"{seen_attributes[attr]}; map each attribute from one column"
            )
        seen_columns.setdefault(real.lower(), path)
        seen_attributes.setdefault(attr, path)
        mappings.append(AttributeMapping(column=real, attribute=attr))

    if not entries and not problems:
        problems.append(
            f"{model_name}: {here}: no attribute is mapped; add `attributes:` "
            "(column: braze_attribute) or a column-level `attribute:`"
        )
    if problems or id_column is None:
        return None, problems
    return (
        ModelSync(
            model_name=model_name,
            unique_id=unique_id,
            id_field=id_field,
            id_column=id_column,
            mode=mode,
            on_removed=on_removed,
            attributes=tuple(sorted(mappings, key=lambda m: m.attribute)),
            max_duplicate_share=float(block.get("max_duplicate_share", DEFAULT_MAX_DUPLICATE_SHARE)),
            max_removed_share=float(block.get("max_removed_share", DEFAULT_MAX_REMOVED_SHARE)),
            truncate_strings=block.get("truncate_strings") is True,
        ),
        [],
    )


def raise_if_problems(problems: list[str]) -> None:
    if problems:
        raise MetaValidationError(problems)
