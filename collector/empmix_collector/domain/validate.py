"""Record validation: one raw record in, an accepted record or a rejection out.

Every limit is a named constant (here and in ``values``). A rejected record carries the reason
(and the field) that goes back to the client; good records of the same batch
are stored regardless. Validation is cheap on purpose: it runs on the event
loop for every record of every request.

Example::

    ctx = Context(projects={"tok": 1}, now_ms=now, endpoint="track")
    result = validate_event(raw, 0, ctx)
    if isinstance(result, Rejection):
        print(result.reason)
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from empmix_collector.domain.records import EventRecord, IdentityOp, Rejection
from empmix_collector.domain.signing import SIGNATURE_PROPERTY, unverified
from empmix_collector.domain.values import (
    MAX_DEPTH,
    MAX_INT,
    MAX_KEY_LENGTH,
    MAX_LIST_LENGTH,
    MAX_PROPERTIES,
    MAX_STRING_LENGTH,
    int_in_range,
)
from empmix_collector.domain.values import Invalid as _Invalid
from empmix_collector.domain.values import clean_object as _clean_object
from empmix_collector.domain.values import safe_text as _safe_text
from empmix_collector.domain.wire import dumps_json
from empmix_web.ids import DEVICE_PREFIX, MAX_ID_LENGTH, is_insert_id

__all__ = [
    "MAX_EVENT_NAME_LENGTH",
    "MAX_PROPERTIES",
    "MAX_STRING_LENGTH",
    "MAX_DEPTH",
    "MAX_LIST_LENGTH",
    "MAX_KEY_LENGTH",
    "MAX_RECORD_BYTES",
    "MIN_TIME_MS",
    "FUTURE_TOLERANCE_MS",
    "SECONDS_THRESHOLD",
    "Context",
    "Rejection",
    "IdentityOp",
    "EventRecord",
    "validate_event",
    "to_ms",
    "INSERT_ID_RULE",
    "checked_insert_id",
    "as_id",
    "project_of",
]

MAX_EVENT_NAME_LENGTH = 255
MAX_RECORD_BYTES = 1024 * 1024
"""Serialized properties of one record (Mixpanel: 1 MB per event)."""
MIN_TIME_MS = 31_536_000_000
"""1971-01-01T00:00:00Z: earlier times are rejected."""
FUTURE_TOLERANCE_MS = 3_600_000
"""More than 1 h in the future: clamped to now and flagged ``$time_clamped``."""
SECONDS_THRESHOLD = 100_000_000_000
"""``time`` below this is in seconds (year 5138), at or above in milliseconds."""
INSERT_ID_RULE = "$insert_id must be 1-36 characters of A-Z, a-z, 0-9 and '-'"
"""The rejection reason for a bad ``$insert_id`` (the rule is ``empmix_web.ids.is_insert_id``)."""
_IDENTITY_EVENTS = ("$identify", "$create_alias", "$merge")


@dataclass
class Context:
    """What validation needs to know about the request.

    Attributes:
        projects: token -> project id.
        now_ms: arrival time of the request.
        endpoint: ``"track"``, ``"import"`` or ``"engage"``.
        default_project: project for ``/import`` records without a token.
        max_age_ms: ``/track`` refuses events older than this.
        cookieless_links: record index -> the request's cookieless id, for the records
            carrying ``$device_id`` and ``$cookieless_link: true`` (``http.cookieless``).
        identity_keys: project id -> identity secret, for the projects that verify
            identities (``--identity-secret``).
    """

    projects: dict[str, int]
    now_ms: int
    endpoint: str
    default_project: int | None = None
    max_age_ms: int = 5 * 86_400_000
    cookieless_links: dict[int, str] | None = None
    identity_keys: Mapping[int, bytes] = field(default_factory=dict)


def to_ms(value: Any) -> int | None:
    """``time`` in seconds or milliseconds (auto-detected) -> integer ms; None if unusable
    (not a number, or beyond ±2^63, where no store's integer holds it)."""
    kind = type(value)
    if kind is int or kind is float:
        number = value
    elif kind is str:
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    if kind is int:
        if not int_in_range(number):
            return None
    elif not math.isfinite(number) or abs(number) > MAX_INT:
        return None
    if abs(number) < SECONDS_THRESHOLD:
        number = number * 1000
    return int(round(number))


def checked_insert_id(value: Any) -> str | None:
    """A record's ``$insert_id`` (``None`` when it has none); a malformed one is refused."""
    if value is None:
        return None
    if type(value) is str and is_insert_id(value):
        return value
    raise _Invalid(INSERT_ID_RULE, "$insert_id")


def as_id(value: Any, name: str) -> str:
    """A distinct id given as text or an integer -> text; anything else is refused."""
    kind = type(value)
    if kind is str:
        if len(value) > MAX_ID_LENGTH:
            raise _Invalid(f"{name} is longer than {MAX_ID_LENGTH} characters", name)
        return _safe_text(value)
    if kind is int:
        if not int_in_range(value):
            raise _Invalid(f"{name} is an integer beyond ±2^63", name)
        return str(value)
    raise _Invalid(f"{name} must be a string", name)


def _op_id(value: Any) -> str:
    """An id named inside an identity event; odd values stay visible so they can be refused."""
    if type(value) is str:
        return _safe_text(value)
    if type(value) is int:
        return str(value)[: MAX_ID_LENGTH + 1]  # past ±2^63: ``_op`` refuses it
    if value is None:
        return ""
    try:
        return _safe_text(dumps_json(value)[: MAX_ID_LENGTH + 1])  # json may write a lone surrogate
    except ValueError:  # defensive: the decoder already refuses NaN and 1e400
        return repr(value)


def _op(kind: str, from_value: Any, to_value: Any) -> IdentityOp:
    odd = [v for v in (from_value, to_value) if v is not None and type(v) not in (str, int)]
    problem = f"an id must be a string, not {type(odd[0]).__name__}" if odd else None
    if any(type(v) is int and not int_in_range(v) for v in (from_value, to_value)):
        problem = "an integer id must be within ±2^63"
    return IdentityOp(kind, _op_id(from_value), _op_id(to_value), problem)


def _device_did(device_id: Any) -> str | None:
    if type(device_id) is int:
        if not int_in_range(device_id):
            raise _Invalid("$device_id is an integer beyond ±2^63", "$device_id")
        device_id = str(device_id)
    if type(device_id) is not str or not device_id:
        return None
    text = _safe_text(device_id)
    return text if text.startswith(DEVICE_PREFIX) else DEVICE_PREFIX + text


def _event_time(props: dict[str, Any], ctx: Context) -> tuple[int, int, bool]:
    """-> (time_ms stored, time_ms as sent or -1 when missing, clamped)."""
    raw = props.get("time")
    if raw is None:
        return ctx.now_ms, -1, False
    time_ms = to_ms(raw)
    if time_ms is None:
        raise _Invalid("time must be a number of seconds or milliseconds since the epoch, within ±2^63", "time")
    if time_ms < MIN_TIME_MS:
        raise _Invalid("time is before 1971-01-01", "time")
    if time_ms > ctx.now_ms + FUTURE_TOLERANCE_MS:
        return ctx.now_ms, min(time_ms, MAX_INT), True
    if ctx.endpoint == "track" and time_ms < ctx.now_ms - ctx.max_age_ms:
        days = ctx.max_age_ms / 86_400_000
        raise _Invalid(f"time is more than {days:g} days in the past; send historical events to /import", "time")
    return time_ms, time_ms, False


def _identity(event: str, props: dict[str, Any], distinct_id: str, ctx: Context) -> IdentityOp | None:
    if event == "$identify":
        target = distinct_id or props.get("$identified_id")
        anon = props.get("$anon_distinct_id", props.get("$anon_id"))
        if anon is None:
            return None
        return _op("identify", anon, target)
    if event == "$create_alias":
        alias = props.get("alias")
        if alias is None:
            return None
        return _op("alias", distinct_id, alias)
    if event == "$merge":
        if ctx.endpoint != "import":
            raise _Invalid("$merge is accepted only on /import (authenticated with the secret)", "event")
        ids = props.get("$distinct_ids")
        if type(ids) is not list or len(ids) != 2:
            raise _Invalid("$merge needs properties.$distinct_ids: a list of exactly two distinct ids", "$distinct_ids")
        return _op("merge", ids[0], ids[1])
    return None


def _derive_distinct_id(event: str, props: dict[str, Any]) -> str:
    """No distinct_id sent: $identified_id ($identify), $user_id, "$device:"+$device_id, else ""."""
    if event == "$identify" and props.get("$identified_id") is not None:
        return as_id(props["$identified_id"], "$identified_id")
    user_id = props.get("$user_id")
    if type(user_id) in (str, int) and user_id != "":
        return as_id(user_id, "$user_id")
    device = _device_did(props.get("$device_id"))
    if device is not None:
        return as_id(device, "$device_id")
    if event == "$merge" and type(props.get("$distinct_ids")) is list and props["$distinct_ids"]:
        first = props["$distinct_ids"][0]
        if type(first) in (str, int):
            return as_id(first, "$distinct_ids")
    return ""


_LONG_RUN = re.compile(f'[^"]{{{MAX_STRING_LENGTH + 1}}}')


def _plain(text: str, objects: int) -> bool:
    """``text`` holds exactly ``objects`` flat objects, no lists, no escapes, no run of
    more than 255 characters between quotes (so no long string or name), valid UTF-8."""
    return (
        text.count("{") == objects
        and text.count("}") == objects
        and "[" not in text
        and "\\" not in text
        and (len(text) <= MAX_STRING_LENGTH or _LONG_RUN.search(text) is None)
        and (text.isascii() or _safe_text(text) is text)
    )


def _checked_json(props: dict[str, Any], record_text: str | None = None) -> str:
    """Properties -> JSON text, within the limits of ``values`` (strings cut).

    Fast paths for the common flat case, decided on text: the record as received
    (``record_text``: one record object holding one properties object, so the
    properties are sliced out and never serialized again), else the serialized
    properties. Anything else goes through ``values.clean_object``, which cuts or
    rejects exactly.
    """
    if len(props) <= MAX_PROPERTIES:
        if record_text is not None and _plain(record_text, 2):
            start = record_text.index("{", 1)
            return record_text[start : record_text.index("}", start) + 1]
        try:
            text = dumps_json(props)
        except ValueError:  # NaN / Infinity: the slow path names the property
            text = ""
        if text and _plain(text, 1):
            return text
    return dumps_json(_clean_object(props, 0, "properties", MAX_PROPERTIES))


def project_of(token: Any, ctx: Context, field_name: str) -> int:
    if token is None or token == "":
        if ctx.endpoint == "import" and ctx.default_project is not None:
            return ctx.default_project
        raise _Invalid(f"missing {field_name}", field_name)
    if type(token) is not str:
        raise _Invalid(f"{field_name} must be a string", field_name)
    project = ctx.projects.get(token)
    if project is None:
        raise _Invalid(f"unknown token: this collector does not accept {field_name} {token[:64]!r}", field_name)
    return project


def validate_event(raw: Any, index: int, ctx: Context, text: str | None = None) -> EventRecord | Rejection:
    """Validate one ``/track`` or ``/import`` record.

    Args:
        raw: the record as decoded from JSON (may be anything).
        index: its position in the request, echoed in rejections.
        ctx: request context (tokens, arrival time, endpoint).
        text: the record's JSON text as received, if known (lets flat properties be
            stored without serializing them again).

    Returns:
        An :class:`EventRecord` ready for storage, or a :class:`Rejection`.
    """
    insert_id: str | None = None
    try:
        if type(raw) is not dict:
            raise _Invalid("record is not a JSON object", None)
        props = raw.get("properties")
        if props is None:
            props = {}
            text = None  # the text holds no properties object to slice
        elif type(props) is not dict:
            raise _Invalid("properties must be a JSON object", "properties")
        insert_id = checked_insert_id(props.get("$insert_id"))
        event = raw.get("event")
        if type(event) is not str or not event:
            raise _Invalid("event must be a non-empty string", "event")
        if len(event) > MAX_EVENT_NAME_LENGTH:
            raise _Invalid(f"event name is longer than {MAX_EVENT_NAME_LENGTH} characters", "event")
        if not event.isascii():
            event = _safe_text(event)
        token = props.get("token")
        project_id = ctx.projects.get(token) if type(token) is str else None
        if project_id is None:
            project_id = project_of(token, ctx, "token")
        raw_did = props.get("distinct_id")
        if type(raw_did) is str and len(raw_did) <= MAX_ID_LENGTH and raw_did.isascii():
            distinct_id = raw_did
        else:
            distinct_id = _derive_distinct_id(event, props) if raw_did is None else as_id(raw_did, "distinct_id")
        sent = props.get("time")
        if (
            type(sent) is int
            and SECONDS_THRESHOLD <= sent <= ctx.now_ms + FUTURE_TOLERANCE_MS
            and (sent >= ctx.now_ms - ctx.max_age_ms or ctx.endpoint != "track")
        ):  # the common case (integer milliseconds, recent): what _event_time gives, without the calls
            time_ms, sent_ms, clamped = sent, sent, False
        else:
            time_ms, sent_ms, clamped = _event_time(props, ctx)
        op = _identity(event, props, distinct_id, ctx) if event[0] == "$" else None
        cookieless_link = None
        if ctx.cookieless_links and index in ctx.cookieless_links:
            device = _device_did(props.get("$device_id"))
            if device is not None:  # consent: this visit's cookieless id joins the device
                cookieless_link = (ctx.cookieless_links[index], device)
        link = None
        device_id = props.get("$device_id")
        if device_id is not None:
            device = _device_did(device_id)
            user_id = props.get("$user_id")
            if device is not None and type(user_id) in (str, int) and user_id != "" and event != "$merge":
                if type(user_id) is int and not int_in_range(user_id):
                    raise _Invalid("$user_id is an integer beyond ±2^63", "$user_id")
                link = (device, _op_id(user_id))
                if op is not None and (op.from_id, op.to_id) == link:
                    link = None
        if SIGNATURE_PROPERTY in props:  # a credential for linking: checked here, never stored
            signature = props.pop(SIGNATURE_PROPERTY)
            text = None
        else:
            signature = None
        key = ctx.identity_keys.get(project_id) if ctx.identity_keys else None
        if key is not None:
            if op is not None and op.kind != "merge" and op.problem is None:
                op.unverified = unverified(key, ctx.endpoint, op.from_id, op.to_id, signature)
            link_unverified = None if link is None else unverified(key, ctx.endpoint, link[0], link[1], signature)
        else:
            link_unverified = None
        if clamped:
            props["$time_clamped"] = True
            text = None
        properties_json = _checked_json(props, text)
        if len(properties_json) > MAX_RECORD_BYTES:
            raise _Invalid(f"record properties are larger than {MAX_RECORD_BYTES} bytes", "properties")
    except _Invalid as exc:
        return Rejection(index, exc.reason, exc.field, insert_id)
    generated = insert_id is None
    return EventRecord(
        index,
        project_id,
        event,
        distinct_id,
        time_ms,
        sent_ms,
        str(uuid.uuid4()) if insert_id is None else insert_id,
        generated,
        properties_json,
        op,
        link,
        cookieless_link,
        link_unverified,
    )
