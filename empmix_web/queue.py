"""The outbound queue: every record is in localStorage before ``track`` returns.

Each record is its own key, ``empmix_<token>_q_<tab>_<seq><kind letter>``, so enqueueing writes
one small value instead of rewriting the whole queue. Each tab owns the records it wrote
(``<tab>``) and is the only one sending them; a live tab adopts the records of a tab that has
gone away (see ``tabs``). A record leaves storage only when the server has confirmed it or
refused it for good, or when ``reset()`` takes the previous user's records out of storage.

The queue is capped in records (``max_queue_size``) and in characters (``MAX_QUEUE_CHARS``),
adopted records included, so the SDK never fills the origin's storage quota by itself: past
either cap the oldest records are dropped (counted, logged once).
"""

import logging

from . import keys
from .compat import loads_bounded
from .records import EVENT, KINDS, Kind, Record
from .storage import Storage

try:
    from typing import Iterator
except ImportError:
    pass

log = logging.getLogger("empmix_web")

MAX_QUEUE_CHARS = 1_000_000  # about 2 MB of localStorage, a fifth of Chromium's 10 MB quota
MAX_RECORD_CHARS = 1_000_000


def queue_prefix(token: str) -> str:
    """The localStorage key prefix of ``token``'s queued records."""
    return keys.key(token, keys.QUEUE)


def parse_key(prefix: str, key: str) -> "tuple[str, int, Kind] | None":
    """``(tab, seq, kind)`` of a queue key, or None if it is not one."""
    tab, sep, tail = key[len(prefix) :].partition("_")
    if not sep or not tab or len(tail) < 2 or tail[-1] not in KINDS or not tail[:-1].isdigit():
        return None
    return tab, int(tail[:-1]), KINDS[tail[-1]]


