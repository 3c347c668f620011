"""``init()``'s options: where each comes from (an argument, else the boot script's
``data-config``, else its default) and the checks that need more than a type."""

from .consent import MODES, NEVER
from .sessions import DEFAULT_MAX_MS, DEFAULT_TIMEOUT_MS
from .validation import check_int, check_str, check_user_id

try:
    from typing import Any

    from .browser import Browser
except ImportError:
    pass

ROUTE_NAMES = ("track", "engage", "groups", "cookie")


def check_routes(api_routes: "Any") -> "dict[str, str]":
    """``api_routes`` checked: known route names, each a path relative to ``api_host``."""
    if api_routes is None:
        return {}
    if not isinstance(api_routes, dict):
        raise TypeError("api_routes must be a dict, got " + type(api_routes).__name__)
    for name in api_routes:
        if name not in ROUTE_NAMES:
            raise ValueError("api_routes: unknown route " + repr(name) + " (one of " + ", ".join(ROUTE_NAMES) + ")")
        path = check_str(api_routes[name], "api_routes[" + repr(name) + "]")
        if not path.strip("/") or "://" in path or path.startswith("//") or " " in path:
            raise ValueError("api_routes[" + repr(name) + "] must be a path relative to api_host, got " + repr(path))
    return dict(api_routes)


def check_bootstrap(bootstrap: "Any") -> "dict[str, str]":
    """``bootstrap`` checked: a dict with ``device_id`` and/or ``user_id``, each a real id."""
    if bootstrap is None:
        return {}
    if not isinstance(bootstrap, dict):
        raise TypeError("bootstrap must be a dict, got " + type(bootstrap).__name__)
    out: "dict[str, str]" = {}
    for key in bootstrap:
        if key not in ("device_id", "user_id"):
            raise ValueError("bootstrap: unknown key " + repr(key) + " (device_id, user_id)")
    if bootstrap.get("device_id") is not None:
        device = check_user_id(bootstrap["device_id"], "bootstrap['device_id']")  # a real id, not $device:
        out["device_id"] = device
    if bootstrap.get("user_id") is not None:
        out["user_id"] = check_user_id(bootstrap["user_id"], "bootstrap['user_id']")
    return out


def check_api_host(api_host: "Any", browser: "Browser") -> str:
    """``api_host`` checked (an http(s) URL, no trailing ``/``); None: the page's own origin."""
    if api_host is None:
        origin = browser.page_origin()
        if not (origin.startswith("http://") or origin.startswith("https://")):
            raise ValueError("api_host is required on a page without an http(s) origin (" + origin + ")")
        return origin
    check_str(api_host, "api_host")
    if not (api_host.startswith("http://") or api_host.startswith("https://")) or len(api_host) < 10:
        raise ValueError("api_host must be an http(s) URL, got " + repr(api_host[:80]))
    host: str = api_host.rstrip("/")
    return host


# the options a boot script's data-config may set, with their defaults (None: decided later)
DEFAULTS = {
    "api_host": None,
    "api_routes": None,
    "cookie_domain": None,
    "cross_subdomain_cookie": False,
    "secure_cookie": None,
    "opt_out_by_default": False,
    "track_marketing": True,
    "session_timeout_ms": DEFAULT_TIMEOUT_MS,
    "session_max_ms": DEFAULT_MAX_MS,
    "cookieless": NEVER,
}


class Config:
    """``init()``'s checked configuration (``build_config``, then ``init``'s own arguments)."""

    def __init__(self, api_host: str) -> None:
        self.api_host = api_host  # where the collector listens (no trailing /)
        self.api_routes: "dict[str, str]" = {}  # route name -> path relative to api_host
        self.cookie_domain: "str | None" = None  # None: this host (or probed: cross_subdomain_cookie)
        self.cross_subdomain_cookie = False
        self.secure_cookie: "bool | None" = None  # None: Secure on https pages
        self.opt_out_by_default = False
        self.track_marketing = True
        self.session_timeout_ms = DEFAULT_TIMEOUT_MS
        self.session_max_ms = DEFAULT_MAX_MS
        self.cookieless = NEVER  # one of consent.MODES
        self.batch_size = 50
        self.flush_interval_ms = 1000
        self.max_queue_size = 5000
        self.bootstrap: "dict[str, str]" = {}  # check_bootstrap's
        self.debug = False
        self.server_cookie = False
        self.boot: "Any" = None  # the boot script's state this client adopts (handover.BootState)


def build_config(explicit: "dict[str, Any]", boot: "dict[str, Any]", browser: "Browser") -> Config:
    """The checked options: each explicit argument (not None), else the boot script's
    ``data-config`` value, else the default. A bad value raises naming the option, and says
    when it came from ``data-config``."""
    picked: "dict[str, Any]" = {}
    for name in DEFAULTS:
        value = explicit.get(name)
        label = name
        if value is None and name in boot:
            value, label = boot[name], "data-config " + name
        picked[name] = (value, label)
    flags = {"cross_subdomain_cookie": False, "opt_out_by_default": False, "track_marketing": True}
    for name in flags:
        value = picked[name][0]
        if value is not None:
            flags[name] = bool(value)
    value, label = picked["cookieless"]
    cookieless = NEVER if value is None else check_cookieless(value, label)
    if cookieless != NEVER and flags["opt_out_by_default"]:
        raise ValueError(
            "opt_out_by_default=True cannot go with cookieless=" + repr(cookieless) + ": cookieless "
            "operation is what happens without consent (use cookieless='until_consent' alone)"
        )
    timeouts = {"session_timeout_ms": DEFAULT_TIMEOUT_MS, "session_max_ms": DEFAULT_MAX_MS}
    for name in timeouts:
        value, label = picked[name]
        if value is not None:
            timeouts[name] = check_int(value, label)
    value = picked["secure_cookie"][0]
    secure = None if value is None else bool(value)
    value, label = picked["cookie_domain"]
    domain = None if value is None else check_str(value, label)
    routes = check_routes(picked["api_routes"][0])
    config = Config(check_api_host(picked["api_host"][0], browser))
    config.api_routes = routes
    config.cookie_domain = domain
    config.cross_subdomain_cookie = flags["cross_subdomain_cookie"]
    config.secure_cookie = secure
    config.opt_out_by_default = flags["opt_out_by_default"]
    config.track_marketing = flags["track_marketing"]
    config.session_timeout_ms = timeouts["session_timeout_ms"]
    config.session_max_ms = timeouts["session_max_ms"]
    config.cookieless = cookieless
    return config


def check_cookieless(value: "Any", label: str = "cookieless") -> str:
    """``value`` as one of the cookieless modes, or ValueError naming ``label``."""
    check_str(value, label)
    if value not in MODES:
        raise ValueError(label + " must be one of " + ", ".join(repr(m) for m in MODES) + ", got " + repr(value))
    return str(value)
