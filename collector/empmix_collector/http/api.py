"""The JSON query API under ``/api``, plus ``/healthz``.

With a secret configured every ``/api`` call needs ``Authorization: Bearer SECRET``
(401 otherwise). ``?token=T`` picks the project; the default is the first ``--token``.

==============================================  =============================================
``GET /api/persons/{distinct_id}``              ``{person_id, distinct_ids, identified, cookieless, properties, ...}``
``GET /api/persons/{distinct_id}/events``       ``{"events": [{event, distinct_id, time, insert_id, properties}]}``
``GET /api/persons/{distinct_id}/sessions``     ``{"sessions": [{session_id, start, end, events}]}``
``GET /api/persons?limit=&offset=``             ``{"persons": [...]}`` newest first
``GET /api/groups/{group_key}/{group_id}``      ``{group_key, group_id, properties, created_at, updated_at}``
``GET /api/groups?group_key=K&limit=``          ``{"groups": [{group_key, group_id, properties, members, events}]}``
``GET /api/events?limit=``                      ``{"events": [... + person_id]}`` newest first
``GET /api/merges?limit=``                      ``{"merges": [{kind, from_id, to_id, result, reason, time, ...}]}``
``GET /api/funnel?steps=A,B&from=&to=&window_ms=&by=[&group_key=]``   ``{"steps": [{event, count}], "by": ...}``
``GET /api/retention?born=&returned=&from=&to=&unit=&by=[&group_key=]``  ``{"cohorts": [{start, size, returned}]}``
``GET /api/startup?from=&to=``                  ``{visits, left_before_ready, ..._share, ready, histogram}``
``GET /api/cookieless``                         ``{persons, cookieless_only}``: persons with only cookieless ids
``GET /api/writer?after=SEQ``                   the writer's per-group timings (``store.writer_stats``), load gauges
==============================================  =============================================
"""

from __future__ import annotations

import re
from typing import Any, overload

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from empmix_collector.domain.analysis import DAY_MS, UNITS_MS
from empmix_collector.http.errors import BadParameter, LoopbackOnly, NeedsSecret, NotFound
from empmix_collector.http.hosts import is_loopback_address
from empmix_collector.http.inputs import secret_matches
from empmix_collector.settings import Settings
from empmix_collector.store.base import Store

__all__ = ["QueryAPI", "DEFAULT_WINDOW_MS"]

DEFAULT_WINDOW_MS = 30 * DAY_MS
"""Funnel conversion window when ``window_ms`` is not given."""
_MAX_TIME = 2**53
_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?", re.ASCII)
"""ASCII decimal digits, optionally a fraction and an exponent (``1000``, ``1e3``, ``1000.0``)."""