class OutboundQueue:
    """This tab's records, oldest first, mirrored one key per record in storage."""

    def __init__(
        self, storage: Storage, token: str, tab_id: str, max_size: int, max_chars: int = MAX_QUEUE_CHARS
    ) -> None:
        self._storage = storage
        self.prefix = queue_prefix(token)
        self.tab_id = tab_id
        self._key_head = self.prefix + tab_id + "_"
        self.max_size = max_size
        self.max_chars = max_chars
        self._records: "list[Record]" = []
        self._chars = 0
        self._seq = 0
        self.dropped = 0  # records dropped because the queue was full

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> "Iterator[Record]":
        return iter(self._records)

    @property
    def chars(self) -> int:
        """The characters of every queued record (the queue's second cap)."""
        return self._chars

    def _next_key(self, letter: str) -> str:
        # zero-padded by slicing: MicroPython's "%010d" costs several µs per track()
        return self._key_head + ("0000000000" + str(self._seq + 1))[-10:] + letter

    def push(self, record: Record) -> Record:
        """Store and enqueue one record; past a cap the oldest are dropped (counted)."""
        record.key = self._next_key(record.kind.letter)
        self._storage.set(record.key, record.body)
        self._queued(record)
        return record

    def push_event(self, name_json: str, session_json: str, props_json: str, count: int) -> bool:
        """The hot path: the page assembles the event from its template and stores it
        (``Storage.set_event``); the queue keeps its key and length. False (nothing stored or
        queued) when the page's guard no longer holds."""
        key = self._next_key("e")
        size = self._storage.set_event(key, name_json, session_json, props_json, count)
        if not size:
            return False
        self._queued(Record(EVENT, None, key, size, self._storage))
        return True

    def _queued(self, record: Record) -> None:
        self._seq += 1
        self._records.append(record)
        self._chars += record.size
        self._enforce_caps()

    def _enforce_caps(self) -> None:
        while len(self._records) > 1 and (len(self._records) > self.max_size or self._chars > self.max_chars):
            oldest = self._records.pop(0)
            self._forget(oldest)
            self.dropped += 1
            if self.dropped == 1:
                log.warning(
                    "empmix: outbound queue full (max_queue_size=%d, %d characters at most); "
                    "dropping the oldest records",
                    self.max_size,
                    self.max_chars,
                )

    def _forget(self, record: Record) -> None:
        self._chars -= record.size
        if record.key is not None:
            self._storage.remove(record.key)

    def rewrite(self, record: Record, body: str) -> None:
        """Replace a queued record's text (not yet sent)."""
        self._chars += len(body) - record.size
        record.body = body
        if record.key is not None:
            self._storage.set(record.key, body)

    def head(self, limit: int) -> "list[Record]":
        """The oldest records for one endpoint, at most ``limit``: the next batch to send.
        A record whose text is gone from storage (the site's data cleared) is dropped."""
        batch: "list[Record]" = []
        gone: "list[Record]" = []
        for record in self._records:
            if len(batch) >= limit or (batch and record.kind.endpoint != batch[0].kind.endpoint):
                break
            if record.body:
                batch.append(record)
            else:
                gone.append(record)
        self.remove(gone)
        return batch

    def remove(self, records: "list[Record]") -> None:
        """Forget delivered (or refused) records, in memory and in storage."""
        if not records:
            return
        gone = [id(r) for r in records]
        kept: "list[Record]" = []
        for record in self._records:
            if id(record) in gone:
                self._forget(record)
            else:
                kept.append(record)
        self._records = kept

    def clear(self) -> None:
        """Forget every queued record, in memory and in storage (opt-out)."""
        self.remove(list(self._records))

    def unstore(self) -> int:
        """Keep every queued record in memory only (``reset()``: nothing of the previous user
        stays in storage). They are still sent, and by beacon when the page hides."""
        count = 0
        for record in self._records:
            if record.key is not None:
                record.keep()  # the text into memory first: the page assembled it
                self._storage.remove(record.key)
                record.key = None
                count += 1
        return count

    def pending_before(self, order: int) -> bool:
        """True while any record enqueued at or before ``order`` is still queued."""
        for record in self._records:
            if record.order <= order:
                return True
        return False

    def tabs_with_records(self) -> "list[str]":
        """Tabs with records in storage (this one included)."""
        tabs: "list[str]" = []
        for key in self._storage.keys(self.prefix):
            parsed = parse_key(self.prefix, key)
            if parsed and parsed[0] not in tabs:
                tabs.append(parsed[0])
        return tabs

    def resume(self) -> int:
        """Go on with this tab's records already in storage (the boot script's tab, whose id
        this queue took): they are queued, and new keys continue after them."""
        count = self.adopt(self.tab_id)
        for key in self._storage.keys(self._key_head):
            parsed = parse_key(self.prefix, key)
            if parsed and parsed[0] == self.tab_id and parsed[1] > self._seq:
                self._seq = parsed[1]
        return count

    def adopt(self, tab: str) -> int:
        """Take over the stored records of ``tab`` (a closed tab); they go first, oldest first,
        within the caps. Returns how many were adopted."""
        found: "list[tuple[int, str, Kind]]" = []
        for key in self._storage.keys(self.prefix + tab + "_"):
            parsed = parse_key(self.prefix, key)
            if parsed and parsed[0] == tab:
                found.append((parsed[1], key, parsed[2]))
        found.sort(key=lambda item: item[0])
        adopted: "list[Record]" = []
        for _seq, key, kind in found:
            body = self._storage.get(key)
            if body is None or not isinstance(loads_bounded(body, MAX_RECORD_CHARS), dict):
                self._storage.remove(key)  # corrupted, hostile, or already taken
                continue
            adopted.append(Record(kind, body, key))
            self._chars += len(body)
        self._records = adopted + self._records
        self._enforce_caps()
        return len(adopted)

    def owned_by(self, tab: str) -> bool:
        """True while any queued record is stored under ``tab``'s keys."""
        mark = self.prefix + tab + "_"
        for record in self._records:
            if record.key is not None and record.key.startswith(mark):
                return True
        return False
