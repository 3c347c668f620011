"""``EmpMixClient``: the public API. It checks arguments and delegates to ``core.Core``."""

import logging

from . import handover
from .console import install_console_log
from .core import Core
from .options import build_config, check_bootstrap
from .validation import (
    check_event_name,
    check_int,
    check_json,
    check_list_values,
    check_names,
    check_number,
    check_properties,
    check_signature,
    check_str,
    check_user_id,
    is_token,
)
from .version import VERSION

try:
    from typing import TYPE_CHECKING, Any

    from .browser import Browser

    if TYPE_CHECKING:  # the group methods import groups when first called: not at start-up
        from .groups import Group
except ImportError:
    pass

__version__ = VERSION
log = logging.getLogger("empmix_web")


class NotInitializedError(RuntimeError):
    """A client method was called before ``init(token)``."""


class EmpMixClient:
    """One analytics client for one project token.

    ``EmpMixClient(token, **options)`` initialises at once, with the options of
    [`init`][empmix_web.EmpMixClient.init]; ``EmpMixClient()`` waits for ``init``. Clients with
    different tokens keep separate state (storage keys and cookies are named after the token).
    """

    def __init__(self, token: "str | None" = None, **options: "Any") -> None:
        self._core: "Core | None" = None
        # not an option of init(): tests and tools give the client a Browser of their own (the
        # CPython unit tests' fake); in a page it is the JavaScript bridge, made by init()
        self._browser: "Browser | None" = options.pop("browser", None)
        if token is not None:
            self.init(token, **options)

    # -- setup --------------------------------------------------------------------------------
    def init(
        self,
        token: "str | None" = None,
        api_host: "str | None" = None,
        batch_size: int = 50,
        flush_interval_ms: int = 1000,
        debug: bool = False,
        *,
        cookie_domain: "str | None" = None,
        cross_subdomain_cookie: "bool | None" = None,
        secure_cookie: "bool | None" = None,
        max_queue_size: int = 5000,
        opt_out_by_default: "bool | None" = None,
        session_timeout_ms: "int | None" = None,
        session_max_ms: "int | None" = None,
        track_marketing: "bool | None" = None,
        cookieless: "str | None" = None,
        bootstrap: "dict[str, str] | None" = None,
        api_routes: "dict[str, str] | None" = None,
        server_cookie: bool = False,
        track_ready: bool = True,
    ) -> None:
        """Start tracking for ``token``: load (or mint) the identity, resend what a previous page
        left queued, and start the sender.

        In a page that includes the boot script (``empmix-boot.js``), ``token`` may be left out:
        its ``data-token`` and ``data-config`` options are used, and explicit arguments win. The
        SDK then keeps the boot script's identity and queue, counts the page load's page view
        once (the first ``track_pageview()`` is a no-op), and tracks ``$python_ready`` with
        ``$ready_ms`` and ``$interpreter`` (``track_ready=False`` turns that off).

        ``api_host`` is where the collector listens; by default the page's own origin (a
        collector behind the site's own domain is also what keeps ad blockers and Safari's
        cookie caps away). A second ``init()`` on an initialised client is refused with a
        warning: the first configuration keeps running (one sender, one tab scanner, one set of
        page listeners).

        ``session_timeout_ms`` / ``session_max_ms``: when ``$session_id`` rotates (30 minutes
        without an event / 24 hours). ``track_marketing``: campaign parameters, referrer and
        first touch on events (default on). ``opt_out_by_default``: track nothing until
        ``opt_in_tracking()``. ``cross_subdomain_cookie``: the identity cookie on the widest
        parent domain that accepts it. ``bootstrap``: ``{"device_id": ..., "user_id": ...}`` from a
        server that knows the visitor. ``api_routes``: ``{"track": "e/", "engage": "p/", "groups":
        "g/", "cookie": "c"}``, any subset, paths relative to ``api_host``. ``server_cookie``: ask
        the collector to set the identity cookie too (``POST {api_host}/cookie``).
        ``cookieless``: ``"never"`` (default), ``"until_consent"`` (store nothing until
        ``opt_in_tracking()``; the visit before consent joins the visitor after it) or
        ``"always"`` (store nothing, ever); events then go out as ``$cookieless`` and the
        collector derives the visitor's id (see the guide's "Consent and cookieless mode").

        Raises ``ValueError`` naming ``token`` when there is neither a token nor a boot script.
        """
        if token is not None and not is_token(token):
            raise ValueError("token must be 1-128 characters of [A-Za-z0-9_.-]")
        if self._core is not None:
            log.warning(
                "empmix: init(%r) refused: this client is already initialised for %r; the "
                "first configuration stays (use EmpMixClient(token) for another project)",
                token,
                self._core.token,
            )
            return
        browser = self._browser
        if browser is None:
            from ._bridge import JsBrowser  # only importable inside Pyodide / MicroPython

            browser = self._browser = JsBrowser()
        install_console_log(browser)
        boot = handover.find(browser, token)
        if token is None:
            if boot is None:
                raise ValueError("token is required: init(token), or a boot script with data-token in the page")
            token = boot.token
        explicit = {
            "api_host": api_host,
            "api_routes": api_routes,
            "cookie_domain": cookie_domain,
            "cross_subdomain_cookie": cross_subdomain_cookie,
            "secure_cookie": secure_cookie,
            "opt_out_by_default": opt_out_by_default,
            "track_marketing": track_marketing,
            "session_timeout_ms": session_timeout_ms,
            "session_max_ms": session_max_ms,
            "cookieless": cookieless,
        }
        config = build_config(explicit, boot.options if boot is not None else {}, browser)
        config.batch_size = min(check_int(batch_size, "batch_size"), 2000)
        config.flush_interval_ms = check_int(flush_interval_ms, "flush_interval_ms")
        config.max_queue_size = check_int(max_queue_size, "max_queue_size")
        config.bootstrap = check_bootstrap(bootstrap)
        config.debug = bool(debug)
        config.server_cookie = bool(server_cookie)
        config.boot = boot if boot is not None and not boot.adopted else None
        core = Core(token, browser, config)
        core.start()
        self._core = core
        if config.boot is not None:
            handover.ready(core, bool(track_ready))

    def _c(self, method: str) -> Core:
        if self._core is None:
            raise NotInitializedError("call EmpMix.init(token) before " + method + "()")
        return self._core

    # -- events -------------------------------------------------------------------------------
    def track(self, event: str, properties: "dict[str, Any] | None" = None) -> None:
        """Record ``event`` now, with ``properties`` (they win over super properties)."""
        name = check_event_name(event)
        props = check_properties(properties, deep=False, copy=False)  # read, never kept
        core = self._c("track")
        try:
            core.track(name, props)
        except (TypeError, ValueError):
            check_json(props, "properties")  # names the culprit; raises
            raise

    def track_pageview(self, properties: "dict[str, Any] | None" = None) -> None:
        """Track a ``$mp_web_page_view`` event for the current page.

        In a page whose boot script recorded this load's page view, the first call is a no-op:
        the load counts once. Properties given to it then are dropped with a warning; put them
        in the boot script's ``data-config`` as ``pageview_properties``."""
        props = check_properties(properties, deep=False, copy=False)
        core = self._c("track_pageview")
        if props and core.boot_pageview:
            check_json(props, "properties")  # refused before the load's page view is taken
        if core.take_boot_pageview():
            if props:
                log.warning(
                    "empmix: track_pageview(properties): the boot script already counted this page "
                    "view, so %s were not sent; give page-view properties in its data-config as "
                    "pageview_properties",
                    sorted(props),
                )
            return
        self.track("$mp_web_page_view", properties)

    def track_with_groups(self, event: str, properties: "dict[str, Any] | None", groups: "dict[str, Any]") -> None:
        """Track ``event`` with ``groups`` (``{group_key: id or [ids]}``) on this event only."""
        from .groups import check_groups

        props = check_properties(properties, deep=False)
        props.update(check_groups(groups))
        self.track(event, props)

    def time_event(self, event_name: str) -> None:
        """Start timing ``event_name``: its next ``track`` carries ``$duration`` (seconds)."""
        self._c("time_event").time_event(check_event_name(event_name))

    def get_session_id(self) -> str:
        """The current ``$session_id`` (a UUIDv7 shared by the origin's tabs)."""
        return self._c("get_session_id").session_id()

    # -- identity -----------------------------------------------------------------------------
    def identify(
        self, user_id: "str | int", profile: "dict[str, Any] | None" = None, *, signature: "str | None" = None
    ) -> None:
        """Call at every login: link this browser's anonymous past to ``user_id``.

        ``signature``: ``user_id``'s identity signature from the site's server (the hex
        HMAC-SHA256 of the user id under the project's identity secret), for a collector that
        verifies identities (``--identity-secret``): it goes on the ``$identify`` event as
        ``$identity_signature``."""
        uid = check_user_id(user_id)
        profile = check_properties(profile, "profile")
        sig = check_signature(signature)
        core = self._c("identify")
        core.identify(uid, sig)
        if profile:
            core.profile("$set", profile)

    def alias(self, new_id: "str | int", *, signature: "str | None" = None) -> None:
        """Call once, at sign-up: tell the backend ``new_id`` is this anonymous visitor.

        ``signature``: ``new_id``'s identity signature, as for [`identify`][empmix_web.EmpMixClient.identify]."""
        nid = check_user_id(new_id, "new_id")
        sig = check_signature(signature)
        self._c("alias").alias(nid, sig)

    def reset(self) -> None:
        """Call at logout: forget the user and start a new anonymous visitor.

        Nothing of the previous user (ids, super properties, held profile operations, queued
        records) stays in localStorage or cookies. Events already tracked keep the identity they
        were tracked under and are still delivered (from memory, and by beacon if the page
        hides). The consent choice is kept.
        """
        self._c("reset").reset()

    def get_distinct_id(self) -> str:
        """The ``distinct_id`` events carry now: the user id once identified, else the anonymous id."""
        return self._c("get_distinct_id").current().distinct_id

    def get_device_id(self) -> "str | None":
        """The anonymous device id; None in cookieless operation (there is no device id)."""
        return self._c("get_device_id").current().device_id or None

    def get_user_id(self) -> "str | None":
        """The identified user's id, or None while anonymous."""
        return self._c("get_user_id").current().user_id

    # -- super properties ---------------------------------------------------------------------
    def register(self, props: "dict[str, Any]") -> None:
        """Properties added to every later event of this browser (until reset)."""
        values = check_properties(props, "props")
        core = self._c("register")
        merged = dict(core.super_properties())
        merged.update(values)
        core.save_super_properties(merged)

    def register_once(self, props: "dict[str, Any]") -> None:
        """Like [`register`][empmix_web.EmpMixClient.register], but never overwrites a property already registered."""
        values = check_properties(props, "props")
        core = self._c("register_once")
        merged = dict(values)
        merged.update(core.super_properties())
        core.save_super_properties(merged)

    def get_property(self, name: str) -> "Any":
        """The super property ``name``, or None."""
        check_str(name, "name")
        return self._c("get_property").super_properties().get(name)

    def unregister(self, name: str) -> None:
        """Remove one super property."""
        check_str(name, "name")
        core = self._c("unregister")
        current = dict(core.super_properties())
        if name in current:
            del current[name]
            core.save_super_properties(current)

    # -- groups -------------------------------------------------------------------------------
    def set_group(self, group_key: str, group_ids: "str | int | list[str | int]") -> None:
        """This user belongs to ``group_ids`` of ``group_key``: a super property on every later
        event, and ``$set`` on the user's profile (held while anonymous)."""
        from .groups import check_group_ids, check_group_key, with_ids

        key, ids = check_group_key(group_key), check_group_ids(group_ids)
        core = self._c("set_group")
        core.save_super_properties(with_ids(core.super_properties(), key, ids))
        core.profile("$set", {key: ids})

    def add_group(self, group_key: str, group_id: "str | int") -> None:
        """Add one id to the user's ``group_key`` list (profile ``$union``)."""
        from .groups import check_group_id, check_group_key, with_id_added

        key, gid = check_group_key(group_key), check_group_id(group_id)
        core = self._c("add_group")
        core.save_super_properties(with_id_added(core.super_properties(), key, gid))
        core.profile("$union", {key: [gid]})

    def remove_group(self, group_key: str, group_id: "str | int") -> None:
        """Remove one id from the user's ``group_key`` list (profile ``$remove``); the super
        property goes with the last id."""
        from .groups import check_group_id, check_group_key, with_id_removed

        key, gid = check_group_key(group_key), check_group_id(group_id)
        core = self._c("remove_group")
        core.save_super_properties(with_id_removed(core.super_properties(), key, gid))
        core.profile("$remove", {key: gid})

    def get_group(self, group_key: str, group_id: "str | int") -> "Group":
        """The profile of one group, for ``set``/``set_once``/``unset``/``union``/``remove``/
        ``delete`` (sent to ``/groups/``)."""
        from .groups import Group, check_group_id, check_group_key

        self._c("get_group")
        return Group(self, check_group_key(group_key), check_group_id(group_id))

    # -- profiles -----------------------------------------------------------------------------
    def set_user_properties(self, props: "dict[str, Any]") -> None:
        """``$set`` on the user's profile (held until identify while anonymous)."""
        self._c("set_user_properties").profile("$set", check_properties(props, "props"))

    setUserProperties = set_user_properties  # the documentation's spelling

    def set_user_properties_once(self, props: "dict[str, Any]") -> None:
        """``$set_once``: set only the properties the profile does not have yet."""
        self._c("set_user_properties_once").profile("$set_once", check_properties(props, "props"))

    def increment(self, prop: "str | dict[str, int | float]", by: "int | float" = 1) -> None:
        """``$add``: add ``by`` (or each value of a dict) to numeric profile properties."""
        if isinstance(prop, str):
            amounts = {prop: check_number(by, "by")}
        elif isinstance(prop, dict):
            amounts = {}
            for key in prop:
                amounts[check_str(key, "prop")] = check_number(prop[key], "prop[" + repr(key) + "]")
        else:
            raise TypeError("prop must be a str or a dict of numbers")
        self._c("increment").profile("$add", amounts)

    def unset(self, names: "str | list[str]") -> None:
        """``$unset``: remove properties from the profile."""
        self._c("unset").profile("$unset", check_names(names, "names"))

    def append(self, props: "dict[str, Any]") -> None:
        """``$append``: append each value to a list property."""
        self._c("append").profile("$append", check_properties(props, "props"))

    def union(self, props: "dict[str, list[Any]]") -> None:
        """``$union``: add values to list properties, each value once."""
        self._c("union").profile("$union", check_list_values(props))

    def remove(self, props: "dict[str, Any]") -> None:
        """``$remove``: remove a value from a list property."""
        self._c("remove").profile("$remove", check_properties(props, "props"))

    def delete_user(self) -> None:
        """``$delete``: delete the identified user's profile (events are kept)."""
        self._c("delete_user").profile("$delete", "")

    # -- consent ------------------------------------------------------------------------------
    def opt_out_tracking(self) -> None:
        """Stop tracking in this browser (every tab of the origin, from its next call): clears
        the queue and every stored value but the choice, which is remembered."""
        self._c("opt_out_tracking").privacy.opt_out()

    def opt_in_tracking(self) -> None:
        """Resume (or start) tracking; remembered across reloads and reset()."""
        self._c("opt_in_tracking").privacy.opt_in()

    def has_opted_out(self) -> bool:
        """True when the visitor refused tracking in this browser (any tab of the origin)."""
        return self._c("has_opted_out").opted_out()

    # -- delivery -----------------------------------------------------------------------------
    async def flush(self, timeout_ms: "int | None" = None) -> bool:
        """Send now; True once everything tracked before the call is confirmed by the server (or
        refused for good), False if ``timeout_ms`` passes first (records stay queued). Never
        raises for network or server faults."""
        if timeout_ms is not None and (timeout_ms is True or timeout_ms is False or not isinstance(timeout_ms, int)):
            raise TypeError("timeout_ms must be an int or None")
        return await self._c("flush").sender.flush(timeout_ms)
