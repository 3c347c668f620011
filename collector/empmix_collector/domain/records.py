"""The records that travel from validation to the store, and what the store answers.

Plain data, no behaviour: ``validate`` and ``engage`` build them, ``http.ingest``
groups one request's records into a :class:`WriteBatch`, and a store returns a
:class:`WriteResult` once the batch is committed::

    batch = WriteBatch(events=[event_record], received_ms=now_ms)
    result = await store.write(batch)
    result.failed   # [Rejection(...)] for profile operations that did not fit
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Rejection", "IdentityOp", "EventRecord", "ProfileRecord", "GroupRecord", "WriteBatch", "WriteResult"]


@dataclass(slots=True)
class Rejection:
    """A record that is not stored, and why."""

    index: int
    reason: str
    field: str | None = None
    insert_id: str | None = None


@dataclass(slots=True)
class IdentityOp:
    """An explicit identity request carried by an event.

    ``from_id`` joins the person of ``to_id`` (``kind`` identify: anon -> identified id;
    alias: original distinct_id -> alias; merge: first -> second of ``$distinct_ids``).
    An id that is neither text nor an integer is kept as its JSON text and ``problem``
    says why, so the attempt is refused (``illegal_id``) and logged.
    """

    kind: str
    from_id: str
    to_id: str
    problem: str | None = None
    unverified: str | None = None  # why the project's identity verification refuses it, if it does


@dataclass(slots=True)
class EventRecord:
    """An accepted event, ready for the writer."""

    index: int
    project_id: int
    event: str
    distinct_id: str
    time_ms: int
    dedup_time_ms: int  # the time as sent (-1 if none): a retry of a clamped or time-less event still dedups
    insert_id: str
    insert_id_generated: bool
    properties_json: str
    op: IdentityOp | None = None
    link: tuple[str, str] | None = None  # ("$device:"+$device_id, $user_id)
    cookieless_link: tuple[str, str] | None = None  # (this request's $cookieless: id, "$device:"+$device_id)
    link_unverified: str | None = None  # why identity verification refuses the link, if it does


@dataclass(slots=True)
class ProfileRecord:
    """An accepted ``/engage`` update: operations in record order."""

    index: int
    project_id: int
    distinct_id: str
    ops: list[tuple[str, Any]] = field(default_factory=list)
    insert_id: str | None = None


@dataclass(slots=True)
class GroupRecord:
    """An accepted ``/groups`` update of the profile of ``(project, group_key, group_id)``."""

    index: int
    project_id: int
    group_key: str
    group_id: str
    ops: list[tuple[str, Any]] = field(default_factory=list)
    insert_id: str | None = None


@dataclass
class WriteBatch:
    """The validated records of one request."""

    events: list[EventRecord] = field(default_factory=list)
    profiles: list[ProfileRecord] = field(default_factory=list)
    received_ms: int = 0
    groups: list[GroupRecord] = field(default_factory=list)
    endpoint: str = ""  # track, import, engage, groups: recorded in the merge log
    origin: str | None = None  # the request's Origin header, if any: recorded in the merge log

    def __len__(self) -> int:
        return len(self.events) + len(self.profiles) + len(self.groups)


@dataclass
class WriteResult:
    """What the writer did with a batch.

    Attributes:
        failed: records rejected while applying (profile operations that do not fit).
    """

    failed: list[Rejection] = field(default_factory=list)
