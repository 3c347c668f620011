"""Campaigns and first touch: what brought the visitor (``track_marketing=True``).

Every event of a page view whose URL holds campaign parameters carries them (``utm_*`` and the
ad networks' click ids), and every event carries ``$referrer`` and ``$referring_domain``
(``$direct`` without a referrer). Once per device until ``reset()``, ``$initial_referrer``,
``$initial_referring_domain`` and the first campaign's ``initial_utm_*`` (one group: a later
campaign never mixes into it) become super properties and the profile's ``$set_once``.
"""

from .percent import unquote

try:
    from typing import Any
except ImportError:
    pass

UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "utm_id")
CLICK_IDS = ("gclid", "fbclid", "msclkid", "ttclid", "li_fat_id", "twclid", "dclid", "wbraid", "gbraid")
DIRECT = "$direct"
MAX_VALUE = 255


def query_params(url: str) -> "dict[str, str]":
    """The first value of each query parameter of ``url`` (``+`` is a space), decoded."""
    query = url.split("#", 1)[0].partition("?")[2]
    params: "dict[str, str]" = {}
    for part in query.split("&"):
        name, _, value = part.partition("=")
        name = unquote(name.replace("+", " "))
        if name and name not in params:
            params[name] = unquote(value.replace("+", " "))[:MAX_VALUE]
    return params


def campaign(url: str) -> "dict[str, str]":
    """The campaign parameters (UTM keys and click ids) present in ``url``."""
    params = query_params(url)
    found: "dict[str, str]" = {}
    for key in UTM_KEYS + CLICK_IDS:
        if key in params and params[key]:
            found[key] = params[key]
    return found


def domain_of(url: str) -> str:
    """``https://www.example.com:8080/a`` -> ``www.example.com``; ``$direct`` for no URL."""
    if not url:
        return DIRECT
    rest = url.partition("://")[2] if "://" in url else url
    host = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0].rpartition("@")[2]
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.split(":", 1)[0].lower() or DIRECT


def referrer_props(referrer: str) -> "dict[str, str]":
    """``$referrer`` and ``$referring_domain`` of ``referrer`` (``$direct`` when empty)."""
    return {"$referrer": referrer or DIRECT, "$referring_domain": domain_of(referrer)}


def first_touch(referrer: str, url: str, registered: "dict[str, Any]") -> "dict[str, Any]":
    """The first-touch properties to register once (none already registered are repeated)."""
    touch: "dict[str, Any]" = {}
    if "$initial_referrer" not in registered:
        touch["$initial_referrer"] = referrer or DIRECT
        touch["$initial_referring_domain"] = domain_of(referrer)
    utm = campaign(url)
    if not any(("initial_" + key) in registered for key in UTM_KEYS):
        for key in UTM_KEYS:
            if key in utm:
                touch["initial_" + key] = utm[key]
    return touch
