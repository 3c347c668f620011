"""Argument checks for the public API.

A programming error (wrong type, placeholder id, unserialisable property) raises ``TypeError`` or
``ValueError`` naming the argument and the rule, before any state changes or anything is queued.
"""

from .compat import CHECK_BEFORE_DUMPS
from .ids import MAX_ID_LENGTH, user_id_problem

try:
    from typing import Any
except ImportError:
    pass

MAX_DEPTH = 16
_INF = float("inf")


def _type_name(value: "Any") -> str:
    return type(value).__name__


def _is_bool(value: "Any") -> bool:
    return value is True or value is False


def check_user_id(value: "Any", name: str = "user_id") -> str:
    """Return ``value`` as a valid user id or raise naming the rule it breaks (``ids``)."""
    if _is_bool(value) or not isinstance(value, (str, int)):
        raise TypeError(name + " must be a str (or an int), got " + _type_name(value))
    text = str(value)
    if len(text) > MAX_ID_LENGTH:
        raise ValueError(name + " must be at most " + str(MAX_ID_LENGTH) + " characters, got " + str(len(text)))
    problem = user_id_problem(text)
    if problem is not None:
        raise ValueError(name + " " + repr(text[:80]) + " is not a real id: " + problem)
    return text


def check_str(value: "Any", name: str) -> str:
    """``value`` when it is a str, else TypeError naming ``name``."""
    if not isinstance(value, str):
        raise TypeError(name + " must be a str, got " + _type_name(value))
    return value


def check_event_name(value: "Any") -> str:
    """``value`` as an event name (a non-blank str), else TypeError/ValueError naming ``event``."""
    check_str(value, "event")
    if not value.strip():
        raise ValueError("event must be a non-empty string")
    text: str = value
    return text


def _finite(value: float) -> bool:
    return value == value and value != _INF and value != -_INF


# JSON scalars checked by type alone; a dict: a hash lookup, where MicroPython scans a tuple
_SCALARS = {str: True, int: True, bool: True, type(None): True}


def _problem(value: "Any", depth: int) -> "tuple[str, Any, str] | None":
    """None when ``value`` is a JSON value the wire can carry, else (path, error, message).
    The path is built only on the way out of an error: checking costs no strings."""
    kind = type(value)
    if kind in _SCALARS:
        return None
    if kind is float:
        return None if _finite(value) else ("", ValueError, "must be a finite number, got " + repr(value))
    if isinstance(value, (str, int)):  # subclasses
        return None
    if isinstance(value, float):
        return None if _finite(value) else ("", ValueError, "must be a finite number, got " + repr(value))
    if depth > MAX_DEPTH:
        return ("", ValueError, "is nested too deeply")
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            kind = type(item)  # flat values inline: no call per item
            if kind not in _SCALARS and not (kind is float and _finite(item)):
                found = _problem(item, depth + 1)
                if found is not None:
                    return ("[" + str(i) + "]" + found[0], found[1], found[2])
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if type(key) is not str and not isinstance(key, str):
                return ("", TypeError, "has a non-str key " + repr(key))
            kind = type(item)  # as above: this loop is track()'s check on MicroPython
            if kind not in _SCALARS and not (kind is float and _finite(item)):
                found = _problem(item, depth + 1)
                if found is not None:
                    return ("[" + repr(key) + "]" + found[0], found[1], found[2])
        return None
    return ("", TypeError, "is not JSON-serialisable (" + _type_name(value) + ")")


def check_json(value: "Any", where: str, depth: int = 0) -> None:
    """Raise naming ``where`` unless ``value`` is a JSON value the wire can carry."""
    found = _problem(value, depth)
    if found is not None:
        raise found[1](where + found[0] + " " + found[2])


def check_properties(value: "Any", name: str = "properties", deep: bool = True, copy: bool = True) -> "dict[str, Any]":
    """A dict of str keys to JSON values (None means empty). Returns a shallow copy (with
    ``copy=False``, ``value`` itself: for callers that only read it before they return).

    ``deep=False`` (the hot path of ``track``) checks only the container on CPython, where the
    caller's serialiser refuses bad values and ``check_json`` then names the culprit.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(name + " must be a dict, got " + _type_name(value))
    if deep or CHECK_BEFORE_DUMPS:
        check_json(value, name)
    return dict(value) if copy else value


def check_list_values(value: "Any", name: str = "props") -> "dict[str, list[Any]]":
    """``$union``'s argument: a dict whose every value is a list (tuples become lists)."""
    values = check_properties(value, name)
    for key in values:
        if not isinstance(values[key], (list, tuple)):
            raise TypeError(name + "[" + repr(key) + "] must be a list")
        values[key] = list(values[key])
    return values


def check_number(value: "Any", name: str) -> "int | float":
    """``value`` as a finite int or float (not a bool), else TypeError/ValueError naming ``name``."""
    if _is_bool(value) or not isinstance(value, (int, float)):
        raise TypeError(name + " must be a number, got " + _type_name(value))
    if isinstance(value, float) and not _finite(value):
        raise ValueError(name + " must be finite, got " + repr(value))
    return value


def check_names(value: "Any", name: str) -> "list[str]":
    """A property name or a list of them."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise TypeError(name + " must be a str or a list of str")
    return list(names)


def check_int(value: "Any", name: str, minimum: int = 1) -> int:
    """``value`` as an int of at least ``minimum`` (not a bool), else TypeError/ValueError naming ``name``."""
    if _is_bool(value) or not isinstance(value, int):
        raise TypeError(name + " must be an int, got " + _type_name(value))
    if value < minimum:
        raise ValueError(name + " must be at least " + str(minimum))
    return value


def is_token(value: "Any") -> bool:
    """1-128 characters of ``A-Z a-z 0-9 _ . -``."""
    if not isinstance(value, str) or not 0 < len(value) <= 128:
        return False
    for ch in value:
        if not ("a" <= ch <= "z" or "A" <= ch <= "Z" or "0" <= ch <= "9" or ch in "_.-"):
            return False
    return True


def check_signature(value: "Any") -> "str | None":
    """An identity signature: None, or the hex HMAC-SHA256 (64 hex digits) the site's server made."""
    if value is None:
        return None
    check_str(value, "signature")
    if len(value) != 64 or not all(ch in "0123456789abcdefABCDEF" for ch in value):
        raise ValueError("signature must be 64 hex digits (HMAC-SHA256 of the user id), got " + repr(value[:80]))
    return str(value).lower()
