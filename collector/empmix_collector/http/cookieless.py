"""Cookieless ids on the way in: the request-side part of cookieless operation (issue 19).

Runs on each decoded request before validation, so the rest of the pipeline sees ordinary
anonymous ids (``domain.cookieless`` has the hash, ``store.cookieless`` the salts):

* the sentinel ``"$cookieless"`` in an event's ``properties.distinct_id``, an ``$identify``'s
  ``$anon_distinct_id`` / ``$anon_id``, or a profile or group record's ``$distinct_id`` becomes
  this browser's cookieless id of the UTC day (client address, ``User-Agent``, the page's host
  from ``$current_url`` else ``Origin``);
* ``$cookieless_reset`` moves that browser's id of the day to its next generation (the reset
  event itself keeps the id it had);
* a record with ``$device_id`` and ``$cookieless_link: true`` is told (through
  ``Context.cookieless_links``) to join this request's cookieless id to its device.

Nothing here stores the address or the user agent: they enter the keyed hash and are dropped.

Example::

    ids = CookielessIds(settings, store)                 # ids.clock = lambda: ms  (tests)
    links = await ids.apply(request, "track", payload, store.projects, None)
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from empmix_collector.domain import cookieless as ck
from empmix_collector.domain.wire import Payload
from empmix_collector.settings import Settings
from empmix_collector.store.base import Store
from empmix_web.ids import is_insert_id

__all__ = ["CookielessIds"]

_ANON_FIELDS = ("$anon_distinct_id", "$anon_id")


def _wall_clock_ms() -> int:
    return int(time.time() * 1000)


@dataclass(slots=True)
class _Work:
    """One record that needs its request's cookieless id."""

    index: int
    project_id: int
    host: str
    target: dict[str, Any]  # the object holding the id fields (properties, or the profile record)
    fields: list[str]  # those of its fields that hold the sentinel
    reset_id: str | None  # the $insert_id of a $cookieless_reset
    link: bool  # $device_id with $cookieless_link: true


def _token_project(token: Any, projects: dict[str, int], default_project: int | None) -> int | None:
    if type(token) is str and token:
        return projects.get(token)
    return default_project


def _inspect(index: int, raw: Any, endpoint: str, projects: dict[str, int], default: int | None) -> _Work | None:
    """What record ``raw`` needs, or ``None`` (nothing cookieless about it, or no project)."""
    if type(raw) is not dict:
        return None
    if endpoint in ("engage", "groups"):
        target, token = raw, raw.get("$token")
        fields = ["$distinct_id"] if raw.get("$distinct_id") == ck.COOKIELESS else []
        reset_id, link = None, False
    else:
        props = raw.get("properties")
        if type(props) is not dict:
            return None
        name = raw.get("event")
        is_sentinel = props.get("distinct_id") == ck.COOKIELESS
        if not is_sentinel and ck.LINK_KEY not in props and name != "$identify" and name != ck.RESET_EVENT:
            return None  # the common case, kept cheap: this runs for every record
        target, token = props, props.get("token")
        fields = ["distinct_id"] if is_sentinel else []
        if name == "$identify":
            fields += [key for key in _ANON_FIELDS if props.get(key) == ck.COOKIELESS]
        reset_id = None
        if name == ck.RESET_EVENT:
            sent = props.get("$insert_id")
            if sent is None:
                reset_id = uuid.uuid4().hex
            elif is_insert_id(sent):
                reset_id = sent  # else validation refuses the record: no reset
        link = props.get(ck.LINK_KEY) is True and props.get("$device_id") not in (None, "")
    if not fields and reset_id is None and not link:
        return None
    project_id = _token_project(token, projects, default)
    if project_id is None:
        return None  # validation refuses it
    return _Work(index, project_id, ck.page_host(target.get("$current_url"), None), target, fields, reset_id, link)


class CookielessIds:
    """Puts cookieless ids in place of the sentinel; one per app.

    Attributes:
        clock: milliseconds since the epoch; the UTC day of the salt comes from it (tests
            replace it to move days without waiting).
    """

    def __init__(self, settings: Settings, store: Store, clock: Callable[[], int] = _wall_clock_ms) -> None:
        self.store = store
        self.trust_proxy = settings.trust_proxy
        self.keep_days = settings.cookieless_salt_days
        self.clock = clock
        self._day = -1
        self._salts: dict[int, str] = {}  # project -> salt of self._day (a salt never changes)

    async def _salt(self, project_id: int, day: int, now_ms: int) -> str:
        if day != self._day:
            self._salts.clear()
            self._day = day
        salt = self._salts.get(project_id)
        if salt is None:
            salt = await self.store.cookieless_salt(project_id, day, ck.new_salt(), now_ms, self.keep_days)
            self._salts[project_id] = salt
        return salt

    async def apply(
        self, request: Request, endpoint: str, payload: Payload, projects: dict[str, int], default: int | None
    ) -> dict[int, str]:
        """Rewrite ``payload``'s records in place; returns record index -> cookieless id for
        the records that link it to their device.

        Raises:
            StoreError: the salt or the generations could not be read or stored.
        """
        work = [w for i, raw in enumerate(payload.records) if (w := _inspect(i, raw, endpoint, projects, default))]
        if not work:
            return {}
        now_ms = self.clock()
        day = ck.utc_day(now_ms)
        client = request.client
        ip = ck.client_ip(client.host if client else None, request.headers.getlist("x-forwarded-for"), self.trust_proxy)
        user_agent = request.headers.get("user-agent", "")
        origin_host = ck.page_host(request.headers.get("origin"), None)
        bases: dict[tuple[int, str], tuple[str, str]] = {}  # (project, host) -> (salt, base hash)
        for w in work:
            host = w.host or origin_host
            if (w.project_id, host) not in bases:
                salt = await self._salt(w.project_id, day, now_ms)
                base = ck.base_hash(salt, project_id=w.project_id, ip=ip, user_agent=user_agent, host=host)
                bases[(w.project_id, host)] = (salt, base)
            w.host = host
        generations: dict[tuple[int, str], int] = {}
        for project_id in {w.project_id for w in work}:
            mine = [base for (p, _), (_, base) in bases.items() if p == project_id]
            found = await self.store.cookieless_generations(project_id, day, mine)
            generations.update(((project_id, base), found.get(base, 0)) for base in mine)
        links: dict[int, str] = {}
        if payload.texts is not None and any(w.fields for w in work):
            payload.texts = None  # the texts as received still hold the sentinel
        for w in work:
            salt, base = bases[(w.project_id, w.host)]
            key = (w.project_id, base)
            generation = generations[key]
            if w.reset_id is not None:
                generation, generations[key] = await self.store.cookieless_reset(
                    w.project_id, day, base, w.reset_id, now_ms
                )
            visitor = ck.visitor_id(salt, base, generation)
            for name in w.fields:
                w.target[name] = visitor
            if w.link:
                links[w.index] = ck.visitor_id(salt, base, generations[key])
        return links
