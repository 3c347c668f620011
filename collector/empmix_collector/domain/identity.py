"""Identity-merge rules (notes §2.6, rules 1-12) as pure decisions.

The store looks up the persons of the two ids, asks :func:`decide`, and applies
the answer in the same transaction. Nothing here touches SQL, so every rule is
testable on plain values::

    decision = decide("identify", "$device:d1", "user-1",
                      from_person=PersonView(1, identified=False, size=1),
                      to_person=None, cap=500)
    assert decision.result == "merged" and decision.identified

Kinds: ``identify`` ($identify: anonymous id -> identified id), ``alias``
($create_alias: distinct_id -> alias), ``link`` (an event carrying ``$device_id``
and ``$user_id``), ``merge`` ($merge through ``/import``; the only way two
identified persons become one).
"""

from __future__ import annotations

from dataclasses import dataclass

# One rule for what is a real id, shared with the SDK (which refuses what this refuses to merge).
from empmix_web.ids import COOKIELESS, DEVICE_PREFIX, MAX_ID_LENGTH, illegal_id_reason

__all__ = [
    "KINDS",
    "MAX_ID_LENGTH",
    "DEVICE_PREFIX",
    "ANONYMOUS_PREFIXES",
    "ILLEGAL_ID",
    "ALREADY_IDENTIFIED",
    "ALIAS_EXISTS",
    "TOO_MANY_IDS",
    "UNVERIFIED",
    "PersonView",
    "Decision",
    "illegal_id_reason",
    "decide",
]

KINDS = ("identify", "alias", "link", "merge", "cookieless")
ANONYMOUS_PREFIXES = (DEVICE_PREFIX, COOKIELESS)
"""Ids starting with these are anonymous: ``$device:...`` and ``$cookieless`` (the sentinel and its ids)."""
ILLEGAL_ID = "illegal_id"
ALREADY_IDENTIFIED = "already_identified"
ALIAS_EXISTS = "alias_exists"
TOO_MANY_IDS = "too_many_ids"
UNVERIFIED = "unverified"
"""The project verifies identities (``--identity-secret``) and the link was not signed."""


@dataclass(frozen=True, slots=True)
class PersonView:
    """What a decision needs to know about a person."""

    person_id: int
    identified: bool
    size: int  # number of distinct ids in the cluster


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one link attempt.

    Attributes:
        result: ``merged``, ``noop`` or ``refused``.
        reason: refusal code (``illegal_id``, ``already_identified``, ``alias_exists``,
            ``too_many_ids``), else ``None``.
        detail: human-readable explanation for the merge log.
        target: ``"to"`` or ``"from"``: whose person survives (and wins property
            conflicts) when both ids already have persons.
        identified: whether the resulting person is identified.
        register_alias: record the alias value as used (``alias`` kind only).
    """

    result: str
    reason: str | None = None
    detail: str | None = None
    target: str = "to"
    identified: bool = False
    register_alias: bool = False


def _refused(reason: str, detail: str) -> Decision:
    return Decision("refused", reason, detail)


def decide(
    kind: str,
    from_id: str,
    to_id: str,
    *,
    from_person: PersonView | None,
    to_person: PersonView | None,
    cap: int,
    alias_taken: bool = False,
) -> Decision:
    """Decide whether ``from_id`` may join the person of ``to_id``.

    Args:
        kind: one of :data:`KINDS`.
        from_id: identify: the anonymous id; alias: the event's distinct_id;
            link: ``"$device:" + $device_id``; merge: the first id.
        to_id: identify: the identified id; alias: the alias value; link: ``$user_id``;
            merge: the second id.
        from_person: the person ``from_id`` belongs to, if any.
        to_person: the person ``to_id`` belongs to, if any.
        cap: the most distinct ids one person may hold (rule 7).
        alias_taken: (alias) the alias value is already registered for an id of
            another person (rule 6, ``alias_exists``).

    Returns:
        The decision; the caller applies it and logs it.
    """
    if kind not in KINDS:
        raise ValueError(f"decide(kind={kind!r}): expected one of {KINDS}")
    for side, value in (("from", from_id), ("to", to_id)):
        problem = illegal_id_reason(value)
        if problem is not None:
            return _refused(ILLEGAL_ID, f"{side} id {value[:80]!r}: {problem}")
    if kind == "cookieless" and not (from_id.startswith(COOKIELESS) and to_id.startswith(DEVICE_PREFIX)):
        return _refused(ILLEGAL_ID, "a cookieless link joins a $cookieless: id to a $device: id")
    if kind not in ("merge", "cookieless") and to_id.startswith(ANONYMOUS_PREFIXES):
        prefix = DEVICE_PREFIX if to_id.startswith(DEVICE_PREFIX) else COOKIELESS
        return _refused(ILLEGAL_ID, f"{to_id[:80]!r}: an anonymous {prefix} id cannot be the identified id")
    if from_id == to_id:
        return Decision("noop", detail="same id")
    if kind == "alias" and alias_taken:
        return _refused(ALIAS_EXISTS, f"alias {to_id[:80]!r} already points to another person")
    same = from_person is not None and to_person is not None and from_person.person_id == to_person.person_id
    if same:
        return Decision("noop", detail="already the same person", register_alias=kind == "alias")
    if kind in ("identify", "link") and from_person is not None and from_person.identified:
        return _refused(
            ALREADY_IDENTIFIED,
            f"{from_id[:80]!r} belongs to a person already identified as someone else; "
            "only $merge through /import joins two identified people",
        )
    if kind == "alias" and to_person is not None and to_person.identified:
        return _refused(ALREADY_IDENTIFIED, f"alias {to_id[:80]!r} already belongs to an identified person")
    size = (from_person.size if from_person else 1) + (to_person.size if to_person else 1)
    if size > cap:
        return _refused(TOO_MANY_IDS, f"the merged person would hold {size} distinct ids; the cap is {cap}")
    from_identified = from_person is not None and from_person.identified
    to_identified = to_person is not None and to_person.identified
    if kind == "cookieless" and from_identified and to_identified:
        return _refused(ALREADY_IDENTIFIED, "the cookieless visit and the device belong to two identified people")
    if kind == "cookieless":
        identified = from_identified or to_identified
    elif kind == "merge":
        identified = (
            from_identified
            or to_identified
            or not from_id.startswith(ANONYMOUS_PREFIXES)
            or not to_id.startswith(ANONYMOUS_PREFIXES)
        )
    else:
        identified = True  # a non-$device: id (the identified id / alias / $user_id) joins
    # the identified side survives and wins property conflicts; otherwise the "to" side
    target = "from" if from_identified and not to_identified else "to"
    return Decision("merged", target=target, identified=identified, register_alias=kind == "alias")
