"""Profile operations on a person's properties, and the property merge of two persons.

Pure functions on dicts: no SQL here. ``store`` loads a person's properties,
calls :func:`apply_operations`, and saves the result in the same transaction.

Example::

    props = apply_operations({"n": 1}, [("$add", {"n": 2}), ("$set", {"plan": "pro"})])
    assert props == {"n": 3, "plan": "pro"}
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from empmix_collector.domain.jsoncodec import dumps_json, loads_json
from empmix_collector.domain.values import beyond_int_range, int_in_range

__all__ = [
    "OPERATIONS",
    "MAX_PROFILE_PROPERTIES",
    "MAX_PROFILE_BYTES",
    "ProfileError",
    "check_operand",
    "MAX_PROFILE_LIST_ITEMS",
    "MAX_PROFILE_UPDATES",
    "MAX_PROFILE_WORK",
    "ProfileState",
    "item_key",
    "apply_operations",
    "merge_properties",
]

OPERATIONS = ("$set", "$set_once", "$add", "$append", "$union", "$remove", "$unset", "$delete")
"""The ``/engage`` operations, in the spelling of the wire format."""
MAX_PROFILE_PROPERTIES = 2000
"""Mixpanel: at most 2000 properties per profile; an update past it is rejected."""
MAX_PROFILE_BYTES = 256 * 1024
"""Serialized size of one profile; an update past it is rejected (keeps ``$append`` bounded)."""
MAX_PROFILE_LIST_ITEMS = 1000
"""Items of one list property; an ``$append`` or ``$union`` past it is rejected."""
MAX_PROFILE_UPDATES = 2000
"""Property updates (one per key of an operation, one per ``$delete``) on one profile in one
request; a record past it is rejected."""
MAX_PROFILE_WORK = 50_000
"""Cost of the profile records of one request: one per property updated, one per item of a
``$union`` operand, plus one per 8 items of a list that an ``$append``, ``$union`` or
``$remove`` goes through. A record past it is rejected (``store.profile_writes``)."""
_ITEMS_PER_UNIT = 8


class ProfileError(ValueError):
    """An operation that cannot apply to the current profile (the record is rejected).

    ``op`` names the operation that failed (``failed_records[].field``), when one did.
    """

    def __init__(self, reason: str, op: str | None = None) -> None:
        super().__init__(reason)
        self.op = op


def _is_number(value: Any) -> bool:
    return (type(value) is int) or (type(value) is float and math.isfinite(value))


def check_operand(op: str, value: Any) -> str | None:
    """Check one property value of an operation, before any profile is touched.

    Returns:
        ``None`` when fine, else the reason (``$add`` takes numbers, ``$union`` lists).
    """
    if op == "$add" and not _is_number(value):
        return "$add takes numbers only"
    if op == "$union" and type(value) is not list:
        return "$union takes a list"
    if beyond_int_range(value):
        return "an integer beyond ±2^63 (no store holds it as a number)"
    return None


_MISSING: Any = object()


def item_key(item: Any) -> Any:
    """What makes two list items equal, hashable: JSON semantics, so ``true`` is not ``1``
    and ``1`` is not ``1.0`` (type and value); lists and objects by their sorted JSON text."""
    kind = type(item)
    if kind is list or kind is dict:
        try:
            return (kind, orjson.dumps(item, option=orjson.OPT_SORT_KEYS))
        except TypeError:  # an integer past 64 bits, stored by an older collector
            return (kind, json.dumps(item, sort_keys=True).encode())
    return (kind, item)


def _text_size(value: Any) -> int:
    try:
        return len(dumps_json(value))
    except ValueError as exc:  # only a value stored by an older collector can be unwritable
        raise ProfileError(f"the profile holds a value that cannot be stored: {exc}") from None


class ProfileState:
    """A profile's properties while one request's operations apply to it, in place.

    Each operation costs what it touches, not the profile's size: the serialized size is
    kept up to date per property (so the 256 KiB check needs no serialisation), ``$union``
    and ``$remove`` look items up in a set per list, and the profile is serialized once,
    by :meth:`encode`, when the request's records are done. A record either applies whole
    or not at all (:meth:`apply` undoes its own changes when it fails, :meth:`revert`
    undoes the last record).

    Args:
        props: the current properties (owned by the state from now on).
        text_length: ``len`` of their stored JSON text, when known (saves serialising them).
    """

    def __init__(self, props: dict[str, Any], text_length: int | None = None) -> None:
        self.props = props
        total = _text_size(props) if text_length is None else text_length
        self._body = total - 2 - max(len(props) - 1, 0)  # sum of the "key":value entries
        self._sizes: dict[str, int] = {}  # entry sizes, computed when a key is first touched
        self._index: dict[str, set[Any]] = {}  # item keys of list properties
        self.updates = 0
        """Property updates applied in this request (see ``MAX_PROFILE_UPDATES``)."""
        self._undo: tuple[dict[str, Any] | None, dict[str, Any], int, int] | None = None

    @classmethod
    def from_text(cls, text: str) -> ProfileState:
        props = loads_json(text)
        return cls(props if type(props) is dict else {}, len(text) if type(props) is dict else None)

    @property
    def text_length(self) -> int:
        """``len`` of the JSON text :meth:`encode` will return."""
        return 2 + self._body + max(len(self.props) - 1, 0)

    def encode(self) -> str:
        """The JSON text the profile is stored as."""
        return dumps_json(self.props)

    # -- one record ----------------------------------------------------------------------------

    def apply(self, operations: Sequence[tuple[str, Any]]) -> int:
        """Apply one record's operations; returns their cost (see ``MAX_PROFILE_WORK``).

        Raises:
            ProfileError: an operation does not fit the profile, or the profile would pass
                :data:`MAX_PROFILE_PROPERTIES`, :data:`MAX_PROFILE_BYTES`,
                :data:`MAX_PROFILE_LIST_ITEMS` or :data:`MAX_PROFILE_UPDATES`. Nothing of the
                record is then applied.
        """
        count = sum(1 if op == "$delete" else len(operand) for op, operand in operations)
        last = operations[-1][0] if operations else None
        if self.updates + count > MAX_PROFILE_UPDATES:
            raise ProfileError(f"more than {MAX_PROFILE_UPDATES} property updates on one profile in one request", last)
        snapshot = None
        if any(op == "$delete" for op, _ in operations):
            snapshot = dict(self.props)
        undo: dict[str, Any] = {}
        self._undo = (snapshot, undo, self._body, self.updates)
        cost = 0
        try:
            for op, operand in operations:
                cost += self._operation(op, operand, undo)
            if len(self.props) > MAX_PROFILE_PROPERTIES:
                raise ProfileError(
                    f"the profile would have {len(self.props)} properties; the limit is {MAX_PROFILE_PROPERTIES}", last
                )
            if self.text_length > MAX_PROFILE_BYTES:
                raise ProfileError(f"the profile would be larger than {MAX_PROFILE_BYTES} bytes", last)
        except ProfileError:
            self.revert()
            raise
        self.updates += count
        return cost

    def revert(self) -> None:
        """Undo the last :meth:`apply` (a replayed record, or one that failed)."""
        if self._undo is None:
            return
        snapshot, undo, body, updates = self._undo
        self._undo = None
        if snapshot is not None:
            self.props = snapshot
            self._sizes.clear()
            self._index.clear()
        else:
            for key, old in undo.items():
                if old is _MISSING:
                    self.props.pop(key, None)
                else:
                    self.props[key] = old
                self._sizes.pop(key, None)
                self._index.pop(key, None)
        self._body = body
        self.updates = updates

    # -- one operation ---------------------------------------------------------------------------

    def _size(self, key: str) -> int:
        size = self._sizes.get(key)
        if size is None:
            value = self.props.get(key, _MISSING)
            size = 0 if value is _MISSING else _text_size(key) + 1 + _text_size(value)
            self._sizes[key] = size
        return size

    def _put(
        self, key: str, value: Any, undo: dict[str, Any], *, size: int | None = None, keep_index: bool = False
    ) -> None:
        """Set (or, with ``_MISSING``, remove) one property, keeping the sizes right
        (``size``: the new entry's, when the caller knows it)."""
        if key not in undo:
            undo[key] = self.props.get(key, _MISSING)
        old = self._size(key)
        if value is _MISSING:
            self.props.pop(key, None)
            new = 0
        else:
            self.props[key] = value
            new = _text_size(key) + 1 + _text_size(value) if size is None else size
        self._sizes[key] = new
        self._body += new - old
        if not keep_index:
            self._index.pop(key, None)

    def _items(self, key: str, items: list[Any]) -> set[Any]:
        index = self._index.get(key)
        if index is None:
            index = {item_key(item) for item in items}
            self._index[key] = index
        return index

    def _operation(self, op: str, operand: Any, undo: dict[str, Any]) -> int:
        props = self.props
        if op == "$delete":  # apply() took a snapshot to revert to
            props.clear()
            self._sizes.clear()
            self._index.clear()
            self._body = 0
            return 1
        if op == "$unset":
            for name in operand:
                if name in props:
                    self._put(name, _MISSING, undo)
            return len(operand)
        cost = 0
        for key, value in operand.items():
            current = props.get(key)
            cost += 1
            if op == "$set":
                self._put(key, value, undo)
            elif op == "$set_once":
                if key not in props:
                    self._put(key, value, undo)
            elif op == "$add":
                self._put(key, _added(key, current, value, op), undo)
            elif op in ("$append", "$union"):
                if current is None:
                    current = []
                elif type(current) is not list:
                    raise ProfileError(f"{op}: property {key!r} is not a list", op)
                cost += len(current) // _ITEMS_PER_UNIT + (len(value) if op == "$union" else 0)
                added = [value] if op == "$append" else _new_items(self._items(key, current), value)
                if not added:
                    if props.get(key) is None:  # absent or null: $union creates the (empty) list
                        self._put(key, [], undo, keep_index=True)
                    continue
                if len(current) + len(added) > MAX_PROFILE_LIST_ITEMS:
                    raise ProfileError(f"{op}: list {key!r} would pass {MAX_PROFILE_LIST_ITEMS} items", op)
                # the list's text grows by each item and a comma (no comma before a first item)
                grown = sum(_text_size(item) + 1 for item in added) - (0 if current else 1)
                was_list = type(props.get(key)) is list  # else absent or null: the entry is new
                size = self._size(key) + grown if was_list else _text_size(key) + 3 + grown
                self._put(key, [*current, *added], undo, size=size, keep_index=True)
                index = self._index.get(key)
                if index is not None:
                    index.update(item_key(item) for item in added)
            elif op == "$remove":
                if type(current) is not list:
                    continue
                index = self._items(key, current)
                gone = item_key(value)
                if gone not in index:
                    continue
                cost += len(current) // _ITEMS_PER_UNIT
                self._put(key, _without(current, value, gone), undo, keep_index=True)
                index.discard(gone)
            else:  # pragma: no cover - validation only lets OPERATIONS through
                raise ProfileError(f"unknown operation {op!r}", op)
        return cost


def _without(items: list[Any], value: Any, value_key: Any) -> list[Any]:
    """``items`` without any item equal to ``value`` (JSON semantics, as :func:`item_key`).

    A scalar is found by ``list.index`` (a C loop: a Python loop over 1000 items took about 1 ms,
    which 2,000 ``$remove`` records made a 250 ms writer hold), then its type is checked, since
    Python's ``==`` makes ``1``, ``1.0`` and ``True`` equal where JSON does not."""
    kind = type(value)
    if kind is list or kind is dict:
        return [item for item in items if item_key(item) != value_key]
    out: list[Any] = []
    start = 0
    while True:
        try:
            at = items.index(value, start)
        except ValueError:
            out.extend(items[start:])
            return out
        out.extend(items[start:at])
        if type(items[at]) is not kind:
            out.append(items[at])  # equal in Python only (1 and True): kept
        start = at + 1


def _new_items(index: set[Any], items: list[Any]) -> list[Any]:
    """The items of a ``$union`` operand that the list (``index``) lacks, each once, in order."""
    fresh: set[Any] = set()
    out = []
    for item in items:
        item_id = item_key(item)
        if item_id not in index and item_id not in fresh:
            fresh.add(item_id)
            out.append(item)
    return out


def _added(key: str, current: Any, value: Any, op: str) -> Any:
    if current is None:
        current = 0
    elif not _is_number(current):
        raise ProfileError(f"$add: property {key!r} holds a {type(current).__name__}, not a number", op)
    try:
        total = current + value
    except OverflowError:  # an integer past the double range plus a float
        total = math.inf
    if not (int_in_range(total) if type(total) is int else math.isfinite(total)):
        raise ProfileError(f"$add: property {key!r} would overflow", op)
    return total


def apply_operations(properties: Mapping[str, Any], operations: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Apply operations in order to a copy of ``properties`` (see :class:`ProfileState`).

    Semantics: ``$set`` overwrites; ``$set_once`` sets absent keys only; ``$add``
    adds numbers (absent counts as 0; a non-number is an error); ``$append`` adds one
    item to a list (absent becomes ``[item]``); ``$union`` adds the items not yet in
    the list, in order; ``$remove`` drops every equal item from a list (absent: no-op);
    ``$unset`` deletes keys; ``$delete`` clears the profile (events are kept).

    Raises:
        ProfileError: as :meth:`ProfileState.apply`; ``properties`` is never modified.
    """
    state = ProfileState(dict(properties))
    state.apply(list(operations))
    return state.props


def merge_properties(target: Mapping[str, Any], source: Mapping[str, Any]) -> dict[str, Any]:
    """Properties of two merged persons: the target (identified side) wins every conflict,
    the source fills the gaps. Counters take the target's value; summing would
    double-count when an SDK replays its ``$add`` updates.
    """
    merged = dict(source)
    merged.update(target)
    return merged
