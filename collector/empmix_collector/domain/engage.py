"""``/engage`` record validation: ``$token``, ``$distinct_id`` and the profile operations.

The operand values follow the same limits as event properties (``values``); what
each operation accepts is decided by ``profiles.check_operand``.

Example::

    result = validate_profile({"$token": "tok", "$distinct_id": "u1", "$set": {"plan": "pro"}}, 0, ctx)
"""

from __future__ import annotations

from typing import Any

from empmix_collector.domain import profiles
from empmix_collector.domain.records import ProfileRecord, Rejection
from empmix_collector.domain.validate import Context, as_id, checked_insert_id, project_of
from empmix_collector.domain.values import Invalid as _Invalid
from empmix_collector.domain.values import clean_object as _clean_object
from empmix_collector.domain.values import safe_text as _safe_text

__all__ = ["MAX_PROFILE_KEYS", "validate_profile", "clean_operation"]

MAX_PROFILE_KEYS = 2000
"""Keys in one profile operation (Mixpanel: 2000 properties per profile)."""


def validate_profile(raw: Any, index: int, ctx: Context, text: str | None = None) -> ProfileRecord | Rejection:
    """Validate one ``/engage`` record: ``$token``, ``$distinct_id`` and its operations.

    Returns:
        A :class:`ProfileRecord` (operations in record order) or a :class:`Rejection`.
    """
    insert_id: str | None = None
    try:
        if type(raw) is not dict:
            raise _Invalid("record is not a JSON object", None)
        insert_id = checked_insert_id(raw.get("$insert_id"))
        project_id = project_of(raw.get("$token", raw.get("token")), ctx, "$token")
        raw_did = raw.get("$distinct_id")
        if raw_did is None or raw_did == "":
            raise _Invalid("missing $distinct_id", "$distinct_id")
        distinct_id = as_id(raw_did, "$distinct_id")
        ops: list[tuple[str, Any]] = []
        for key, value in raw.items():
            if key in profiles.OPERATIONS:
                ops.append((key, clean_operation(key, value)))
        if not ops:
            raise _Invalid("no profile operation (one of " + ", ".join(profiles.OPERATIONS) + ")", None)
    except _Invalid as exc:
        return Rejection(index, exc.reason, exc.field, insert_id)
    return ProfileRecord(index, project_id, distinct_id, ops, insert_id)


def clean_operation(op: str, value: Any) -> Any:
    """One operation's operand, checked and cleaned (shared with ``/groups``)."""
    if op == "$delete":
        return None
    if op == "$unset":
        if type(value) is str:
            value = [value]
        if type(value) is dict:
            value = list(value)
        if type(value) is not list or not all(type(name) is str for name in value):
            raise _Invalid("$unset takes a list of property names", op)
        if len(value) > MAX_PROFILE_KEYS:
            raise _Invalid(f"$unset names {len(value)} properties; the limit is {MAX_PROFILE_KEYS}", op)
        return [_safe_text(name) for name in value]
    if type(value) is not dict:
        raise _Invalid(f"{op} takes an object of properties", op)
    value = _clean_object(value, 0, op, MAX_PROFILE_KEYS)
    for key, item in value.items():
        problem = profiles.check_operand(op, item)
        if problem is not None:
            raise _Invalid(f"{op} {key!r}: {problem}", op)
    return value
