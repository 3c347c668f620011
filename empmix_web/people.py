"""Profile (People) operations held while the visitor is anonymous.

Profiles belong to users, so operations made before ``identify`` are held in storage
(``empmix_<token>_people``) and sent under the user id right after ``identify``, in the order
they were made. Two consecutive operations of the same kind are merged where that cannot change
the outcome (``$set`` + ``$set``: the later value wins; ``$add`` + ``$add``: summed; ...);
anything else stays a separate step, so ``set a=1``, ``unset a``, ``set_once a=2`` ends with
``a == 2`` as it would have online.
"""

import logging

from . import keys
from .compat import dumps, loads_bounded

try:
    from typing import Any

    from .storage import Storage
except ImportError:
    pass

log = logging.getLogger("empmix_web")

OPERATIONS = ("$set", "$set_once", "$unset", "$add", "$union", "$append", "$remove", "$delete")
MAX_HELD = 100  # held steps; older ones are dropped first (logged)
MAX_HELD_CHARS = 64 * 1024
_MERGEABLE = ("$set", "$set_once", "$unset", "$add", "$union")


def _valid_step(step: object) -> bool:
    if not isinstance(step, list) or len(step) != 2 or step[0] not in OPERATIONS:
        return False
    op, value = step
    if op == "$unset":
        return isinstance(value, list) and all(isinstance(n, str) for n in value)
    return isinstance(value, dict)


def parse_held(data: object) -> "list[list[Any]]":
    """Stored held steps ``[[op, value], ...]``; a malformed store reads as empty."""
    if not isinstance(data, list):
        return []
    return [step for step in data if _valid_step(step)]


def _merge(op: str, into: "Any", value: "Any") -> None:
    if op == "$set":
        for name in value:
            into[name] = value[name]
    elif op == "$set_once":
        for name in value:
            if name not in into:
                into[name] = value[name]
    elif op == "$add":
        for name in value:
            into[name] = into.get(name, 0) + value[name]
    elif op == "$unset":
        for name in value:
            if name not in into:
                into.append(name)
    else:  # $union
        for name in value:
            merged = into.setdefault(name, [])
            for item in value[name]:
                if item not in merged:
                    merged.append(item)


def _copy(op: str, value: "Any") -> "Any":
    if op == "$unset":
        return list(value)
    if op == "$union":
        return {name: list(value[name]) for name in value}
    return dict(value)


def hold(held: "list[list[Any]]", op: str, value: "Any") -> int:
    """Append one operation to ``held`` (in place). Returns how many old steps were dropped."""
    if op not in OPERATIONS or op == "$delete":
        raise ValueError("cannot hold " + op)
    if held and held[-1][0] == op and op in _MERGEABLE:
        _merge(op, held[-1][1], value)
        return 0
    held.append([op, _copy(op, value)])
    dropped = 0
    while len(held) > MAX_HELD:
        held.pop(0)
        dropped += 1
    return dropped


class HeldOperations:
    """The held steps of one token, in storage (``empmix_<token>_people``)."""

    def __init__(self, storage: "Storage", token: str) -> None:
        self._storage = storage
        self.key = keys.key(token, keys.PEOPLE)

    def load(self) -> "list[list[Any]]":
        """The held steps, from storage (malformed: none)."""
        return parse_held(loads_bounded(self._storage.get(self.key), MAX_HELD_CHARS))

    def add(self, op: str, value: "Any") -> None:
        """Hold one more operation; past the caps the oldest steps go first (logged)."""
        held = self.load()
        if hold(held, op, value):
            log.warning("empmix: too many profile operations held before identify(); dropping the oldest")
        text = dumps(held)
        while len(text) > MAX_HELD_CHARS and len(held) > 1:
            held.pop(0)
            text = dumps(held)
        self._storage.set(self.key, text)

    def take(self) -> "list[list[Any]]":
        """The held steps, removed from storage (``identify``: they are sent now)."""
        held = self.load()
        self.clear()
        return held

    def clear(self) -> None:
        """Forget the held steps."""
        self._storage.remove(self.key)
