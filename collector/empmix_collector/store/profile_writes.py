"""The ``/engage`` and ``/groups`` records of one batch, inside the writer's transaction.

Each profile a batch touches is read once, its records apply in order to one
:class:`~empmix_collector.domain.profiles.ProfileState` (in place, each operation
costing what it touches), and it is written once when the batch's records are done
(:meth:`ProfileWrites.flush`). So 2,000 ``$set`` records on a 240 KB profile parse and
serialise it once, not 2,000 times. A record with a ``$insert_id`` is applied once
however often it arrives (``profile_updates`` / ``group_updates``); a replay is undone
from the state. The records of one request cost at most ``MAX_PROFILE_WORK``; the
records past it are rejected.

Example::

    writes = ProfileWrites(sql)
    rejection = writes.person(record, now_ms)   # None, or why the record was not applied
    writes.flush(now_ms)                         # before anything else reads the profiles
"""

from __future__ import annotations

from dataclasses import dataclass

from empmix_collector.domain import profiles
from empmix_collector.domain.profiles import ProfileError, ProfileState
from empmix_collector.domain.records import GroupRecord, ProfileRecord, Rejection
from empmix_collector.store.sql import WriteSql

__all__ = ["ProfileWrites"]

_PERSON_OF = (
    "SELECT p.id, p.properties FROM person_distinct_ids m JOIN persons p ON p.id = m.person_id"
    " WHERE m.project_id = ? AND m.distinct_id = ?"
)
_GROUP_WHERE = "project_id = ? AND group_key = ? AND group_id = ?"
GroupKey = tuple[int, str, str]


@dataclass
class _Group:
    state: ProfileState
    stored: bool  # a row exists in group_profiles
    deleted: bool = False  # the last record ended with $delete: no row at flush
    renewed: bool = False  # a $delete happened: a row written at flush starts anew (created_at)


def _state(text: str) -> ProfileState:
    try:
        return ProfileState.from_text(text)
    except ValueError:  # a profile an older collector stored unreadably: start it afresh
        return ProfileState({})


class ProfileWrites:
    """Profile and group records of one batch, on cached states (one per profile)."""

    def __init__(self, sql: WriteSql) -> None:
        self.sql = sql
        self._persons: dict[int, ProfileState] = {}
        self._person_ids: dict[tuple[int, str], int] = {}
        self._groups: dict[GroupKey, _Group] = {}
        self._work = 0

    def _charge(self, state: ProfileState, record_index: int, ops: list[tuple[str, object]]) -> Rejection | None:
        """Apply ``ops`` within the request's work budget (or reject, nothing applied)."""
        op = ops[-1][0] if ops else None
        if self._work >= profiles.MAX_PROFILE_WORK:
            return Rejection(record_index, _over_budget(), op)
        try:
            cost = state.apply(ops)
        except ProfileError as exc:
            return Rejection(record_index, str(exc), exc.op)
        self._work += cost
        if self._work > profiles.MAX_PROFILE_WORK:
            state.revert()
            return Rejection(record_index, _over_budget(), op)
        return None

    def person(self, record: ProfileRecord, now_ms: int) -> Rejection | None:
        """Apply one ``/engage`` record to its person's cached profile."""
        key = (record.project_id, record.distinct_id)
        person_id = self._person_ids.get(key)
        if person_id is None:
            row = self.sql.one(_PERSON_OF, key)
            if row is None:  # pragma: no cover - the batch writer gave every id a person
                raise RuntimeError(f"no person for {record.distinct_id!r}")
            person_id = int(row[0])
            self._person_ids[key] = person_id
            if person_id not in self._persons:
                self._persons[person_id] = _state(row[1])
        state = self._persons[person_id]
        rejection = self._charge(state, record.index, record.ops)
        if rejection is not None:
            return Rejection(rejection.index, rejection.reason, rejection.field, record.insert_id)
        if record.insert_id is not None and not self.sql.all(
            "INSERT INTO profile_updates(project_id, insert_id, distinct_id, received_ms) VALUES (?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING RETURNING insert_id",
            (record.project_id, record.insert_id, record.distinct_id, now_ms),
        ):
            state.revert()  # a replay: applied once already
        return None

    def group(self, record: GroupRecord, now_ms: int) -> Rejection | None:
        """Apply one ``/groups`` record: same operations and limits as a person's profile;
        ``$delete`` removes the group's profile (a later ``$set`` starts a new one)."""
        key = (record.project_id, record.group_key, record.group_id)
        group = self._groups.get(key)
        if group is None:
            row = self.sql.one(f"SELECT properties FROM group_profiles WHERE {_GROUP_WHERE}", key)
            group = _Group(_state(row[0]) if row is not None else ProfileState({}, 2), row is not None)
            self._groups[key] = group
        before = (group.deleted, group.renewed)
        rejection = self._charge(group.state, record.index, record.ops)
        if rejection is not None:
            return Rejection(rejection.index, rejection.reason, rejection.field, record.insert_id)
        if record.insert_id is not None and not self.sql.all(
            "INSERT INTO group_updates(project_id, insert_id, group_key, group_id, received_ms)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING insert_id",
            (record.project_id, record.insert_id, record.group_key, record.group_id, now_ms),
        ):
            group.state.revert()  # a replay: applied once already
            return None
        ops = [op for op, _ in record.ops]
        group.deleted = ops[-1] == "$delete"
        group.renewed = before[1] or "$delete" in ops
        return None

    def flush(self, now_ms: int) -> None:
        """Write every profile the batch changed, once each; the cache is then empty."""
        for person_id, state in self._persons.items():
            if state.updates:
                self.sql.run("UPDATE persons SET properties = ? WHERE id = ?", (state.encode(), person_id))
        for key, group in self._groups.items():
            if not group.state.updates:
                continue
            if group.deleted:
                if group.stored:
                    self.sql.run(f"DELETE FROM group_profiles WHERE {_GROUP_WHERE}", key)
            elif group.stored and not group.renewed:
                self.sql.run(
                    f"UPDATE group_profiles SET properties = ?, updated_at = ? WHERE {_GROUP_WHERE}",
                    (group.state.encode(), now_ms, *key),
                )
            else:
                if group.stored:
                    self.sql.run(f"DELETE FROM group_profiles WHERE {_GROUP_WHERE}", key)
                self.sql.run(
                    "INSERT INTO group_profiles(project_id, group_key, group_id, created_at, updated_at, properties)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (*key, now_ms, now_ms, group.state.encode()),
                )
        self._persons.clear()
        self._person_ids.clear()
        self._groups.clear()
        self._work = 0


def _over_budget() -> str:
    return (
        f"the profile records of this request pass {profiles.MAX_PROFILE_WORK} units of work;"
        " send the rest in another request"
    )