def _reply(body: Any) -> Response:
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@overload
def _int_param(request: Request, name: str, default: int, lo: int, hi: int) -> int: ...
@overload
def _int_param(request: Request, name: str, default: None, lo: int, hi: int) -> int | None: ...
def _int_param(request: Request, name: str, default: int | None, lo: int, hi: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if len(raw) > 40 or _NUMBER.fullmatch(raw) is None:  # int() and float() also take 1_000 and ١٢
        raise BadParameter(f"{name}={raw[:40]!r} is not an integer")
    try:
        value = int(raw)
    except ValueError:
        as_float = float(raw)
        if not as_float.is_integer():
            raise BadParameter(f"{name}={raw[:40]!r} is not an integer") from None
        value = int(as_float)
    if not lo <= value <= hi:
        raise BadParameter(f"{name}={value} is out of range [{lo}, {hi}]")
    return value


def _choice(request: Request, name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = request.query_params.get(name) or default
    if value not in allowed:
        raise BadParameter(f"{name}={value[:40]!r}: expected one of {', '.join(allowed)}")
    return value


def _by(request: Request) -> tuple[str, str | None]:
    """``by`` (``person``, ``distinct_id`` or ``group``) and, for ``group``, its ``group_key``."""
    by = _choice(request, "by", "person", ("person", "distinct_id", "group"))
    group_key = request.query_params.get("group_key")
    if by != "group":
        if group_key:
            raise BadParameter("group_key is used with by=group only")
        return by, None
    if not group_key or not group_key.strip():
        raise BadParameter("by=group needs group_key=K (the event property holding the group ids)")
    if len(group_key) > 255:
        raise BadParameter("group_key is longer than 255 characters")
    return by, group_key


def _no_person(distinct_id: str) -> NotFound:
    return NotFound(f"no person has distinct_id {distinct_id[:80]!r}")


class QueryAPI:
    """Read endpoints bound to one settings object and one store.

    Each endpoint checks the caller (:meth:`_project`) and raises the typed errors of
    ``http.errors``, which the application's exception handlers answer.
    """

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store

    async def healthz(self, request: Request) -> Response:
        """``GET /healthz`` -> ``{"ok": true}`` (no auth; used by fixtures and probes)."""
        return _reply({"ok": True})

    def _project(self, request: Request) -> int:
        """The project the caller may read (``?token=``, else the first ``--token``)."""
        if self.settings.secret is None:
            client = request.client
            if client is None or not is_loopback_address(client.host):
                raise LoopbackOnly(
                    "the query API answers loopback clients only: this collector was started without --secret"
                )
        elif not secret_matches(request.headers.get("authorization"), self.settings.secret):
            raise NeedsSecret("the query API needs Authorization: Bearer <secret>")
        token = request.query_params.get("token") or self.settings.default_token
        project = self.store.projects.get(token)
        if project is None:
            raise NotFound(f"unknown token {token[:64]!r}")
        return project

    async def person(self, request: Request) -> Response:
        """``GET /api/persons/{distinct_id}``."""
        project = self._project(request)
        distinct_id = request.path_params["distinct_id"]
        found = await self.store.get_person(project, distinct_id)
        if found is None:
            raise _no_person(distinct_id)
        return _reply(found)

    async def person_events(self, request: Request) -> Response:
        """``GET /api/persons/{distinct_id}/events``: all events of the person, time order."""
        project = self._project(request)
        distinct_id = request.path_params["distinct_id"]
        limit = _int_param(request, "limit", 10_000, 1, 100_000)
        events = await self.store.person_events(project, distinct_id, limit)
        if events is None:
            raise _no_person(distinct_id)
        return _reply({"events": events})

    async def person_sessions(self, request: Request) -> Response:
        """``GET /api/persons/{distinct_id}/sessions``: the person's sessions, oldest first."""
        project = self._project(request)
        distinct_id = request.path_params["distinct_id"]
        sessions = await self.store.person_sessions(project, distinct_id)
        if sessions is None:
            raise _no_person(distinct_id)
        return _reply({"sessions": sessions})

    async def group(self, request: Request) -> Response:
        """``GET /api/groups/{group_key}/{group_id}``: one group's profile."""
        project = self._project(request)
        group_key = request.path_params["group_key"]
        group_id = request.path_params["group_id"]
        found = await self.store.get_group(project, group_key, group_id)
        if found is None:
            raise NotFound(f"no group {group_key[:80]!r} {group_id[:80]!r}")
        return _reply(found)

    async def groups(self, request: Request) -> Response:
        """``GET /api/groups?group_key=K``: the groups of one key with their members."""
        project = self._project(request)
        group_key = request.query_params.get("group_key", "")
        if not group_key.strip():
            raise BadParameter("group_key=K is required")
        limit = _int_param(request, "limit", 1000, 1, 10_000)
        return _reply({"group_key": group_key, "groups": await self.store.list_groups(project, group_key, limit)})

    async def persons(self, request: Request) -> Response:
        """``GET /api/persons``: persons with their ids, newest first."""
        project = self._project(request)
        limit = _int_param(request, "limit", 100, 1, 10_000)
        offset = _int_param(request, "offset", 0, 0, _MAX_TIME)
        return _reply({"persons": await self.store.list_persons(project, limit, offset)})

    async def events(self, request: Request) -> Response:
        """``GET /api/events``: the latest events, newest first."""
        project = self._project(request)
        limit = _int_param(request, "limit", 100, 1, 10_000)
        return _reply({"events": await self.store.latest_events(project, limit)})

    async def merges(self, request: Request) -> Response:
        """``GET /api/merges``: the merge log, oldest first."""
        project = self._project(request)
        limit = _int_param(request, "limit", 10_000, 1, 100_000)
        return _reply({"merges": await self.store.merge_log(project, limit)})

    async def cookieless(self, request: Request) -> Response:
        """``GET /api/cookieless``: how many persons were counted only thanks to cookieless mode."""
        project = self._project(request)
        return _reply(await self.store.cookieless_report(project))

    async def funnel(self, request: Request) -> Response:
        """``GET /api/funnel?steps=A,B,C``: persons (or ``by=distinct_id``) reaching each step."""
        project = self._project(request)
        raw = request.query_params.get("steps", "")
        steps = [step.strip() for step in raw.split(",") if step.strip()]
        if not steps:
            raise BadParameter("steps=A,B,... is required")
        if len(steps) > 20:
            raise BadParameter("at most 20 steps")
        lo = _int_param(request, "from", None, -_MAX_TIME, _MAX_TIME)
        hi = _int_param(request, "to", None, -_MAX_TIME, _MAX_TIME)
        window = _int_param(request, "window_ms", DEFAULT_WINDOW_MS, 0, _MAX_TIME)
        by, group_key = _by(request)
        result = await self.store.funnel(project, steps, lo, hi, window, by, group_key)
        body: dict[str, Any] = {"steps": result, "by": by, "window_ms": window}
        if group_key is not None:
            body["group_key"] = group_key
        return _reply(body)

    async def retention(self, request: Request) -> Response:
        """``GET /api/retention?born=E&returned=E``: cohort table by person (or distinct_id)."""
        project = self._project(request)
        born = request.query_params.get("born", "")
        returned = request.query_params.get("returned", "")
        if not born or not returned:
            raise BadParameter("born=EVENT and returned=EVENT are required")
        lo = _int_param(request, "from", None, -_MAX_TIME, _MAX_TIME)
        hi = _int_param(request, "to", None, -_MAX_TIME, _MAX_TIME)
        unit = _choice(request, "unit", "day", tuple(UNITS_MS))
        by, group_key = _by(request)
        cohorts = await self.store.retention(project, born, returned, lo, hi, unit, by, group_key)
        body: dict[str, Any] = {"cohorts": cohorts, "unit": unit, "by": by}
        if group_key is not None:
            body["group_key"] = group_key
        return _reply(body)

    async def startup(self, request: Request) -> Response:
        """``GET /api/startup``: visits, the share left before Python was ready, ready times."""
        project = self._project(request)
        lo = _int_param(request, "from", None, -_MAX_TIME, _MAX_TIME)
        hi = _int_param(request, "to", None, -_MAX_TIME, _MAX_TIME)
        return _reply(await self.store.startup(project, lo, hi))

    async def writer(self, request: Request) -> Response:
        """``GET /api/writer?after=SEQ``: how long the writer held each recent commit group
        (``hold_ms``), waited and committed, the checkpoints, GC pauses and the load shedder's
        gauges (``store.writer_stats``); only groups with ``seq > after`` are listed."""
        self._project(request)
        after = _int_param(request, "after", 0, 0, 2**62)
        stats = getattr(self.store, "writer_stats", None)
        body: dict[str, Any] = stats.snapshot(after) if stats is not None else {"seq": 0, "groups": []}
        load = getattr(request.app.state, "load", None)
        if load is not None:
            body["load"] = {
                "inflight_bytes": load.inflight_bytes,
                "inflight_requests": load.inflight_requests,
                "shed": load.shed,
            }
        body["pending"] = getattr(self.store, "pending", None)
        return _reply(body)
