"""What is a real id: the one rule shared by the SDK and the collector.

The SDK refuses an illegal id as a programming error (``ValueError`` naming the rule); the
collector refuses to merge with it (reason ``illegal_id``) and still stores the event. Both
import this module; the boot script (``boot.js``) repeats it, bound by its contract test.

Refused: empty or blank ids (blank: ASCII white space, :data:`WHITESPACE`); more than
:data:`MAX_ID_LENGTH` characters; a NUL character; a placeholder written by code that had no id
(PostHog's ``isDistinctIdIllegal`` and Mixpanel's ``/import`` deny list), also in 'single' or
"double" quotes. Words compare case-insensitively (``Anonymous``, ``UNDEFINED``); ``NaN``,
``None``/``none``, ``null``, ``0``, ``-1``, ``[]``, ``{}``, ``[object Object]`` and the nil UUID
compare exactly, so ``Null`` or ``nan`` stay usable as real ids. A ``$device:`` id is
anonymous: never a user id, and neither is a ``$cookieless`` one.
"""

MAX_ID_LENGTH = 255
DEVICE_PREFIX = "$device:"
# cookieless operation (init(cookieless=...)): the SDK sends this sentinel as distinct_id, and the
# collector puts in its place the visitor's cookieless id, COOKIELESS_PREFIX + a keyed hash: an
# anonymous id like a $device: one, never a user id
COOKIELESS = "$cookieless"
COOKIELESS_PREFIX = "$cookieless:"
# what "blank" means: ASCII white space, as MicroPython's str.strip() and the boot script see it
# (CPython's strip() would also take Unicode spaces, so the interpreters would disagree)
WHITESPACE = " \t\n\r\x0b\x0c"

# compared after .lower()
ILLEGAL_WORDS = {
    "anonymous",
    "guest",
    "distinctid",
    "distinct_id",
    "id",
    "not_authenticated",
    "email",
    "undefined",
    "true",
    "false",
    "anon",
    "nil",
    "n/a",
    "na",
    "unknown",
    "<nil>",
}
# compared exactly
ILLEGAL_EXACT = {
    "[object Object]",
    "NaN",
    "None",
    "none",
    "null",
    "0",
    "-1",
    "[]",
    "{}",
    "00000000-0000-0000-0000-000000000000",
}


def _is_listed(value: str) -> bool:
    return value.lower() in ILLEGAL_WORDS or value in ILLEGAL_EXACT


def illegal_id_reason(distinct_id: str) -> "str | None":
    """Why ``distinct_id`` is not a real id, or ``None`` if it is.

    Anonymous ``$device:<id>`` ids are real ids here (the part after the prefix is checked);
    :func:`user_id_problem` also refuses them as user ids.
    """
    stripped = distinct_id.strip(WHITESPACE)
    if not stripped:
        return "empty id"
    if len(distinct_id) > MAX_ID_LENGTH:
        return "id longer than " + str(MAX_ID_LENGTH) + " characters"
    if "\x00" in distinct_id:
        return "id contains a NUL character"
    candidates = [stripped]
    if len(stripped) >= 2 and stripped[0] == stripped[-1] and stripped[0] in "'\"":
        candidates.append(stripped[1:-1].strip(WHITESPACE))
    if stripped.startswith(DEVICE_PREFIX):
        device = stripped[len(DEVICE_PREFIX) :].strip(WHITESPACE)
        if not device:
            return "empty device id"
        candidates.append(device)
    for candidate in candidates:
        if _is_listed(candidate):
            return "placeholder id " + repr(candidate)
    return None


def user_id_problem(user_id: str) -> "str | None":
    """Why ``user_id`` cannot identify a user, or ``None`` if it can."""
    for prefix in (DEVICE_PREFIX, COOKIELESS):
        if user_id.startswith(prefix):
            return "starts with " + repr(prefix) + " (that is an anonymous id)"
    return illegal_id_reason(user_id)


def uuid4(random16: bytes) -> str:
    """An RFC 4122 version-4 UUID string from 16 random bytes."""
    b = bytearray(random16)
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = bytes(b).hex()
    return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]


INSERT_ID_MAX_LENGTH = 36
INSERT_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-"


def is_insert_id(value: object) -> bool:
    """``$insert_id``: 1-36 characters of ``A-Z a-z 0-9 -`` (Mixpanel's rule).

    ``str.strip(chars)`` removes every allowed character when there is no other one: it runs
    in C on CPython (faster than a regular expression, for the collector's hot path) and works
    on MicroPython, whose ``re`` has no counted repetition.
    """
    return isinstance(value, str) and 0 < len(value) <= INSERT_ID_MAX_LENGTH and not value.strip(INSERT_ID_ALPHABET)
