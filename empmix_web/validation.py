"""Argument checks for the public API.

A programming error (wrong type, placeholder id, unserialisable property) raises ``TypeError`` or
``ValueError`` naming the argument and the rule, before any state changes or anything is queued.
"""

from __future__ import annotations

import json
import math
from typing import Any, Mapping

MAX_ID_LENGTH = 255
DEVICE_PREFIX = "$device:"

# Values that are not real ids: what code writes when it has no id (PostHog's illegal list and
# Mixpanel's /import deny list, see notes §2.6 rule 3). Compared case-insensitively after
# stripping white space and one pair of quotes.
_PLACEHOLDER_IDS = frozenset(
    s.lower()
    for s in (
        "anonymous", "anon", "guest", "distinctid", "distinct_id", "id", "not_authenticated",
        "email", "undefined", "null", "none", "nil", "<nil>", "nan", "n/a", "na", "unknown",
        "true", "false", "0", "-1", "[]", "{}", "[object object]",
        "00000000-0000-0000-0000-000000000000",
    )
)


def is_placeholder_id(value: str) -> bool:
    """True for ids that stand for "no id" (``'undefined'``, ``'null'``, ``'0'``, ...)."""
    text = value.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1].strip()
    return not text or text.lower() in _PLACEHOLDER_IDS


def check_user_id(value: Any, name: str = "user_id") -> str:
    """Return ``value`` as a valid user id or raise naming the rule it breaks."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(f"{name} must be a str (or an int), got {type(value).__name__}")
    text = str(value)
    if not text.strip():
        raise ValueError(f"{name} must be a non-empty string")
    if len(text) > MAX_ID_LENGTH:
        raise ValueError(f"{name} must be at most {MAX_ID_LENGTH} characters, got {len(text)}")
    if text.startswith(DEVICE_PREFIX):
        raise ValueError(f"{name} must not start with {DEVICE_PREFIX!r} (that is an anonymous id)")
    if "\x00" in text:
        raise ValueError(f"{name} must not contain NUL characters")
    if is_placeholder_id(text):
        raise ValueError(f"{name} {text!r} is a placeholder, not a real id (see the illegal-id list)")
    return text


def check_event_name(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"event must be a str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError("event must be a non-empty string")
    return value


def _check_json(value: Any, where: str, depth: int = 0) -> None:
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where} must be a finite number, got {value!r}")
        return
    if depth > 16:
        raise ValueError(f"{where} is nested too deeply")
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_json(item, f"{where}[{i}]", depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} has a non-str key {key!r}")
            _check_json(item, f"{where}[{key!r}]", depth + 1)
        return
    raise TypeError(f"{where} is not JSON-serialisable ({type(value).__name__})")


def check_properties(value: Any, name: str = "properties", deep: bool = True) -> dict[str, Any]:
    """A dict of str keys to JSON values (None means empty). Returns a shallow copy.

    ``deep=False`` checks only the container; the caller then serialises with :func:`encode`,
    which walks the values only when serialisation fails (the hot path of ``track``).
    """
    if value is None:
        return {}
    if type(value) is not dict and not isinstance(value, Mapping):  # the ABC check is slow
        raise TypeError(f"{name} must be a dict, got {type(value).__name__}")
    if deep:
        _check_json(dict(value), name)
    return dict(value)


def check_number(value: Any, name: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


def check_names(value: Any, name: str) -> list[str]:
    """A property name or a list of them."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise TypeError(f"{name} must be a str or a list of str")
    return list(names)


_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def dumps(value: Any) -> str:
    """Compact JSON, the wire and storage encoding."""
    return _encoder.encode(value)


def encode(value: Any, user_part: Any, name: str) -> str:
    """Serialise ``value``; if that fails, raise naming the offending entry of ``user_part``."""
    try:
        return _encoder.encode(value)
    except (TypeError, ValueError):
        _check_json(user_part, name)
        raise
