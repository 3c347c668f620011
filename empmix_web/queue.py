"""The outbound queue: every record is in localStorage before ``track`` returns.

Each record is its own key, ``empmix_<token>_q_<tab>_<seq><kind>``, so enqueueing writes one
small value instead of rewriting the whole queue (mixpanel-js rewrites its whole queue per event).
Each tab owns the records it wrote (``<tab>``) and is the only one sending them; the records of a
tab that has gone away are adopted by a live tab (see ``client``). A record leaves storage only
when the server has confirmed it or refused it for good.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from dataclasses import dataclass, field
from itertools import count
from typing import Iterable

from .storage import Storage

log = logging.getLogger("empmix_web")

EVENT = "e"  # -> /track
PROFILE = "p"  # -> /engage
_order = count()  # one ordering for all records of this page: what flush() waits on


@dataclass(eq=False)
class Record:
    """One queued wire record (its JSON text) and where it is stored."""

    key: str
    kind: str
    body: str
    order: int = field(default_factory=lambda: next(_order))


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def queue_prefix(token: str) -> str:
    return f"empmix_{token}_q_"


def parse_key(prefix: str, key: str) -> tuple[str, int, str] | None:
    """``(tab, seq, kind)`` of a queue key, or None if it is not one."""
    tab, sep, tail = key[len(prefix):].partition("_")
    if not sep or len(tail) < 2 or tail[-1] not in (EVENT, PROFILE) or not tail[:-1].isdigit():
        return None
    return tab, int(tail[:-1]), tail[-1]


class OutboundQueue:
    """This tab's records, oldest first, mirrored one key per record in storage."""

    def __init__(self, storage: Storage, token: str, tab_id: str, max_size: int) -> None:
        self._storage = storage
        self.prefix = queue_prefix(token)
        self.tab_id = tab_id
        self.max_size = max_size
        self._records: deque[Record] = deque()
        self._seq = 0
        self.dropped = 0  # records dropped because the queue was full

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._records)

    def push(self, kind: str, body: str) -> Record:
        """Store and enqueue one record; past ``max_size`` the oldest is dropped (counted)."""
        self._seq += 1
        record = Record(f"{self.prefix}{self.tab_id}_{self._seq:010d}{kind}", kind, body)
        self._storage.set(record.key, body)
        self._records.append(record)
        while len(self._records) > self.max_size:
            oldest = self._records.popleft()
            self._storage.remove(oldest.key)
            self.dropped += 1
            if self.dropped == 1:
                log.warning(
                    "empmix: outbound queue full (max_queue_size=%d); dropping the oldest records",
                    self.max_size,
                )
        return record

    def head(self, limit: int) -> list[Record]:
        """The oldest records of one kind, at most ``limit``: the next batch to send."""
        batch: list[Record] = []
        for record in self._records:
            if len(batch) >= limit or (batch and record.kind != batch[0].kind):
                break
            batch.append(record)
        return batch

    def remove(self, records: Iterable[Record]) -> None:
        """Forget delivered (or refused) records, in memory and in storage."""
        gone = set(map(id, records))
        if not gone:
            return
        kept: deque[Record] = deque()
        for record in self._records:
            if id(record) in gone:
                self._storage.remove(record.key)
            else:
                kept.append(record)
        self._records = kept

    def clear(self) -> None:
        self.remove(list(self._records))

    def pending_before(self, order: int) -> bool:
        """True while any record enqueued at or before ``order`` is still queued."""
        return any(r.order <= order for r in self._records)

    def stored_tabs(self) -> set[str]:
        """Tabs other than this one with records in storage."""
        tabs = set()
        for key in self._storage.keys(self.prefix):
            parsed = parse_key(self.prefix, key)
            if parsed and parsed[0] != self.tab_id:
                tabs.add(parsed[0])
        return tabs

    def adopt(self, tab: str) -> int:
        """Take over the stored records of ``tab`` (a closed tab); they go first. Returns how many."""
        found: list[tuple[int, str, str]] = []
        for key in self._storage.keys(f"{self.prefix}{tab}_"):
            parsed = parse_key(self.prefix, key)
            if parsed and parsed[0] == tab:
                found.append((parsed[1], parsed[2], key))
        adopted: list[Record] = []
        for _seq, kind, key in sorted(found):
            body = self._storage.get(key)
            if body is None or not _is_json_object(body):
                self._storage.remove(key)  # corrupted or already taken
                continue
            adopted.append(Record(key, kind, body))
        self._records.extendleft(reversed(adopted))
        return len(adopted)
