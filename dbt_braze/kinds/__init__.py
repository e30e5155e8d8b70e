"""What differs between the kinds of data a model syncs (contract.md, `kind:`), one module
each: which reads the sync streams from the warehouse, how a row becomes what Braze is
sent, which endpoint takes it, and what an answer acknowledges. Everything else (the
loop, checkpoints, the lock, retries, run history) is shared, in engine.py.
"""

from __future__ import annotations

from dbt_braze.config import ModelSync
from dbt_braze.kinds.base import Kind
from dbt_braze.kinds.users import USERS

KINDS: dict[str, Kind] = {USERS.name: USERS}


def kind_of(model: ModelSync) -> Kind:
    """The kind a model syncs: `users` for every model until the other kinds are built."""
    return KINDS[USERS.name]
