"""Applying validated batches inside the writer's open transaction (both stores).

Events are inserted with ``WriteSql.insert_many`` (``ON CONFLICT DO NOTHING``: the dedup
index gives exactly-once, also between several collectors on one database); every
distinct id gets a person lazily; identity links are decided by
``domain.identity.decide`` and applied here; ``/engage`` and ``/groups`` records go through
``store.profile_writes`` (each profile read and written once per batch). The same code runs on SQLite and PostgreSQL, so
merge results cannot fork between the stores.

Concurrency (several writers on one PostgreSQL): before touching anything, a group
takes its projects' identity lock (``WriteSql.lock_projects``): exclusive when it
may merge or change a profile, shared when it only adds new distinct ids, none when
it only appends events of known ids. Decisions are therefore made on a map no one
else is changing. Identity events are acted on only if this transaction inserted
them (``RETURNING``), so a retry that reached two nodes at once is applied once.

Small in-memory caches keep the common case (an id already known, a
``$device_id``/``$user_id`` pair already linked) free of extra queries; they only
ever hold facts that no later transaction can undo, and are dropped on rollback.
"""

from __future__ import annotations

from empmix_collector.domain import identity, profiles
from empmix_collector.domain.identity import Decision, PersonView
from empmix_collector.domain.records import EventRecord, WriteBatch, WriteResult
from empmix_collector.domain.wire import dumps_json, loads_json
from empmix_collector.store.profile_writes import ProfileWrites
from empmix_collector.store.sql import WriteSql

__all__ = ["BatchWriter"]

_EVENT_COLUMNS = (
    "project_id", "event", "distinct_id", "time_ms", "dedup_time_ms", "received_ms",
    "insert_id", "insert_id_generated", "properties",
)  # fmt: skip
_EVENT_KEY = "project_id, dedup_time_ms, insert_id, event, distinct_id"
_PERSON_COLUMNS = ("id", "project_id", "created_at")  # is_identified 0 and properties '{}' by default
_ID_COLUMNS = ("project_id", "distinct_id", "person_id", "created_at", "seq")
_INSERT_IDS = (
    "INSERT INTO person_distinct_ids(project_id, distinct_id, person_id, created_at, seq) VALUES (?, ?, ?, ?, ?)"
)
_INSERT_MERGE = (
    "INSERT INTO merges(project_id, insert_id, kind, from_id, to_id, result, reason,"
    " detail, time_ms, received_ms, endpoint, origin) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT DO NOTHING"
)
_PERSON_OF = (
    "SELECT p.id, p.is_identified, (SELECT COUNT(*) FROM person_distinct_ids c WHERE c.person_id = p.id)"
    " FROM person_distinct_ids m JOIN persons p ON p.id = m.person_id"
    " WHERE m.project_id = ? AND m.distinct_id = ?"
)
_MAX_KNOWN = 200_000  # cache entries (about 150 bytes each) before the cache is dropped
_CHUNK = 500

EventKey = tuple[int, int, str, str, str]  # the dedup key: project, time as sent, $insert_id, event, distinct_id


def _key(e: EventRecord) -> EventKey:
    return (e.project_id, e.dedup_time_ms, e.insert_id, e.event, e.distinct_id)


