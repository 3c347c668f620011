"""What the boot script (``empmix-boot.js``) did before Python started, as the SDK adopts it.

The boot script publishes ``window.empmixBoot``: its ``data-token``, its ``data-config`` (the
``init()`` options that matter before Python runs), the tab id its records are queued under, the
device id it kept or minted, and the ``$insert_id`` of the page view it recorded. ``init()``
takes the token and options from there (explicit arguments win), keeps the identity, continues
the boot's tab (same queue keys, same Web Lock), counts the page load once and, once ready,
tracks ``$python_ready``. The state is page data like any stored value: bounded and checked.
"""

import logging

from .compat import MICROPYTHON, dumps, loads_bounded
from .validation import is_token

try:
    from typing import Any

    from .browser import Browser
except ImportError:
    pass

log = logging.getLogger("empmix_web")

# data-config keys, which are init()'s option names; "pageview_properties" is the boot's own
OPTIONS = (
    "api_host",
    "api_routes",
    "cookie_domain",
    "cross_subdomain_cookie",
    "secure_cookie",
    "opt_out_by_default",
    "track_marketing",
    "session_timeout_ms",
    "session_max_ms",
    "cookieless",
)
BOOT_ONLY = ("pageview_properties",)
MAX_STATE_CHARS = 1_000_000
READY_EVENT = "$python_ready"


class BootState:
    """One page's boot script, as published in ``window.empmixBoot``."""

    __slots__ = ("token", "options", "tab", "device_id", "pageview", "opted_out", "adopted", "session")

    def __init__(
        self,
        token: str,
        options: "dict[str, Any]",
        tab: "str | None",
        device_id: "str | None",
        pageview: "str | None",
        opted_out: bool,
        adopted: bool,
        session: "str | None" = None,
    ) -> None:
        self.token = token
        self.options = options  # the data-config options init() knows (see OPTIONS)
        self.tab = tab  # the tab id of the boot's queued records (None: it queued nothing)
        self.device_id = device_id
        self.pageview = pageview  # the $insert_id of this load's page view, if it recorded one
        self.opted_out = opted_out
        self.adopted = adopted  # an earlier init() of this page took it over already
        self.session = session  # the session of its page view, as JSON (taken over in memory)

    @staticmethod
    def parse(raw: "str | None") -> "BootState | None":
        """The state from its JSON text; None when absent or not the boot script's."""
        data = loads_bounded(raw, MAX_STATE_CHARS)
        if not isinstance(data, dict) or not is_token(data.get("token")):
            return None
        config = data.get("config")
        config = config if isinstance(config, dict) else {}
        options: "dict[str, Any]" = {}
        for name in config:
            if name in OPTIONS:
                options[name] = config[name]
            elif name not in BOOT_ONLY:
                log.warning("empmix: the boot script's data-config has an unknown option %r (ignored)", name)
        return BootState(
            data["token"],
            options,
            _text(data.get("tab"), 32),
            _text(data.get("device"), 255),
            _text(data.get("pageview"), 36),
            data.get("out") is True,
            data.get("ready") is True,
            dumps(data["session"]) if isinstance(data.get("session"), dict) else None,
        )


def _text(value: object, limit: int) -> "str | None":
    return value if isinstance(value, str) and 0 < len(value) <= limit else None


def find(browser: "Browser", token: "str | None") -> "BootState | None":
    """The boot script of this page for ``token`` (None: use the boot's token), or None.

    A boot script configured for another token is ignored with a warning: its records and its
    page view belong to that project."""
    try:
        boot = BootState.parse(browser.boot_state())
    except Exception as exc:  # the page's state is data: never a reason for init() to fail
        log.warning("empmix: could not read the boot script's state (%r)", exc)
        return None
    if boot is not None and token is not None and boot.token != token:
        log.warning(
            "empmix: init(%r) in a page whose boot script is configured for %r: ignoring the boot script",
            token,
            boot.token,
        )
        return None
    return boot


def ready(core: "Any", track_ready: bool) -> None:
    """``init()`` is done in a page whose boot script ran: tell it, and track ``$python_ready``
    (once per page load: a later client of the same page finds the boot already adopted)."""
    ms = core.browser.boot_ready()
    if track_ready:
        interpreter = "micropython" if MICROPYTHON else "pyodide"
        core.track(READY_EVENT, {"$ready_ms": int(ms + 0.5), "$interpreter": interpreter})
