"""Percent-encoding with ``encodeURIComponent`` semantics, in the subset MicroPython runs.

No ``urllib.parse`` (tens of milliseconds to import in Pyodide, absent in MicroPython), no
``str.translate``/``re``: ASCII text, the common case (JSON the SDK wrote), is escaped with one
``str.replace`` per special character present, which runs at C speed on both interpreters.
"""

# printable ASCII that encodeURIComponent escapes; "%" first so later escapes are not re-escaped
_SPECIAL = "%" + ' "#$&+,/:;<=>?@[\\]^`{|}'
_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.!~*'()"
_HEX = "0123456789ABCDEF"


def _escape_byte(b: int) -> str:
    return "%" + _HEX[b >> 4] + _HEX[b & 15]


def quote(text: str) -> str:
    """Encode every character outside ``A-Z a-z 0-9 - _ . ! ~ * ' ( )`` as UTF-8 ``%XX``."""
    data = text.encode("utf-8")
    if len(data) != len(text) or _has_control(text):
        return "".join(chr(b) if chr(b) in _UNRESERVED else _escape_byte(b) for b in data)
    for ch in _SPECIAL:
        if ch in text:
            text = text.replace(ch, _escape_byte(ord(ch)))
    return text


def _has_control(text: str) -> bool:
    # JSON the SDK writes has none; other text (cookie values) rarely does
    return "\x7f" in text or min(text) < " " if text else False


def unquote(text: str) -> str:
    """Decode ``%XX`` escapes as UTF-8; text with a malformed escape is kept as it is."""
    if "%" not in text:
        return text
    parts = text.split("%")
    out = bytearray(parts[0].encode("utf-8"))
    for part in parts[1:]:
        code = part[:2]
        if len(code) != 2 or code[0] not in "0123456789abcdefABCDEF" or code[1] not in "0123456789abcdefABCDEF":
            return text
        out.append(int(code, 16))
        out.extend(part[2:].encode("utf-8"))
    try:
        return bytes(out).decode("utf-8")
    except Exception:  # UnicodeDecodeError on CPython, UnicodeError on MicroPython
        return text
