"""Profile operations on a person's properties, and the property merge of two persons.

Pure functions on dicts: no SQL here. ``store`` loads a person's properties,
calls :func:`apply_operations`, and saves the result in the same transaction.

Example::

    props = apply_operations({"n": 1}, [("$add", {"n": 2}), ("$set", {"plan": "pro"})])
    assert props == {"n": 3, "plan": "pro"}
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from empmix_collector.domain.jsoncodec import dumps_json
from empmix_collector.domain.values import beyond_int_range, int_in_range

__all__ = [
    "OPERATIONS",
    "MAX_PROFILE_PROPERTIES",
    "MAX_PROFILE_BYTES",
    "ProfileError",
    "check_operand",
    "apply_operations",
    "encode_profile",
    "merge_properties",
]

OPERATIONS = ("$set", "$set_once", "$add", "$append", "$union", "$remove", "$unset", "$delete")
"""The ``/engage`` operations, in the spelling of the wire format."""
MAX_PROFILE_PROPERTIES = 2000
"""Mixpanel: at most 2000 properties per profile; an update past it is rejected."""
MAX_PROFILE_BYTES = 256 * 1024
"""Serialized size of one profile; an update past it is rejected (keeps ``$append`` bounded)."""


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


def _contains(items: list[Any], value: Any) -> bool:
    # JSON semantics: true is not 1, so compare types as well as values
    return any(type(item) is type(value) and item == value for item in items)


def _apply(props: dict[str, Any], op: str, operand: Any) -> dict[str, Any]:
    if op == "$delete":
        return {}
    if op == "$unset":
        for name in operand:
            props.pop(name, None)
        return props
    for key, value in operand.items():
        current = props.get(key)
        if op == "$set":
            props[key] = value
        elif op == "$set_once":
            if key not in props:
                props[key] = value
        elif op == "$add":
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
            props[key] = total
        elif op == "$append":
            if current is None:
                props[key] = [value]
            elif type(current) is list:
                props[key] = [*current, value]
            else:
                raise ProfileError(f"$append: property {key!r} is not a list", op)
        elif op == "$union":
            if current is None:
                current = []
            elif type(current) is not list:
                raise ProfileError(f"$union: property {key!r} is not a list", op)
            merged = list(current)
            for item in value:
                if not _contains(merged, item):
                    merged.append(item)
            props[key] = merged
        elif op == "$remove":
            if type(current) is list:
                props[key] = [item for item in current if not (type(item) is type(value) and item == value)]
        else:  # pragma: no cover - validation only lets OPERATIONS through
            raise ProfileError(f"unknown operation {op!r}", op)
    return props


def apply_operations(properties: Mapping[str, Any], operations: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Apply operations in order to a copy of ``properties``.

    Semantics: ``$set`` overwrites; ``$set_once`` sets absent keys only; ``$add``
    adds numbers (absent counts as 0; a non-number is an error); ``$append`` adds one
    item to a list (absent becomes ``[item]``); ``$union`` adds the items not yet in
    the list, in order; ``$remove`` drops every equal item from a list (absent: no-op);
    ``$unset`` deletes keys; ``$delete`` clears the profile (events are kept).

    Returns:
        The new properties. The input is never modified, so a failure leaves nothing
        half-applied.

    Raises:
        ProfileError: an operation does not fit the profile, or the profile would
            pass :data:`MAX_PROFILE_PROPERTIES` (:func:`encode_profile` checks the bytes).
    """
    props = dict(properties)
    last = None
    for op, operand in operations:
        props = _apply(props, op, operand)
        last = op
    if len(props) > MAX_PROFILE_PROPERTIES:
        raise ProfileError(
            f"the profile would have {len(props)} properties; the limit is {MAX_PROFILE_PROPERTIES}", last
        )
    return props


def encode_profile(props: Mapping[str, Any], op: str | None = None) -> str:
    """The JSON text a profile is stored as.

    Raises:
        ProfileError: the text would pass :data:`MAX_PROFILE_BYTES`, or the profile holds a
            value JSON cannot write (only a profile stored by an older collector can).
    """
    try:
        text = dumps_json(props)
    except ValueError as exc:
        raise ProfileError(f"the profile cannot be stored: {exc}", op) from None
    if len(text) > MAX_PROFILE_BYTES:
        raise ProfileError(f"the profile would be larger than {MAX_PROFILE_BYTES} bytes", op)
    return text


def merge_properties(target: Mapping[str, Any], source: Mapping[str, Any]) -> dict[str, Any]:
    """Properties of two merged persons: the target (identified side) wins every conflict,
    the source fills the gaps. Counters take the target's value; summing would
    double-count when an SDK replays its ``$add`` updates.
    """
    merged = dict(source)
    merged.update(target)
    return merged
