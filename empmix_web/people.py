"""Profile (People) operations, and the ones held while the visitor is anonymous.

Profiles belong to users, so operations made before ``identify`` are held in storage
(``empmix_<token>_people``), merged as they arrive, and sent under the user id right after
``identify``: a later ``$set`` wins, ``$add`` sums, ``$unset`` cancels pending sets of that name,
``$set`` cancels a pending ``$unset``/``$add`` of that name.
"""

from __future__ import annotations

from typing import Any

# Order in which held operations are released. Sets and unsets never share a name after merging,
# and a $set of a name drops its pending $add, so this order reproduces the call order's result.
OPERATIONS = ("$set", "$set_once", "$unset", "$add", "$union", "$append", "$remove", "$delete")


def empty_pending() -> dict[str, Any]:
    return {"$set": {}, "$set_once": {}, "$unset": [], "$add": {}, "$union": {}, "$append": [], "$remove": []}


def normalise_pending(data: Any) -> dict[str, Any]:
    """Stored pending operations, or empty ones when the stored value is malformed."""
    pending = empty_pending()
    if not isinstance(data, dict):
        return pending
    for op, default in pending.items():
        value = data.get(op)
        if isinstance(value, type(default)):
            pending[op] = value
    return pending


def hold(pending: dict[str, Any], op: str, value: Any) -> None:
    """Merge one operation into ``pending`` (in place)."""
    if op == "$set":
        for name, item in value.items():
            pending["$set"][name] = item
            pending["$add"].pop(name, None)
            pending["$union"].pop(name, None)
            if name in pending["$unset"]:
                pending["$unset"].remove(name)
    elif op == "$set_once":
        for name, item in value.items():
            pending["$set_once"].setdefault(name, item)
    elif op == "$add":
        for name, amount in value.items():
            pending["$add"][name] = pending["$add"].get(name, 0) + amount
    elif op == "$unset":
        for name in value:
            for table in ("$set", "$set_once", "$add", "$union"):
                pending[table].pop(name, None)
            if name not in pending["$unset"]:
                pending["$unset"].append(name)
    elif op == "$union":
        for name, items in value.items():
            merged = pending["$union"].setdefault(name, [])
            merged.extend(i for i in items if i not in merged)
    elif op in ("$append", "$remove"):
        pending[op].append(value)  # order matters: each is sent on its own
    else:
        raise ValueError(f"cannot hold {op}")


def release(pending: dict[str, Any]) -> list[tuple[str, Any]]:
    """The held operations as ``(op, value)`` pairs, in sending order."""
    out: list[tuple[str, Any]] = []
    for op in ("$set", "$set_once", "$unset", "$add", "$union"):
        if pending.get(op):
            out.append((op, pending[op]))
    for op in ("$append", "$remove"):
        out.extend((op, value) for value in pending.get(op, []))
    return out
