"""Applying one validated batch inside the writer's open transaction.

Owned by the writer thread (see ``store``): events are inserted with multi-row
prepared ``INSERT OR IGNORE`` statements (the dedup index gives exactly-once),
every distinct id gets a person lazily, identity links are decided by
``identity.decide`` and applied here, and ``/engage`` operations go through
``profiles.apply_operations``. Small in-memory caches keep the common case (an
id already known, a ``$device_id``/``$user_id`` pair already linked) free of
extra queries; they are dropped whenever a transaction is rolled back.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain

from empmix_collector import identity, profiles
from empmix_collector.engage import ProfileRecord
from empmix_collector.identity import Decision, PersonView
from empmix_collector.validate import EventRecord, Rejection

__all__ = ["BatchWriter", "WriteBatch", "WriteResult"]


@dataclass
class WriteBatch:
    """The validated records of one request."""

    events: list[EventRecord] = field(default_factory=list)
    profiles: list[ProfileRecord] = field(default_factory=list)
    received_ms: int = 0

    def __len__(self) -> int:
        return len(self.events) + len(self.profiles)


@dataclass
class WriteResult:
    """What the writer did with a batch.

    Attributes:
        failed: records rejected while applying (profile operations that do not fit).
    """

    failed: list[Rejection] = field(default_factory=list)


_INSERT_EVENTS_HEAD = (
    "INSERT OR IGNORE INTO events(project_id, event, distinct_id, time_ms, dedup_time_ms, received_ms,"
    " insert_id, insert_id_generated, properties) VALUES "
)
_EVENT_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_PERSONS_HEAD = "INSERT INTO persons(id, project_id, is_identified, created_at, properties) VALUES "
_PERSON_ROW = "(?, ?, 0, ?, '{}')"
_INSERT_IDS_HEAD = "INSERT INTO person_distinct_ids(project_id, distinct_id, person_id, created_at, seq) VALUES "
_ID_ROW = "(?, ?, ?, ?, ?)"
_ROWS_PER_STATEMENT = 100
_INSERT_MERGE = (
    "INSERT OR IGNORE INTO merges(project_id, insert_id, kind, from_id, to_id, result, reason,"
    " detail, time_ms, received_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_PERSON_OF = (
    "SELECT p.id, p.is_identified, (SELECT COUNT(*) FROM person_distinct_ids c WHERE c.person_id = p.id)"
    " FROM person_distinct_ids m JOIN persons p ON p.id = m.person_id"
    " WHERE m.project_id = ? AND m.distinct_id = ?"
)
_MAX_KNOWN = 200_000  # cache entries (about 150 bytes each) before the cache is dropped
_CHUNK = 500


def _insert_rows(conn: sqlite3.Connection, head: str, row: str, rows: Sequence[tuple[object, ...]]) -> None:
    """Multi-row ``INSERT``: one statement per 100 rows instead of one step per row.

    ``executemany`` releases and re-takes the GIL for every row; while the event loop
    thread is busy each re-take can wait a whole switch interval, which starved the
    writer (7k events/s instead of 45k+ in a micro-benchmark with a busy main thread).
    """
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        part = rows[start : start + _ROWS_PER_STATEMENT]
        conn.execute(head + ",".join([row] * len(part)), list(chain.from_iterable(part)))


class BatchWriter:
    """Applies batches on the write connection (one instance, one thread)."""

    def __init__(self, conn: sqlite3.Connection, *, max_ids_per_person: int) -> None:
        self.conn = conn
        self.cap = max_ids_per_person
        self._known: set[tuple[int, str]] = set()
        self._links_seen: set[tuple[int, str, str]] = set()
        self._next_person = 0
        self._next_seq = 0
        self.forget_caches()

    def forget_caches(self) -> None:
        """Drop every cache and re-read the id counters (after a rollback)."""
        self._known.clear()
        self._links_seen.clear()
        row = self.conn.execute(
            "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'persons'), 0),"
            " COALESCE((SELECT MAX(id) FROM persons), 0))"
        ).fetchone()
        self._next_person = int(row[0]) + 1
        self._next_seq = (
            int(self.conn.execute("SELECT COALESCE(MAX(seq), 0) FROM person_distinct_ids").fetchone()[0]) + 1
        )

    # -- the batch ---------------------------------------------------------------------

    def apply(self, batch: WriteBatch) -> WriteResult:
        """Store one request's records; the caller commits."""
        return self.apply_group([batch])[0]

    def apply_group(self, batches: list[WriteBatch]) -> list[WriteResult]:
        """Store the records of several requests (one transaction; the caller commits).

        All events go in first, in arrival order, with multi-row ``INSERT``s (so events
        with equal times keep their arrival order); then each batch's identity links and
        profile operations, in arrival order. Events are resolved to persons at query
        time, so doing the links after the inserts changes no outcome.
        """
        results = [WriteResult() for _ in batches]
        fresh = self._fresh_identity_events(batches)
        rows = [
            (
                e.project_id, e.event, e.distinct_id, e.time_ms, e.dedup_time_ms, batch.received_ms,
                e.insert_id, e.insert_id_generated, e.properties_json,
            )
            for batch in batches
            for e in batch.events
        ]  # fmt: skip
        if rows:
            _insert_rows(self.conn, _INSERT_EVENTS_HEAD, _EVENT_ROW, rows)
        wanted: set[tuple[int, str]] = set()
        for batch in batches:
            wanted.update((e.project_id, e.distinct_id) for e in batch.events if e.distinct_id)
            wanted.update((p.project_id, p.distinct_id) for p in batch.profiles)
        self._ensure_persons(wanted, batches[0].received_ms)
        for batch, result in zip(batches, results, strict=True):
            self._identity_and_profiles(batch, result, fresh)
        return results

    def _fresh_identity_events(self, batches: list[WriteBatch]) -> set[int]:
        """``id()`` of the identity events (``$identify``, ``$create_alias``, ``$merge``) that
        are not stored yet: only those are acted on, so a replay changes nothing."""
        fresh: set[int] = set()
        keys: set[tuple[int, int, str, str, str]] = set()
        for batch in batches:
            for e in batch.events:
                if e.op is None:
                    continue
                key = (e.project_id, e.dedup_time_ms, e.insert_id, e.event, e.distinct_id)
                if key in keys:
                    continue
                keys.add(key)
                stored = self.conn.execute(
                    "SELECT 1 FROM events WHERE project_id = ? AND dedup_time_ms = ? AND insert_id = ?"
                    " AND event = ? AND distinct_id = ?",
                    key,
                ).fetchone()
                if stored is None:
                    fresh.add(id(e))
        return fresh

    def _identity_and_profiles(self, batch: WriteBatch, result: WriteResult, fresh: set[int]) -> None:
        received = batch.received_ms
        for event in batch.events:
            op = event.op
            if op is not None and id(event) in fresh:
                self._link(
                    event.project_id, op.kind, op.from_id, op.to_id, event, received, log_noop=True, problem=op.problem
                )
            if event.link is not None:
                key = (event.project_id, event.link[0], event.link[1])
                if key not in self._links_seen:
                    self._link(event.project_id, "link", key[1], key[2], event, received, log_noop=False)
                    if len(self._links_seen) > _MAX_KNOWN:
                        self._links_seen.clear()
                    self._links_seen.add(key)
        for record in batch.profiles:
            rejection = self._profile(record, received)
            if rejection is not None:
                result.failed.append(rejection)

    # -- persons -------------------------------------------------------------------------

    def _ensure_persons(self, wanted: set[tuple[int, str]], now_ms: int) -> None:
        missing = [key for key in wanted if key not in self._known]
        if not missing:
            return
        if len(self._known) > _MAX_KNOWN:
            self._known.clear()
        by_project: dict[int, list[str]] = {}
        for project_id, distinct_id in missing:
            by_project.setdefault(project_id, []).append(distinct_id)
        existing: set[tuple[int, str]] = set()
        for project_id, ids in by_project.items():
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self.conn.execute(
                    f"SELECT distinct_id FROM person_distinct_ids WHERE project_id = ? AND distinct_id IN ({marks})",
                    (project_id, *chunk),
                )
                existing.update((project_id, row[0]) for row in rows)
        persons = []
        mappings = []
        for project_id, distinct_id in missing:
            if (project_id, distinct_id) in existing:
                continue
            person_id = self._next_person
            self._next_person += 1
            persons.append((person_id, project_id, now_ms))
            mappings.append((project_id, distinct_id, person_id, now_ms, self._next_seq))
            self._next_seq += 1
        if persons:
            _insert_rows(self.conn, _INSERT_PERSONS_HEAD, _PERSON_ROW, persons)
            _insert_rows(self.conn, _INSERT_IDS_HEAD, _ID_ROW, mappings)
        self._known.update(missing)

    def _person(self, project_id: int, distinct_id: str) -> PersonView | None:
        row = self.conn.execute(_PERSON_OF, (project_id, distinct_id)).fetchone()
        if row is None:
            return None
        return PersonView(row[0], bool(row[1]), row[2])

    def _add_id(self, project_id: int, distinct_id: str, person_id: int, now_ms: int) -> None:
        self.conn.execute(
            _INSERT_IDS_HEAD + _ID_ROW,
            (project_id, distinct_id, person_id, now_ms, self._next_seq),
        )
        self._next_seq += 1
        self._known.add((project_id, distinct_id))

    def _new_person(self, project_id: int, now_ms: int, identified: bool) -> int:
        person_id = self._next_person
        self._next_person += 1
        self.conn.execute(
            "INSERT INTO persons(id, project_id, is_identified, created_at, properties) VALUES (?, ?, ?, ?, '{}')",
            (person_id, project_id, int(identified), now_ms),
        )
        return person_id

    # -- identity --------------------------------------------------------------------------

    def _link(
        self,
        project_id: int,
        kind: str,
        from_id: str,
        to_id: str,
        event: EventRecord,
        now_ms: int,
        *,
        log_noop: bool,
        problem: str | None = None,
    ) -> None:
        if problem is not None:
            self._log(
                project_id, kind, from_id, to_id, Decision("refused", identity.ILLEGAL_ID, problem), event, now_ms
            )
            return
        from_person = self._person(project_id, from_id)
        to_person = self._person(project_id, to_id)
        alias_taken = False
        if kind == "alias":
            row = self.conn.execute(
                "SELECT target_distinct_id FROM aliases WHERE project_id = ? AND alias = ?", (project_id, to_id)
            ).fetchone()
            if row is not None and row[0] != from_id:
                owner = self._person(project_id, row[0])
                alias_taken = owner is None or from_person is None or owner.person_id != from_person.person_id
        decision = identity.decide(
            kind, from_id, to_id, from_person=from_person, to_person=to_person, cap=self.cap, alias_taken=alias_taken
        )
        if decision.result == "merged":
            self._merge(project_id, from_id, to_id, from_person, to_person, decision, now_ms)
        if decision.register_alias:
            self.conn.execute(
                "INSERT OR IGNORE INTO aliases(project_id, alias, target_distinct_id, created_at) VALUES (?, ?, ?, ?)",
                (project_id, to_id, from_id, now_ms),
            )
        if decision.result != "noop" or log_noop:
            self._log(project_id, kind, from_id, to_id, decision, event, now_ms)

    def _log(
        self, project_id: int, kind: str, from_id: str, to_id: str, decision: Decision, event: EventRecord, now_ms: int
    ) -> None:
        """Append to the merge log (identical refusals and no-ops are kept once)."""
        self.conn.execute(
            _INSERT_MERGE,
            (
                project_id, event.insert_id, kind, from_id[:256], to_id[:256], decision.result,
                decision.reason or "", decision.detail, event.time_ms, now_ms,
            ),
        )  # fmt: skip

    def _merge(
        self,
        project_id: int,
        from_id: str,
        to_id: str,
        from_person: PersonView | None,
        to_person: PersonView | None,
        decision: Decision,
        now_ms: int,
    ) -> None:
        conn = self.conn
        if from_person is None and to_person is None:
            person_id = self._new_person(project_id, now_ms, decision.identified)
            self._add_id(project_id, to_id, person_id, now_ms)
            self._add_id(project_id, from_id, person_id, now_ms)
            return
        if from_person is None or to_person is None:
            person = from_person or to_person
            assert person is not None
            self._add_id(project_id, from_id if from_person is None else to_id, person.person_id, now_ms)
            if decision.identified and not person.identified:
                conn.execute("UPDATE persons SET is_identified = 1 WHERE id = ?", (person.person_id,))
            return
        target, source = (to_person, from_person) if decision.target == "to" else (from_person, to_person)
        rows = dict(
            (row[0], row[1:])
            for row in conn.execute(
                "SELECT id, properties, created_at FROM persons WHERE id IN (?, ?)",
                (target.person_id, source.person_id),
            )
        )
        target_props, target_created = rows[target.person_id]
        source_props, source_created = rows[source.person_id]
        merged = profiles.merge_properties(json.loads(target_props), json.loads(source_props))
        conn.execute(
            "UPDATE person_distinct_ids SET person_id = ? WHERE person_id = ?", (target.person_id, source.person_id)
        )
        conn.execute(
            "UPDATE persons SET properties = ?, is_identified = ?, created_at = ? WHERE id = ?",
            (
                json.dumps(merged, ensure_ascii=False, separators=(",", ":")),
                int(decision.identified or target.identified or source.identified),
                min(target_created, source_created),
                target.person_id,
            ),
        )
        conn.execute("DELETE FROM persons WHERE id = ?", (source.person_id,))

    # -- profiles --------------------------------------------------------------------------

    def _profile(self, record: ProfileRecord, now_ms: int) -> Rejection | None:
        conn = self.conn
        if record.insert_id is not None:
            seen = conn.execute(
                "SELECT 1 FROM profile_updates WHERE project_id = ? AND insert_id = ?",
                (record.project_id, record.insert_id),
            ).fetchone()
            if seen is not None:
                return None
        row = conn.execute(
            "SELECT p.id, p.properties FROM person_distinct_ids m JOIN persons p ON p.id = m.person_id"
            " WHERE m.project_id = ? AND m.distinct_id = ?",
            (record.project_id, record.distinct_id),
        ).fetchone()
        if row is None:  # pragma: no cover - _ensure_persons created it
            raise RuntimeError(f"no person for {record.distinct_id!r}")
        try:
            updated = profiles.apply_operations(json.loads(row[1]), record.ops)
        except profiles.ProfileError as exc:
            return Rejection(record.index, str(exc), record.ops[0][0] if record.ops else None, record.insert_id)
        conn.execute(
            "UPDATE persons SET properties = ? WHERE id = ?",
            (json.dumps(updated, ensure_ascii=False, separators=(",", ":")), row[0]),
        )
        if record.insert_id is not None:
            conn.execute(
                "INSERT INTO profile_updates(project_id, insert_id, distinct_id, received_ms) VALUES (?, ?, ?, ?)",
                (record.project_id, record.insert_id, record.distinct_id, now_ms),
            )
        return None
