"""``EmpMixClient``: the public API, gluing identity, storage, profiles and delivery together."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import replace
from random import getrandbits
from typing import Any

from . import people
from ._bridge import Browser
from .core import ConsoleHandler, Core
from .identity import Identity
from .queue import EVENT, PROFILE
from .validation import (
    check_event_name,
    check_names,
    check_number,
    check_properties,
    check_user_id,
    dumps,
    encode,
)

__version__ = "0.1.0"
log = logging.getLogger("empmix_web")

DEFAULT_API_HOST = "http://127.0.0.1:8000"
_TOKEN = re.compile(r"[A-Za-z0-9_.\-]{1,128}")


class NotInitializedError(RuntimeError):
    """A client method was called before ``init(token)``."""


class EmpMixClient:
    """One analytics client for one project token.

    ``EmpMixClient(token, **options)`` initialises at once; ``EmpMixClient()`` waits for
    :meth:`init`. Clients with different tokens keep separate state (storage keys and cookies
    are named after the token).
    """

    def __init__(self, token: str | None = None, **options: Any) -> None:
        self._core: Core | None = None
        if token is not None:
            self.init(token, **options)

    # -- setup --------------------------------------------------------------------------------
    def init(self, token: str, api_host: str = DEFAULT_API_HOST, batch_size: int = 50,
             flush_interval_ms: int = 1000, debug: bool = False, *,
             cookie_domain: str | None = None, cross_subdomain_cookie: bool = False,
             secure_cookie: bool | None = None, max_queue_size: int = 5000,
             opt_out_by_default: bool = False, browser: Any = None) -> None:
        """Start tracking for ``token``: load (or mint) the identity, resend what a previous page
        left queued, and start the sender. ``api_host`` is where the collector listens."""
        if not isinstance(token, str) or not _TOKEN.fullmatch(token):
            raise ValueError("token must be 1-128 characters of [A-Za-z0-9_.-]")
        if not isinstance(api_host, str) or not re.match(r"https?://", api_host):
            raise ValueError("api_host must be an http(s) URL")
        for name, value in (("batch_size", batch_size), ("flush_interval_ms", flush_interval_ms),
                            ("max_queue_size", max_queue_size)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int")
            if value < 1:
                raise ValueError(f"{name} must be at least 1")
        if cookie_domain is not None and not isinstance(cookie_domain, str):
            raise TypeError("cookie_domain must be a str")
        if self._core is not None:
            log.warning("empmix: init() called again; the client restarts with the new options")
        browser = browser or Browser()
        if not logging.getLogger("empmix_web").handlers:
            handler = ConsoleHandler(browser)
            handler.setFormatter(logging.Formatter("%(message)s"))
            log.addHandler(handler)
            log.setLevel(logging.INFO)
            log.propagate = False
        config = {
            "api_host": api_host, "batch_size": min(batch_size, 2000), "debug": bool(debug),
            "flush_interval_ms": flush_interval_ms, "cookie_domain": cookie_domain,
            "cross_subdomain_cookie": cross_subdomain_cookie, "secure_cookie": secure_cookie,
            "max_queue_size": max_queue_size, "opt_out_by_default": opt_out_by_default,
        }
        core = Core(token, browser, config)
        self._core = core
        core.identity.load()
        core.tabs.start()
        browser.on_page_hide(self._on_page_hide)
        if len(core.queue):
            core.sender.wake()

    def _c(self, method: str) -> Core:
        if self._core is None:
            raise NotInitializedError(f"call EmpMix.init(token) before {method}()")
        return self._core

    # -- events -------------------------------------------------------------------------------
    def _event_body(self, core: Core, event: str, ident: Identity, extra: dict[str, Any]) -> str:
        props: dict[str, Any] = {
            "token": core.token,
            "distinct_id": ident.distinct_id,
            "$device_id": ident.device_id,
            "time": int(time.time() * 1000),
            "$insert_id": f"{getrandbits(128):032x}",
            "mp_lib": "empmix-web",
            "$lib_version": __version__,
            "$current_url": core.browser.page_url(),
            "$referrer": core.referrer,
            "$screen_width": core.screen[0],
            "$screen_height": core.screen[1],
        }
        if ident.user_id is not None:
            props["$user_id"] = ident.user_id
        if not core.storage.persistent:
            props["$persistence"] = "memory"
        props.update(core.super_properties())
        props.update(extra)
        return encode({"event": event, "properties": props}, extra, "properties")

    def _enqueue(self, core: Core, kind: str, body: str) -> None:
        core.queue.push(kind, body)
        core.sender.queued()

    def track(self, event: str, properties: dict[str, Any] | None = None) -> None:
        """Record ``event`` now, with ``properties`` (they win over super properties)."""
        name = check_event_name(event)
        props = check_properties(properties, deep=False)
        core = self._c("track")
        if core.consent.opted_out:
            return
        self._enqueue(core, EVENT, self._event_body(core, name, core.identity.load(), props))

    def track_pageview(self, properties: dict[str, Any] | None = None) -> None:
        """Track a ``$mp_web_page_view`` event for the current page."""
        self.track("$mp_web_page_view", properties)

    # -- identity -----------------------------------------------------------------------------
    def identify(self, user_id: str | int, profile: dict[str, Any] | None = None) -> None:
        """Call at every login: link this browser's anonymous past to ``user_id``."""
        uid = check_user_id(user_id)
        profile = check_properties(profile, "profile")
        core = self._c("identify")
        ident = core.identity.load(fresh=True)
        if ident.user_id == uid:
            pass
        elif ident.identified:
            log.warning("empmix: identify(%r) while identified as %r: switching users without "
                        "linking them. Call reset() at logout.", uid, ident.user_id)
            core.identity.save(Identity(uid, ident.device_id, uid))
        else:
            new = core.identity.save(Identity(uid, ident.device_id, uid))
            if ident.alias != uid and not core.consent.opted_out:  # alias() already linked this pair
                self._enqueue(core, EVENT, self._event_body(core, "$identify", new, {
                    "distinct_id": uid, "$anon_distinct_id": ident.distinct_id,
                    "$device_id": ident.device_id, "$user_id": uid}))
            pending = people.normalise_pending(core.storage.get_json(core.people_key))
            core.storage.remove(core.people_key)
            for op, value in people.release(pending):
                self._profile(core, op, value)
        if profile:
            self._profile(core, "$set", profile)

    def alias(self, new_id: str | int) -> None:
        """Call once, at sign-up: tell the backend ``new_id`` is this anonymous visitor."""
        nid = check_user_id(new_id, "new_id")
        core = self._c("alias")
        ident = core.identity.load(fresh=True)
        if nid == ident.distinct_id or nid == ident.alias:
            return
        if ident.identified:
            log.warning("empmix: alias(%r) refused: already identified as %r (alias is for sign-up, "
                        "while anonymous).", nid, ident.user_id)
            return
        if ident.alias is not None:
            log.warning("empmix: alias(%r) refused: this visitor was already aliased to %r; call "
                        "identify(%r).", nid, ident.alias, ident.alias)
            return
        if not core.consent.opted_out:
            self._enqueue(core, EVENT, self._event_body(core, "$create_alias", ident, {
                "distinct_id": ident.distinct_id, "alias": nid}))
        core.identity.save(replace(ident, alias=nid))

    def reset(self) -> None:
        """Call at logout: forget the user and start a new anonymous visitor.

        Events already tracked keep the identity they were tracked under and are still
        delivered; the outbound queue and the consent choice are kept.
        """
        core = self._c("reset")
        core.identity.clear()
        core.forget_super_properties()
        core.storage.remove(core.people_key)
        core.identity.save(Identity.mint())

    def get_distinct_id(self) -> str:
        return self._c("get_distinct_id").identity.load(fresh=True).distinct_id

    def get_device_id(self) -> str:
        return self._c("get_device_id").identity.load(fresh=True).device_id

    def get_user_id(self) -> str | None:
        return self._c("get_user_id").identity.load(fresh=True).user_id

    # -- super properties ---------------------------------------------------------------------
    def register(self, props: dict[str, Any]) -> None:
        """Properties added to every later event of this browser (until reset)."""
        values = check_properties(props, "props")
        core = self._c("register")
        core.save_super_properties({**core.super_properties(), **values})

    def register_once(self, props: dict[str, Any]) -> None:
        """Like :meth:`register`, but never overwrites a property already registered."""
        values = check_properties(props, "props")
        core = self._c("register_once")
        current = core.super_properties()
        core.save_super_properties({**values, **current})

    def unregister(self, name: str) -> None:
        if not isinstance(name, str):
            raise TypeError("name must be a str")
        core = self._c("unregister")
        current = dict(core.super_properties())
        if name in current:
            del current[name]
            core.save_super_properties(current)

    # -- profiles -----------------------------------------------------------------------------
    def _profile(self, core: Core, op: str, value: Any) -> None:
        if core.consent.opted_out:
            return
        ident = core.identity.load()
        if not ident.identified:
            if op == "$delete":
                log.warning("empmix: delete_user() ignored: no identified user")
                return
            pending = people.normalise_pending(core.storage.get_json(core.people_key))
            people.hold(pending, op, value)
            core.storage.set_json(core.people_key, pending)
            return
        record = {"$token": core.token, "$distinct_id": ident.distinct_id, "$time": int(time.time() * 1000),
                  "$device_id": ident.device_id, "$user_id": ident.user_id, op: value}
        self._enqueue(core, PROFILE, dumps(record))

    def set_user_properties(self, props: dict[str, Any]) -> None:
        """``$set`` on the user's profile (held until identify while anonymous)."""
        self._profile(self._c("set_user_properties"), "$set", check_properties(props, "props"))

    setUserProperties = set_user_properties  # the documentation's spelling

    def set_user_properties_once(self, props: dict[str, Any]) -> None:
        """``$set_once``: set only the properties the profile does not have yet."""
        self._profile(self._c("set_user_properties_once"), "$set_once", check_properties(props, "props"))

    def increment(self, prop: str | dict[str, int | float], by: int | float = 1) -> None:
        """``$add``: add ``by`` (or each value of a dict) to numeric profile properties."""
        if isinstance(prop, str):
            amounts = {prop: check_number(by, "by")}
        elif isinstance(prop, dict):
            amounts = {check_names(k, "prop")[0]: check_number(v, f"prop[{k!r}]") for k, v in prop.items()}
        else:
            raise TypeError("prop must be a str or a dict of numbers")
        self._profile(self._c("increment"), "$add", amounts)

    def unset(self, names: str | list[str]) -> None:
        """``$unset``: remove properties from the profile."""
        self._profile(self._c("unset"), "$unset", check_names(names, "names"))

    def append(self, props: dict[str, Any]) -> None:
        """``$append``: append each value to a list property."""
        self._profile(self._c("append"), "$append", check_properties(props, "props"))

    def union(self, props: dict[str, list[Any]]) -> None:
        """``$union``: add values to list properties, each value once."""
        values = check_properties(props, "props")
        for key, items in values.items():
            if not isinstance(items, (list, tuple)):
                raise TypeError(f"props[{key!r}] must be a list")
            values[key] = list(items)
        self._profile(self._c("union"), "$union", values)

    def remove(self, props: dict[str, Any]) -> None:
        """``$remove``: remove a value from a list property."""
        self._profile(self._c("remove"), "$remove", check_properties(props, "props"))

    def delete_user(self) -> None:
        """``$delete``: delete the identified user's profile (events are kept)."""
        self._profile(self._c("delete_user"), "$delete", "")

    # -- consent ------------------------------------------------------------------------------
    def opt_out_tracking(self) -> None:
        """Stop tracking in this browser: clears the queue and stored state; remembered."""
        core = self._c("opt_out_tracking")
        core.consent.set(False)
        core.sender.paused = True
        core.queue.clear()
        core.identity.clear()
        core.forget_super_properties()
        core.storage.remove(core.people_key)
        core.identity.persist = False

    def opt_in_tracking(self) -> None:
        """Resume (or start) tracking; remembered across reloads and reset()."""
        core = self._c("opt_in_tracking")
        was_out = core.consent.opted_out
        core.consent.set(True)
        if was_out:
            ident = core.identity.load()
            core.identity.persist = True
            core.identity.save(ident)
            if core.memory_props:
                core.save_super_properties(core.memory_props)
            core.sender.paused = False
            self.track("$opt_in")

    def has_opted_out(self) -> bool:
        return self._c("has_opted_out").consent.opted_out

    # -- delivery -----------------------------------------------------------------------------
    async def flush(self, timeout_ms: int | None = None) -> bool:
        """Send now; True once everything tracked before the call is confirmed by the server (or
        refused for good), False if ``timeout_ms`` passes first (records stay queued). Never
        raises for network or server faults."""
        if timeout_ms is not None and (isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int)):
            raise TypeError("timeout_ms must be an int or None")
        return await self._c("flush").sender.flush(timeout_ms)

    def _on_page_hide(self) -> None:
        core = self._core
        if core is None:
            return
        try:
            sent = core.sender.beacon_all()
            core.debug(f"page hidden: {sent} queued records sent by beacon")
        except Exception:  # an unload handler must never throw into the page
            log.exception("empmix: page-hide delivery failed")
