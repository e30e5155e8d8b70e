"""What differs between the kinds of data a model syncs (contract.md, `kind:`), one module
each: which reads the sync streams from the warehouse, how a row becomes what Braze is
sent, which endpoint takes it, and what an answer acknowledges. Everything else (the
loop, checkpoints, the lock, retries, run history) is shared, in engine.py.
"""

from __future__ import annotations

from dbt_braze.config import ModelSync
from dbt_braze.kinds.base import Kind
from dbt_braze.kinds.catalogs import CATALOGS
from dbt_braze.kinds.events import EVENTS, PURCHASES
from dbt_braze.kinds.users import USERS

KINDS: dict[str, Kind] = {kind.name: kind for kind in (USERS, EVENTS, PURCHASES, CATALOGS)}


def kind_of(model: ModelSync) -> Kind:
    """The kind a model syncs (its block's `kind:`, validated by config.py)."""
    return KINDS[model.kind]
