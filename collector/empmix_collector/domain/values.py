"""Property values: the size limits and the in-place check every record goes through.

Strings longer than :data:`MAX_STRING_LENGTH` are cut; everything else that breaks a
limit raises :class:`Invalid` with the reason. Lone surrogates (legal in JSON
escapes, not in UTF-8) become U+FFFD so that storage and replies never fail.

Example::

    props = clean_properties({"title": "x" * 300})
    assert len(props["title"]) == 255
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = [
    "MAX_PROPERTIES",
    "MAX_STRING_LENGTH",
    "MAX_DEPTH",
    "MAX_LIST_LENGTH",
    "MAX_KEY_LENGTH",
    "MIN_INT",
    "MAX_INT",
    "Invalid",
    "int_in_range",
    "beyond_int_range",
    "safe_text",
    "clean_value",
    "clean_object",
    "clean_properties",
]

MAX_PROPERTIES = 255
"""Top-level properties per event (and keys per nested object)."""
MAX_STRING_LENGTH = 255
"""Longer string values are cut to this many characters (not rejected)."""
MAX_DEPTH = 3
"""Objects/lists nested inside a property value, at most this many levels."""
MAX_LIST_LENGTH = 255
MAX_KEY_LENGTH = 255
MIN_INT = -(2**63)
MAX_INT = 2**63 - 1
"""Integers the stores hold as numbers (SQLite and PostgreSQL ``bigint``): ``time``, ``$add``
operands, integer ids and every number in a profile operation stay within these."""


_SURROGATE = re.compile("[\ud800-\udfff]")


class Invalid(Exception):
    """A value or record that breaks a limit: ``reason`` (and ``field``) go back to the client."""

    def __init__(self, reason: str, field_name: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field_name


def safe_text(text: str) -> str:
    """Replace lone surrogates (valid in JSON escapes, not in UTF-8)."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)


def int_in_range(value: int) -> bool:
    """``value`` fits a signed 64-bit integer."""
    return MIN_INT <= value <= MAX_INT


def beyond_int_range(value: Any) -> bool:
    """An integer past ±2^63 anywhere in ``value`` (a profile operand). Profiles refuse them,
    so that no stored profile holds a number a later ``$add`` or serialisation cannot take."""
    kind = type(value)
    if kind is int:
        return not MIN_INT <= value <= MAX_INT
    if kind is list:
        return any(beyond_int_range(item) for item in value)
    if kind is dict:
        return any(beyond_int_range(item) for item in value.values())
    return False


def clean_value(value: Any, depth: int, name: str) -> Any:
    """Check one property value against the limits; returns it (strings cut)."""
    kind = type(value)
    if kind is str:
        if len(value) > MAX_STRING_LENGTH:
            value = value[:MAX_STRING_LENGTH]
        return safe_text(value)
    if kind is int or kind is bool or value is None:
        return value
    if kind is float:
        if not math.isfinite(value):
            raise Invalid(f"property {name!r} is not a finite number", name)
        return value
    if depth >= MAX_DEPTH:
        raise Invalid(f"property {name!r} is nested deeper than {MAX_DEPTH} levels", name)
    if kind is list:
        if len(value) > MAX_LIST_LENGTH:
            raise Invalid(f"property {name!r} is a list of {len(value)} items; the limit is {MAX_LIST_LENGTH}", name)
        return [clean_value(item, depth + 1, name) for item in value]
    if kind is dict:
        return clean_object(value, depth + 1, name, MAX_PROPERTIES)
    raise Invalid(f"property {name!r} has an unsupported type", name)  # pragma: no cover - JSON has no others


def clean_object(obj: dict[str, Any], depth: int, name: str, max_keys: int) -> dict[str, Any]:
    """Check an object's keys and values in place; the flat common case stays inline."""
    if len(obj) > max_keys:
        raise Invalid(f"{name!r} has {len(obj)} properties; the limit is {max_keys}", name)
    rebuilt = False
    for key, value in obj.items():
        if len(key) > MAX_KEY_LENGTH:
            raise Invalid(f"property name {key[:40]!r}... is longer than {MAX_KEY_LENGTH} characters", name)
        if not key.isascii() and safe_text(key) is not key:
            rebuilt = True
        kind = type(value)
        if kind is str:
            if len(value) > MAX_STRING_LENGTH or not value.isascii():
                obj[key] = safe_text(value[:MAX_STRING_LENGTH])
        elif kind is int or kind is bool or value is None:
            pass
        else:
            cleaned = clean_value(value, depth, key if depth == 0 else name)
            if cleaned is not value:
                obj[key] = cleaned
    if rebuilt:
        obj = {safe_text(k): v for k, v in obj.items()}
    return obj


def clean_properties(props: dict[str, Any], max_keys: int = MAX_PROPERTIES) -> dict[str, Any]:
    """Validate a properties object in place (strings cut to 255 characters).

    Raises:
        ValueError: the reason, when a limit is broken.
    """
    try:
        return clean_object(props, 0, "properties", max_keys)
    except Invalid as exc:
        raise ValueError(exc.reason) from None