class BatchWriter:
    """Applies batches on the write connection (one instance per writer thread)."""

    def __init__(self, sql: WriteSql, *, max_ids_per_person: int, faults: tuple[type[BaseException], ...] = ()) -> None:
        self.sql = sql
        self.cap = max_ids_per_person
        self.faults = faults
        """Errors of the database itself (locked, disk, connection): never one batch's fault."""
        self._known: set[tuple[int, str]] = set()
        self._links_seen: set[tuple[int, str, str]] = set()
        self._source: tuple[str, str | None] = ("", None)  # (endpoint, origin) of the batch being applied

    def forget_caches(self) -> None:
        """Drop every cache (after a rollback)."""
        self._known.clear()
        self._links_seen.clear()
        self.sql.forget()

    # -- the group ---------------------------------------------------------------------

    def apply_group(self, batches: list[WriteBatch]) -> list[WriteResult]:
        """Store the records of several requests (one transaction; the caller commits).

        All events go in first, in arrival order (so events with equal times keep their
        arrival order); then each batch's identity links and profile operations, in
        arrival order. Events are resolved to persons at query time, so doing the links
        after the inserts changes no outcome.
        """
        results = [WriteResult() for _ in batches]
        wanted: set[tuple[int, str]] = set()
        changes: set[int] = set()  # projects whose identity map or profiles may change
        with_ops = False
        for batch in batches:
            for e in batch.events:
                if e.distinct_id:
                    wanted.add((e.project_id, e.distinct_id))
                if e.op is not None:
                    with_ops = True
                    changes.add(e.project_id)
                elif e.link is not None and (e.project_id, *e.link) not in self._links_seen:
                    changes.add(e.project_id)
                if e.cookieless_link is not None:
                    changes.add(e.project_id)
            for p in batch.profiles:
                wanted.add((p.project_id, p.distinct_id))
                changes.add(p.project_id)
            for g in batch.groups:
                changes.add(g.project_id)
        missing = [key for key in wanted if key not in self._known]
        if changes:
            self.sql.lock_projects(changes | {key[0] for key in missing}, exclusive=True)
        elif missing:
            self.sql.lock_projects({key[0] for key in missing}, exclusive=False)
        fresh = self._insert_events(batches, with_ops)
        self._ensure_persons(missing, batches[0].received_ms)
        for batch, result in zip(batches, results, strict=True):
            self._identity_and_profiles(batch, result, fresh)
        return results

    def apply_isolated(self, batches: list[WriteBatch]) -> list[WriteResult | Exception]:
        """Like :meth:`apply_group`, but each batch under its own savepoint: a batch that
        raises is rolled back alone (its exception takes its place in the list) and the
        others stay in the transaction, so the caller still commits once. A database fault
        (``faults``) is raised, as from :meth:`apply_group`."""
        out: list[WriteResult | Exception] = []
        for batch in batches:
            self.sql.run("SAVEPOINT empmix_batch")
            try:
                out.append(self.apply_group([batch])[0])
            except self.faults:
                raise
            except Exception as exc:
                self.sql.run("ROLLBACK TO SAVEPOINT empmix_batch")
                self.forget_caches()  # they may hold facts of the rolled-back part
                out.append(exc)
            self.sql.run("RELEASE SAVEPOINT empmix_batch")
        return out

    def _insert_events(self, batches: list[WriteBatch], with_ops: bool) -> set[EventKey]:
        """Insert every event; returns the dedup keys of the identity events
        (``$identify``, ``$create_alias``, ``$merge``) this transaction stored: only
        those are acted on, so a replay changes nothing."""
        rows = [
            (
                e.project_id, e.event, e.distinct_id, e.time_ms, e.dedup_time_ms, batch.received_ms,
                e.insert_id, e.insert_id_generated, e.properties_json,
            )
            for batch in batches
            for e in batch.events
        ]  # fmt: skip
        if not rows:
            return set()
        if not with_ops:
            self.sql.insert_many("events", _EVENT_COLUMNS, rows)
            return set()
        inserted = self.sql.insert_many("events", _EVENT_COLUMNS, rows, returning=_EVENT_KEY)
        return {(int(r[0]), int(r[1]), str(r[2]), str(r[3]), str(r[4])) for r in inserted}

    def _identity_and_profiles(self, batch: WriteBatch, result: WriteResult, fresh: set[EventKey]) -> None:
        received = batch.received_ms
        self._source = (batch.endpoint, batch.origin[:255] if batch.origin else None)
        for event in batch.events:
            op = event.op
            if op is not None:
                key = _key(event)
                if key in fresh:
                    fresh.discard(key)  # the same event twice in one group: act once
                    self._link(
                        event.project_id, op.kind, op.from_id, op.to_id, event, received,
                        log_noop=True, problem=op.problem, unverified=op.unverified,
                    )  # fmt: skip
            if event.link is not None:
                link_key = (event.project_id, event.link[0], event.link[1])
                if link_key not in self._links_seen:
                    self._link(
                        event.project_id, "link", link_key[1], link_key[2], event, received,
                        log_noop=False, unverified=event.link_unverified,
                    )  # fmt: skip
                    if len(self._links_seen) > _MAX_KNOWN:
                        self._links_seen.clear()
                    if event.link_unverified is None:  # a signed event may come next and link them
                        self._links_seen.add(link_key)
            if event.cookieless_link is not None:  # consent: rare, so always checked (a replay is a noop)
                self._link(event.project_id, "cookieless", *event.cookieless_link, event, received, log_noop=False)
        if not batch.profiles and not batch.groups:
            return
        writes = ProfileWrites(self.sql)  # each profile read once and written once per batch
        for record in batch.profiles:
            rejection = writes.person(record, received)
            if rejection is not None:
                result.failed.append(rejection)
        for group in batch.groups:
            rejection = writes.group(group, received)
            if rejection is not None:
                result.failed.append(rejection)
        writes.flush(received)

    # -- persons -------------------------------------------------------------------------

    def _ensure_persons(self, missing: list[tuple[int, str]], now_ms: int) -> None:
        """Give every id in ``missing`` a person, unless it has one already."""
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
                found = self.sql.existing_ids(project_id, ids[start : start + _CHUNK])
                existing.update((project_id, distinct_id) for distinct_id in found)
        new = sorted(key for key in missing if key not in existing)  # one order: no deadlock between writers
        if new:
            person_ids = self.sql.new_ids("person", len(new))
            seqs = self.sql.new_ids("seq", len(new))
            mappings = [
                (project_id, distinct_id, person_id, now_ms, seq)
                for (project_id, distinct_id), person_id, seq in zip(new, person_ids, seqs, strict=True)
            ]
            # another writer may have added some meanwhile (it held the shared lock too):
            # only the mappings this insert made get a person
            made = self.sql.insert_many(
                "person_distinct_ids", _ID_COLUMNS, mappings, returning="project_id, distinct_id, person_id"
            )
            persons = [(row[2], row[0], now_ms) for row in made]
            if persons:
                self.sql.insert_many("persons", _PERSON_COLUMNS, persons)
        self._known.update(missing)

    def _person(self, project_id: int, distinct_id: str) -> PersonView | None:
        row = self.sql.one(_PERSON_OF, (project_id, distinct_id))
        if row is None:
            return None
        return PersonView(row[0], bool(row[1]), row[2])

    def _add_id(self, project_id: int, distinct_id: str, person_id: int, now_ms: int) -> None:
        seq = self.sql.new_ids("seq", 1)[0]
        self.sql.run(_INSERT_IDS, (project_id, distinct_id, person_id, now_ms, seq))
        self._known.add((project_id, distinct_id))

    def _new_person(self, project_id: int, now_ms: int, identified: bool) -> int:
        person_id = self.sql.new_ids("person", 1)[0]
        self.sql.run(
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
        unverified: str | None = None,
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
            row = self.sql.one(
                "SELECT target_distinct_id FROM aliases WHERE project_id = ? AND alias = ?", (project_id, to_id)
            )
            if row is not None and row[0] != from_id:
                owner = self._person(project_id, row[0])
                alias_taken = owner is None or from_person is None or owner.person_id != from_person.person_id
        decision = identity.decide(
            kind, from_id, to_id, from_person=from_person, to_person=to_person, cap=self.cap, alias_taken=alias_taken
        )
        if unverified is not None and (decision.result == "merged" or decision.register_alias):
            decision = Decision("refused", identity.UNVERIFIED, unverified)
        if decision.result == "merged":
            self._merge(project_id, from_id, to_id, from_person, to_person, decision, now_ms)
        if decision.register_alias:
            self.sql.run(
                "INSERT INTO aliases(project_id, alias, target_distinct_id, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (project_id, to_id, from_id, now_ms),
            )
        if decision.result != "noop" or log_noop:
            self._log(project_id, kind, from_id, to_id, decision, event, now_ms)

    def _log(
        self, project_id: int, kind: str, from_id: str, to_id: str, decision: Decision, event: EventRecord, now_ms: int
    ) -> None:
        """Append to the merge log (identical refusals and no-ops are kept once)."""
        self.sql.run(
            _INSERT_MERGE,
            (
                project_id, event.insert_id, kind, from_id[:256], to_id[:256], decision.result,
                decision.reason or "", decision.detail, event.time_ms, now_ms, *self._source,
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
        sql = self.sql
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
                sql.run("UPDATE persons SET is_identified = 1 WHERE id = ?", (person.person_id,))
            return
        target, source = (to_person, from_person) if decision.target == "to" else (from_person, to_person)
        rows = {
            row[0]: row[1:]
            for row in sql.all(
                "SELECT id, properties, created_at FROM persons WHERE id IN (?, ?)",
                (target.person_id, source.person_id),
            )
        }
        target_props, target_created = rows[target.person_id]
        source_props, source_created = rows[source.person_id]
        merged = profiles.merge_properties(loads_json(target_props), loads_json(source_props))
        sql.run(
            "UPDATE person_distinct_ids SET person_id = ? WHERE person_id = ?", (target.person_id, source.person_id)
        )
        sql.run(
            "UPDATE persons SET properties = ?, is_identified = ?, created_at = ? WHERE id = ?",
            (
                dumps_json(merged),
                int(decision.identified or target.identified or source.identified),
                min(target_created, source_created),
                target.person_id,
            ),
        )
        sql.run("DELETE FROM persons WHERE id = ?", (source.person_id,))
