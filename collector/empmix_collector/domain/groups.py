"""``/groups`` record validation, and the group ids an event belongs to.

Group profiles follow Mixpanel's group analytics: a record
``{"$token", "$group_key", "$group_id", "$insert_id", "<op>": ...}`` applies one of six
operations to the profile of ``(token, group_key, group_id)``, with the same operand
limits as ``/engage`` (``engage``, ``profiles``). An event belongs to every id listed in
its property ``group_key`` (the SDK sends a list, ``"company": ["acme"]``; a scalar
works too); ids are compared as text, so ``42`` and ``"42"`` are one group.

Example::

    record = validate_group({"$token": "tok", "$group_key": "company", "$group_id": "acme",
                             "$set": {"name": "Acme"}}, 0, ctx)
    group_ids({"company": ["acme", 42]}, "company")   # ["acme", "42"]
"""

from __future__ import annotations

from typing import Any

from empmix_collector.domain.engage import clean_operation
from empmix_collector.domain.records import GroupRecord, Rejection
from empmix_collector.domain.validate import Context, as_id, checked_insert_id, project_of
from empmix_collector.domain.values import Invalid as _Invalid
from empmix_collector.domain.values import int_in_range
from empmix_collector.domain.values import safe_text as _safe_text
from empmix_web.ids import MAX_ID_LENGTH

__all__ = ["GROUP_OPERATIONS", "MAX_GROUP_KEY_LENGTH", "validate_group", "group_ids"]

GROUP_OPERATIONS = ("$set", "$set_once", "$unset", "$union", "$remove", "$delete")
"""What a group profile takes (Mixpanel's groups API: no ``$add``/``$append``)."""
MAX_GROUP_KEY_LENGTH = 255
_PROFILE_ONLY = ("$add", "$append")


def validate_group(raw: Any, index: int, ctx: Context, text: str | None = None) -> GroupRecord | Rejection:
    """Validate one ``/groups`` record: ``$token``, ``$group_key``, ``$group_id`` and its operations.

    Returns:
        A :class:`GroupRecord` (operations in record order) or a :class:`Rejection`.
    """
    insert_id: str | None = None
    try:
        if type(raw) is not dict:
            raise _Invalid("record is not a JSON object", None)
        insert_id = checked_insert_id(raw.get("$insert_id"))
        project_id = project_of(raw.get("$token", raw.get("token")), ctx, "$token")
        key = raw.get("$group_key")
        if type(key) is not str or not key.strip():
            raise _Invalid("$group_key must be a non-empty string", "$group_key")
        if len(key) > MAX_GROUP_KEY_LENGTH:
            raise _Invalid(f"$group_key is longer than {MAX_GROUP_KEY_LENGTH} characters", "$group_key")
        raw_id = raw.get("$group_id")
        if raw_id is None or type(raw_id) is bool or (type(raw_id) is str and not raw_id.strip()):
            raise _Invalid("$group_id must be a non-empty string or an integer", "$group_id")
        group_id = as_id(raw_id, "$group_id")
        ops: list[tuple[str, Any]] = []
        for name, value in raw.items():
            if name in GROUP_OPERATIONS:
                ops.append((name, clean_operation(name, value)))
            elif name in _PROFILE_ONLY:
                raise _Invalid(f"{name} is not a group operation (one of {', '.join(GROUP_OPERATIONS)})", name)
        if not ops:
            raise _Invalid("no group operation (one of " + ", ".join(GROUP_OPERATIONS) + ")", None)
    except _Invalid as exc:
        return Rejection(index, exc.reason, exc.field, insert_id)
    return GroupRecord(index, project_id, _safe_text(key), group_id, ops, insert_id)


def group_ids(properties: Any, group_key: str) -> list[str]:
    """The group ids an event's ``properties`` name under ``group_key``, as text, each once.

    A list or a scalar; strings (non-blank, at most 255 characters) and integers count,
    anything else (``true``, objects, nested lists) is ignored.
    """
    if type(properties) is not dict:
        return []
    value = properties.get(group_key)
    items: list[Any] = value if type(value) is list else [value]
    out: list[str] = []
    for item in items:
        kind = type(item)
        if kind is str:
            if not item.strip() or len(item) > MAX_ID_LENGTH:
                continue
            text = item
        elif kind is int and int_in_range(item):
            text = str(item)
        else:
            continue
        if text not in out:
            out.append(text)
    return out
