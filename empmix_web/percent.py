"""Percent-encoding (``encodeURIComponent`` semantics) without importing ``urllib.parse``.

``urllib.parse`` costs tens of milliseconds to import in Pyodide (it pulls in ``ipaddress``),
which every page would pay at start-up; these two functions are all the SDK needs of it.
"""

from __future__ import annotations

import re

_UNRESERVED = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.!~*'()"
# one entry per byte value: the byte itself if unreserved, else %XX (str.translate runs in C)
_TABLE = {i: (chr(i) if i in _UNRESERVED else f"%{i:02X}") for i in range(256)}
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")


def quote(text: str) -> str:
    """Encode every character outside ``A-Z a-z 0-9 - _ . ! ~ * ' ( )`` as UTF-8 ``%XX``."""
    if not text.isascii():
        text = text.encode("utf-8").decode("latin-1")  # one char per UTF-8 byte
    return text.translate(_TABLE)


def unquote(text: str) -> str:
    """Decode ``%XX`` escapes (UTF-8); malformed escapes are kept as they are."""
    if "%" not in text:
        return text
    raw = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    try:
        return raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return raw
