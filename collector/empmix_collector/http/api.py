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
==============================================  =============================================
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, overload

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from empmix_collector.domain.analysis import DAY_MS, UNITS_MS
from empmix_collector.http.disconnect import unless_gone
from empmix_collector.http.hosts import is_loopback_address
from empmix_collector.http.ingest import secret_matches
from empmix_collector.settings import Settings
from empmix_collector.store.base import QueryTooBig, QueryTooLong, Store, StoreError

__all__ = ["QueryAPI", "DEFAULT_WINDOW_MS"]

DEFAULT_WINDOW_MS = 30 * DAY_MS
"""Funnel conversion window when ``window_ms`` is not given."""
_MAX_TIME = 2**53
_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?", re.ASCII)
"""ASCII decimal digits, optionally a fraction and an exponent (``1000``, ``1e3``, ``1000.0``)."""


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _reply(body: Any, status: int = 200) -> Response:
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


@overload
def _int_param(request: Request, name: str, default: int, lo: int, hi: int) -> int: ...
@overload
def _int_param(request: Request, name: str, default: None, lo: int, hi: int) -> int | None: ...
def _int_param(request: Request, name: str, default: int | None, lo: int, hi: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if len(raw) > 40 or _NUMBER.fullmatch(raw) is None:  # int() and float() also take 1_000 and ١٢
        raise _BadRequest(400, f"{name}={raw[:40]!r} is not an integer")
    try:
        value = int(raw)
    except ValueError:
        as_float = float(raw)
        if not as_float.is_integer():
            raise _BadRequest(400, f"{name}={raw[:40]!r} is not an integer") from None
        value = int(as_float)
    if not lo <= value <= hi:
        raise _BadRequest(400, f"{name}={value} is out of range [{lo}, {hi}]")
    return value


def _choice(request: Request, name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = request.query_params.get(name) or default
    if value not in allowed:
        raise _BadRequest(400, f"{name}={value[:40]!r}: expected one of {', '.join(allowed)}")
    return value


def _by(request: Request) -> tuple[str, str | None]:
    """``by`` (``person``, ``distinct_id`` or ``group``) and, for ``group``, its ``group_key``."""
    by = _choice(request, "by", "person", ("person", "distinct_id", "group"))
    group_key = request.query_params.get("group_key")
    if by != "group":
        if group_key:
            raise _BadRequest(400, "group_key is used with by=group only")
        return by, None
    if not group_key or not group_key.strip():
        raise _BadRequest(400, "by=group needs group_key=K (the event property holding the group ids)")
    if len(group_key) > 255:
        raise _BadRequest(400, "group_key is longer than 255 characters")
    return by, group_key


class QueryAPI:
    """Read endpoints bound to one settings object and one store."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store

    async def healthz(self, request: Request) -> Response:
        """``GET /healthz`` -> ``{"ok": true}`` (no auth; used by fixtures and probes)."""
        return _reply({"ok": True})

    def _project(self, request: Request) -> int:
        if self.settings.secret is None:
            client = request.client
            if client is None or not is_loopback_address(client.host):
                raise _BadRequest(
                    403, "the query API answers loopback clients only: this collector was started without --secret"
                )
        elif not secret_matches(request.headers.get("authorization"), self.settings.secret):
            raise _BadRequest(401, "the query API needs Authorization: Bearer <secret>")
        token = request.query_params.get("token") or self.settings.default_token
        project = self.store.projects.get(token)
        if project is None:
            raise _BadRequest(404, f"unknown token {token[:64]!r}")
        return project

    async def _run(self, request: Request, handler: Callable[[Request, int], Awaitable[Response]]) -> Response:
        try:
            project = self._project(request)
            return await unless_gone(request, handler(request, project))  # a client gone cancels the read
        except _BadRequest as exc:
            headers = {"WWW-Authenticate": 'Bearer realm="empmix-collector"'} if exc.status == 401 else None
            return JSONResponse({"error": exc.message}, status_code=exc.status, headers=headers)
        except QueryTooLong as exc:
            return JSONResponse({"error": str(exc)}, status_code=503)
        except QueryTooBig as exc:
            return JSONResponse({"error": str(exc)}, status_code=413)
        except StoreError as exc:
            return JSONResponse({"error": f"store unavailable: {exc}"}, status_code=503, headers={"Retry-After": "1"})

    async def person(self, request: Request) -> Response:
        """``GET /api/persons/{distinct_id}``."""

        async def handler(request: Request, project: int) -> Response:
            distinct_id = request.path_params["distinct_id"]
            found = await self.store.get_person(project, distinct_id)
            if found is None:
                return _reply({"error": f"no person has distinct_id {distinct_id[:80]!r}"}, 404)
            return _reply(found)

        return await self._run(request, handler)

    async def person_events(self, request: Request) -> Response:
        """``GET /api/persons/{distinct_id}/events``: all events of the person, time order."""

        async def handler(request: Request, project: int) -> Response:
            distinct_id = request.path_params["distinct_id"]
            limit = _int_param(request, "limit", 10_000, 1, 100_000)
            events = await self.store.person_events(project, distinct_id, limit)
            if events is None:
                return _reply({"error": f"no person has distinct_id {distinct_id[:80]!r}"}, 404)
            return _reply({"events": events})

        return await self._run(request, handler)

    async def person_sessions(self, request: Request) -> Response:
        """``GET /api/persons/{distinct_id}/sessions``: the person's sessions, oldest first."""

        async def handler(request: Request, project: int) -> Response:
            distinct_id = request.path_params["distinct_id"]
            sessions = await self.store.person_sessions(project, distinct_id)
            if sessions is None:
                return _reply({"error": f"no person has distinct_id {distinct_id[:80]!r}"}, 404)
            return _reply({"sessions": sessions})

        return await self._run(request, handler)

    async def group(self, request: Request) -> Response:
        """``GET /api/groups/{group_key}/{group_id}``: one group's profile."""

        async def handler(request: Request, project: int) -> Response:
            group_key = request.path_params["group_key"]
            group_id = request.path_params["group_id"]
            found = await self.store.get_group(project, group_key, group_id)
            if found is None:
                return _reply({"error": f"no group {group_key[:80]!r} {group_id[:80]!r}"}, 404)
            return _reply(found)

        return await self._run(request, handler)

    async def groups(self, request: Request) -> Response:
        """``GET /api/groups?group_key=K``: the groups of one key with their members."""

        async def handler(request: Request, project: int) -> Response:
            group_key = request.query_params.get("group_key", "")
            if not group_key.strip():
                raise _BadRequest(400, "group_key=K is required")
            limit = _int_param(request, "limit", 1000, 1, 10_000)
            return _reply({"group_key": group_key, "groups": await self.store.list_groups(project, group_key, limit)})

        return await self._run(request, handler)

    async def persons(self, request: Request) -> Response:
        """``GET /api/persons``: persons with their ids, newest first."""

        async def handler(request: Request, project: int) -> Response:
            limit = _int_param(request, "limit", 100, 1, 10_000)
            offset = _int_param(request, "offset", 0, 0, _MAX_TIME)
            return _reply({"persons": await self.store.list_persons(project, limit, offset)})

        return await self._run(request, handler)

    async def events(self, request: Request) -> Response:
        """``GET /api/events``: the latest events, newest first."""

        async def handler(request: Request, project: int) -> Response:
            limit = _int_param(request, "limit", 100, 1, 10_000)
            return _reply({"events": await self.store.latest_events(project, limit)})

        return await self._run(request, handler)

    async def merges(self, request: Request) -> Response:
        """``GET /api/merges``: the merge log, oldest first."""

        async def handler(request: Request, project: int) -> Response:
            limit = _int_param(request, "limit", 10_000, 1, 100_000)
            return _reply({"merges": await self.store.merge_log(project, limit)})

        return await self._run(request, handler)

    async def cookieless(self, request: Request) -> Response:
        """``GET /api/cookieless``: how many persons were counted only thanks to cookieless mode."""

        async def handler(request: Request, project: int) -> Response:
            return _reply(await self.store.cookieless_report(project))

        return await self._run(request, handler)

    async def funnel(self, request: Request) -> Response:
        """``GET /api/funnel?steps=A,B,C``: persons (or ``by=distinct_id``) reaching each step."""

        async def handler(request: Request, project: int) -> Response:
            raw = request.query_params.get("steps", "")
            steps = [step.strip() for step in raw.split(",") if step.strip()]
            if not steps:
                raise _BadRequest(400, "steps=A,B,... is required")
            if len(steps) > 20:
                raise _BadRequest(400, "at most 20 steps")
            lo = _int_param(request, "from", None, -_MAX_TIME, _MAX_TIME)
            hi = _int_param(request, "to", None, -_MAX_TIME, _MAX_TIME)
            window = _int_param(request, "window_ms", DEFAULT_WINDOW_MS, 0, _MAX_TIME)
            by, group_key = _by(request)
            result = await self.store.funnel(project, steps, lo, hi, window, by, group_key)
            body: dict[str, Any] = {"steps": result, "by": by, "window_ms": window}
            if group_key is not None:
                body["group_key"] = group_key
            return _reply(body)

        return await self._run(request, handler)

    async def retention(self, request: Request) -> Response:
        """``GET /api/retention?born=E&returned=E``: cohort table by person (or distinct_id)."""

        async def handler(request: Request, project: int) -> Response:
            born = request.query_params.get("born", "")
            returned = request.query_params.get("returned", "")
            if not born or not returned:
                raise _BadRequest(400, "born=EVENT and returned=EVENT are required")
            lo = _int_param(request, "from", None, -_MAX_TIME, _MAX_TIME)
            hi = _int_param(request, "to", None, -_MAX_TIME, _MAX_TIME)
            unit = _choice(request, "unit", "day", tuple(UNITS_MS))
            by, group_key = _by(request)
            cohorts = await self.store.retention(project, born, returned, lo, hi, unit, by, group_key)
            body: dict[str, Any] = {"cohorts": cohorts, "unit": unit, "by": by}
            if group_key is not None:
                body["group_key"] = group_key
            return _reply(body)

        return await self._run(request, handler)

    async def startup(self, request: Request) -> Response:
        """``GET /api/startup``: visits, the share left before Python was ready, ready times."""

        async def handler(request: Request, project: int) -> Response:
            lo = _int_param(request, "from", None, -_MAX_TIME, _MAX_TIME)
            hi = _int_param(request, "to", None, -_MAX_TIME, _MAX_TIME)
            return _reply(await self.store.startup(project, lo, hi))

        return await self._run(request, handler)
