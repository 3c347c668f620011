"""JSON in and out of the collector: orjson (C) first, the standard library as the exact fallback.

orjson reads a few things differently from ``json``: integers past 64 bits (it turns
them into floats), lone surrogates (it refuses them; they are legal JSON) and the
wording of syntax errors. Those go through ``json``, so what is accepted, and how it
reads back, is what it was with ``json`` alone, only faster::

    value = loads_json('{"a": 1}')
    text = dumps_json({"a": 1})        # '{"a":1}'
    records, texts = split_json('[{"a": 1}, {"b": 2}]')
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

__all__ = ["loads_json", "dumps_json", "split_json", "Parsed"]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_NINETEEN_DIGITS = b"0" * 19


def _may_hold_big_int(text: str | bytes) -> bool:
    """A run of 19 digits (an integer past 64 bits, which orjson would read as a float).

    ``bytes.translate`` and a substring search run in C: about 15x faster than the regular
    expression ``[0-9]{19}`` on a 15 KB body (UTF-8 never puts digit bytes inside a
    multi-byte character, so the bytes have the runs the text has).
    """
    data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    return _NINETEEN_DIGITS in data.translate(_DIGITS_AS_ZERO)


def _fast_loads(text: str | bytes) -> tuple[bool, Any]:
    """(True, value) when orjson reads ``text`` exactly as ``json`` would, else (False, None)."""
    if _may_hold_big_int(text):
        return False, None
    try:
        return True, orjson.loads(text)
    except orjson.JSONDecodeError:  # refused: let the exact decoder accept it or word the error
        return False, None


def loads_json(text: str | bytes) -> Any:
    """Strict JSON: ``NaN``/``Infinity`` refused, deep nesting refused.

    Raises:
        ValueError: for anything that is not plain JSON.
    """
    done, value = _fast_loads(text)
    if done:
        return value
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def dumps_json(value: Any) -> str:
    """Compact JSON text for storage and replies (NaN/Infinity refused).

    orjson writes it unless a value is outside what it takes (integers past 64 bits,
    non-string keys). orjson writes ``NaN``/``Infinity`` as ``null``, so a text holding
    ``null`` is written again by ``json``, which refuses them (rare: decoding already
    refuses ``NaN`` and ``1e400``, and ``$add`` an overflow).

    Raises:
        ValueError: a value is ``NaN`` or infinite.
    """
    try:
        out = orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError
        return _ENCODER.encode(value)
    if b"null" in out:
        return _ENCODER.encode(value)
    return out.decode("utf-8")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e400: valid JSON syntax, but no double holds it
        raise ValueError(f"number {text[:24]} is out of range")
    return value


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)
_WS = re.compile(r"[ \t\n\r]*")
Parsed = tuple[Any, "list[str] | None"]
"""(value, each record's JSON text or ``None``)."""


def split_json(text: str) -> Parsed:
    """``json.loads(text)``, plus each record's own JSON text when ``text`` is an array
    (or one object). The texts let validation store a record's properties without
    serializing them again; they are ``None`` for other values.

    With the fast decoder the texts are ``None``: serializing the properties again in
    C costs less than slicing them out in Python.

    Raises:
        ValueError: as ``loads_json``.
    """
    done, fast = _fast_loads(text)
    if done:
        return fast, None
    try:
        end = len(text)
        idx = _WS.match(text, 0).end()  # type: ignore[union-attr]
        if idx >= end or text[idx] != "[":
            value = _DECODER.decode(text)
            return value, ([text.strip()] if type(value) is dict else None)
        values: list[Any] = []
        texts: list[str] = []
        idx = _WS.match(text, idx + 1).end()  # type: ignore[union-attr]
        if idx < end and text[idx] == "]":
            idx += 1
        else:
            while True:
                value, stop = _DECODER.raw_decode(text, idx)
                values.append(value)
                texts.append(text[idx:stop])
                idx = _WS.match(text, stop).end()  # type: ignore[union-attr]
                if idx < end and text[idx] == ",":
                    idx = _WS.match(text, idx + 1).end()  # type: ignore[union-attr]
                    continue
                if idx < end and text[idx] == "]":
                    idx += 1
                    break
                raise ValueError(f"expected ',' or ']' at character {idx}")
        if _WS.match(text, idx).end() != end:  # type: ignore[union-attr]
            raise ValueError(f"extra data at character {idx}")
        return values, texts
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
