"""Checks of ``init()``'s options that need more than a type: routes, bootstrap, api_host."""

from .validation import check_str, check_user_id

try:
    from typing import Any

    from .browser import Browser
except ImportError:
    pass

ROUTE_NAMES = ("track", "engage", "groups", "cookie")


def check_routes(api_routes: "Any") -> "dict[str, str]":
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
