"""Mixpanel wire format: request bodies in, Mixpanel-shaped replies out.

A body becomes a list of raw records (not yet validated) plus the request
parameters (``verbose``, ``ip``, ``strict``) read from the query string *or* the
form body, because mixpanel-python puts them in the body::

    payload = decode_body(body, "application/x-www-form-urlencoded", None,
                          query={"verbose": "1"}, max_bytes=MAX_BODY_BYTES)
    payload.records   # [{"event": ..., "properties": {...}}, ...]
    payload.verbose   # True

Accepted bodies: form ``data=<JSON or base64 JSON>``; ``application/json``
(array or object); ``application/x-ndjson`` (one object a line); ``text/plain``
(and unknown types) holding either of the former, as ``sendBeacon`` with a
string sends. ``Content-Encoding: gzip``/``deflate`` is inflated with a cap.

JSON itself (orjson with an exact fallback) is ``jsoncodec``.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from empmix_collector.domain.jsoncodec import Parsed as _Parsed
from empmix_collector.domain.jsoncodec import dumps_json, loads_json, split_json

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_IMPORT_BODY_BYTES",
    "MAX_RECORDS",
    "WireError",
    "MalformedBody",
    "BodyTooLarge",
    "UnsupportedEncoding",
    "Payload",
    "decode_body",
    "loads_json",
    "dumps_json",
    "is_true",
    "form_unquote",
]

MAX_BODY_BYTES = 1024 * 1024
"""Cap for ``/track`` and ``/engage`` bodies (after inflating): past it, :class:`BodyTooLarge`."""
MAX_IMPORT_BODY_BYTES = 10 * 1024 * 1024
"""Cap for ``/import`` bodies (after inflating): past it, :class:`BodyTooLarge`."""
MAX_RECORDS = 2000
"""Records per request (Mixpanel's limit): past it, :class:`BodyTooLarge`."""

_PARAMS = ("verbose", "ip", "strict", "token", "project_id")


class WireError(Exception):
    """The request as a whole cannot be used; the subclass says why (the HTTP layer picks the status).

    Attributes:
        message: what was wrong, for the reply's ``error`` field.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(message={self.message!r})"


class MalformedBody(WireError):
    """The body cannot be read as records (not JSON, not UTF-8, a broken stream, no records)."""


class BodyTooLarge(WireError):
    """The body, once inflated, or its number of records is over a cap."""


class UnsupportedEncoding(WireError):
    """The body's ``Content-Encoding`` is not one this collector inflates."""


@dataclass
class Payload:
    """A decoded request body.

    Attributes:
        records: raw records in arrival order (anything JSON; validated later).
        params: ``verbose``/``ip``/``strict``/``token``/``project_id`` from the form
            body, overridden by the query string.
        texts: each record's JSON text as received (same length as ``records``), or ``None``.
    """

    records: list[Any]
    params: dict[str, str] = field(default_factory=dict)
    texts: list[str] | None = None

    @property
    def verbose(self) -> bool:
        """``verbose=1`` was given (query string or form body)."""
        return is_true(self.params.get("verbose"))


def is_true(value: str | None) -> bool:
    """Mixpanel-style flag: ``1``/``true``/``yes`` are true."""
    return value is not None and value.strip().lower() in ("1", "true", "yes", "on")


def inflate(body: bytes, encoding: str | None, max_bytes: int) -> bytes:
    """Undo ``Content-Encoding``, refusing more than ``max_bytes`` of output.

    Raises:
        BodyTooLarge: past the cap (a gzip bomb).
        MalformedBody: a broken stream.
        UnsupportedEncoding: an encoding we do not speak.
    """
    if not encoding:
        return body
    codings = [c.strip().lower() for c in encoding.split(",") if c.strip()]
    for coding in reversed(codings):  # applied in order, so undone in reverse
        if coding == "identity":
            continue
        if coding in ("gzip", "x-gzip"):
            wbits = 16 + zlib.MAX_WBITS
        elif coding == "deflate":
            wbits = zlib.MAX_WBITS if body[:1] == b"\x78" else -zlib.MAX_WBITS
        else:
            raise UnsupportedEncoding(f"Content-Encoding {coding!r} is not supported (use gzip)")
        inflater = zlib.decompressobj(wbits)
        try:
            out = inflater.decompress(body, max_bytes + 1)
            if len(out) <= max_bytes and not inflater.unconsumed_tail:
                out += inflater.flush()
        except zlib.error as exc:
            raise MalformedBody(f"body is not valid {coding} data: {exc}") from None
        if len(out) > max_bytes or inflater.unconsumed_tail:
            raise BodyTooLarge(f"inflated body larger than {max_bytes} bytes")
        if not inflater.eof:
            raise MalformedBody(f"body is a truncated {coding} stream")
        body = out
    return body


def _decode_text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBody(f"body is not UTF-8: {exc.reason} at byte {exc.start}") from None


def _parse_json_text(text: str, what: str) -> _Parsed:
    try:
        return split_json(text)
    except ValueError as exc:
        raise MalformedBody(f"{what} is not valid JSON: {exc}") from None


def _decode_data_value(value: str) -> _Parsed:
    """A ``data=`` value: JSON, or base64 of JSON (mixpanel-browser to custom hosts)."""
    stripped = value.strip()
    if not stripped:
        raise MalformedBody("the data parameter is empty")
    if stripped[0] in "[{":
        return _parse_json_text(stripped, "data")
    # '+' sent unescaped in a form body arrives as ' '; url-safe base64 uses -_
    b64 = stripped.replace(" ", "+").replace("-", "+").replace("_", "/")
    b64 += "=" * (-len(b64) % 4)
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedBody("the data parameter is neither JSON nor base64-encoded JSON") from None
    return _parse_json_text(_decode_text(raw), "base64-decoded data")


def form_unquote(text: str) -> str:
    """Decode one form-urlencoded field (``+`` is a space, ``%XX`` a byte of UTF-8).

    ``urllib.parse.unquote`` is pure Python and costs about 1 ms per 20 KB batch;
    ``binascii.a2b_qp`` decodes ``=XX`` escapes in C, so ``%`` is mapped to ``=``
    whenever that cannot change the meaning (no ``=`` or line breaks in the text,
    every escape well formed), and ``unquote`` handles the rest.

    Raises:
        UnicodeDecodeError: the escapes do not spell UTF-8.
    """
    text = text.replace("+", " ")
    if "%" not in text:
        return text
    if text.isascii() and "=" not in text and "\n" not in text and "\r" not in text:
        decoded = binascii.a2b_qp(text.replace("%", "=")).decode("utf-8")
        if "=" not in decoded:
            return decoded
    return unquote(text, errors="strict")


_MAX_FORM_FIELDS = 64


def _parse_form(text: str, params: dict[str, str]) -> _Parsed:
    data: str | None = None
    fields = text.split("&")
    if len(fields) > _MAX_FORM_FIELDS:
        raise MalformedBody(f"form body has more than {_MAX_FORM_FIELDS} fields")
    try:
        for field_text in fields:
            if not field_text:
                continue
            key, _, value = field_text.partition("=")
            key = form_unquote(key)
            if key == "data":
                data = form_unquote(value)
            elif key in _PARAMS:
                params[key] = form_unquote(value)
    except UnicodeDecodeError as exc:
        raise MalformedBody(f"form body is not UTF-8 once decoded: {exc.reason}") from None
    if data is None:
        raise MalformedBody("form body has no data parameter")
    return _decode_data_value(data)


def _parse_ndjson(text: str) -> _Parsed:
    records: list[Any] = []
    texts: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            value, _ = _parse_json_text(line, f"line {number}")
            records.append(value)
            texts.append(line.strip())
    return records, texts


def _sniff(text: str, params: dict[str, str]) -> _Parsed:
    """Bodies without a useful Content-Type (text/plain from sendBeacon, none at all)."""
    stripped = text.strip()
    if not stripped:
        raise MalformedBody("body is empty")
    if stripped[0] in "[{":
        return _parse_json_text(stripped, "body")
    if "=" in stripped and ("data=" in stripped or "&" in stripped):
        return _parse_form(stripped, params)
    return _decode_data_value(stripped)


def decode_body(
    body: bytes,
    content_type: str | None,
    content_encoding: str | None,
    *,
    query: Mapping[str, str],
    max_bytes: int,
    max_records: int = MAX_RECORDS,
) -> Payload:
    """Turn a request body into raw records and parameters.

    Args:
        body: the bytes as received (at most ``max_bytes``; the caller caps reading).
        content_type: the ``Content-Type`` header, if any.
        content_encoding: the ``Content-Encoding`` header, if any.
        query: query-string parameters; they win over form-body parameters.
        max_bytes: cap on the inflated body.
        max_records: cap on the number of records.

    Returns:
        The payload. A single JSON object is a one-record batch.

    Raises:
        MalformedBody: the body cannot be read as records.
        BodyTooLarge: too large, or too many records.
        UnsupportedEncoding: an unknown ``Content-Encoding``.
    """
    params: dict[str, str] = {}
    body = inflate(body, content_encoding, max_bytes)
    text = _decode_text(body)
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "application/x-www-form-urlencoded":
        value, texts = _parse_form(text.strip(), params)
    elif media in ("application/json", "text/json") or media.endswith("+json"):
        if not text.strip():
            raise MalformedBody("body is empty")
        value, texts = _parse_json_text(text, "body")
    elif media in ("application/x-ndjson", "application/jsonl", "application/x-jsonlines"):
        value, texts = _parse_ndjson(text)
    else:
        value, texts = _sniff(text, params)
    for key in _PARAMS:
        if key in query:
            params[key] = query[key]
    if isinstance(value, dict):
        records: list[Any] = [value]
    elif isinstance(value, list):
        records = value
    else:
        raise MalformedBody(f"body must hold a JSON array of records or one record object, not {type(value).__name__}")
    if not records:
        raise MalformedBody("body holds no records")
    if len(records) > max_records:
        raise BodyTooLarge(f"{len(records)} records in one request; the limit is {max_records}")
    return Payload(records=records, params=params, texts=texts)


def failed_record(index: int, reason: str, field_name: str | None, insert_id: str | None) -> dict[str, Any]:
    """One entry of a reply's ``failed_records`` list (both Mixpanel spellings)."""
    return {
        "index": index,
        "$insert_id": insert_id,
        "field": field_name,
        "reason": reason,
        "message": reason,
    }


def summarize(failures: Sequence[Mapping[str, Any]], total: int) -> str | None:
    """The reply's ``error`` text for a batch with rejected records."""
    if not failures:
        return None
    first = failures[0]
    more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
    return f"{len(failures)} of {total} records rejected; record {first['index']}: {first['reason']}{more}"
