"""Collector settings, validated once and then frozen.

Example::

    from empmix_collector.settings import Settings
    settings = Settings(db_path="events.db", tokens=("tok",), secret="s3cret")
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = [
    "Settings",
    "DEFAULT_MAX_IDS_PER_PERSON",
    "DEFAULT_TRACK_MAX_AGE_DAYS",
    "DEFAULT_COOKIELESS_SALT_DAYS",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_INFLIGHT_BYTES",
    "DEFAULT_MAX_REQUESTS",
    "ROUTE_KINDS",
    "is_postgres_url",
    "parse_api_route",
    "parse_identity_secret",
]

DEFAULT_MAX_IDS_PER_PERSON = 500
"""Cluster cap (Mixpanel Original ID merge uses 500): a merge that would make a
person hold more distinct ids is refused with ``too_many_ids``."""

DEFAULT_TRACK_MAX_AGE_DAYS = 5.0
"""``/track`` accepts events of the last 5 days only (Mixpanel); older data goes to ``/import``."""

DEFAULT_COOKIELESS_SALT_DAYS = 2
"""A cookieless salt is deleted once it is this many UTC days old (today's and yesterday's are kept)."""
DEFAULT_MAX_INFLIGHT_BYTES = 32 * 1024 * 1024
"""Request bodies in progress at most (their records take several times this in memory)."""
DEFAULT_MAX_REQUESTS = 512
"""Requests in progress at most (a request waiting for its commit counts)."""
DEFAULT_MAX_CONNECTIONS = 1024
"""Open connections at most (uvicorn's ``limit_concurrency``); more get 503."""


ROUTE_KINDS = ("track", "engage", "groups", "cookie")
"""What ``--api-route NAME=PATH`` may name: the SDK's ``api_routes`` keys."""
_RESERVED_PATHS = ("/track", "/engage", "/groups", "/cookie", "/import", "/healthz", "/api")
_PATH_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/")
_DOMAIN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-.")


def parse_api_route(text: str) -> tuple[str, str]:
    """``"track=/e/"`` -> ``("track", "/e")``: the kind and its path (leading ``/``, no trailing one).

    Raises:
        ValueError: an unknown kind, or a path that is empty, holds other characters than
            ``A-Z a-z 0-9 - . _ ~ /``, or is one of the collector's own paths.
    """
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or name not in ROUTE_KINDS:
        raise ValueError(f"--api-route {text!r}: expected NAME=PATH with NAME one of {', '.join(ROUTE_KINDS)}")
    path = "/" + raw.strip().strip("/")
    if path == "/" or not set(path) <= _PATH_CHARS or "//" in path or "/../" in path + "/" or "/./" in path + "/":
        raise ValueError(
            f"--api-route {text!r}: PATH must be a non-empty path of A-Z a-z 0-9 - . _ ~ / (such as e/ or collect/t)"
        )
    for reserved in _RESERVED_PATHS:
        if path == reserved or path.startswith(reserved + "/"):
            raise ValueError(f"--api-route {text!r}: {path} is one of the collector's own paths")
    return name, path


def parse_identity_secret(text: str) -> tuple[str, str]:
    """``"tok=s3cret"`` -> ``("tok", "s3cret")`` (``--identity-secret TOKEN=SECRET``).

    Raises:
        ValueError: no ``=``, or an empty token or secret.
    """
    token, sep, secret = text.partition("=")
    if not sep or not token.strip() or not secret:
        raise ValueError("--identity-secret: expected TOKEN=SECRET (the project token, then its identity secret)")
    return token.strip(), secret


def _check_cookie_domain(domain: str) -> str:
    value = domain.strip().lower().lstrip(".")
    labels = value.split(".")
    if (
        not value
        or not set(value) <= _DOMAIN_CHARS
        or len(labels) < 2
        or any(not label or label.startswith("-") or label.endswith("-") for label in labels)
        or all(label.isdigit() for label in labels)
    ):
        raise ValueError(
            f"Settings.cookie_domain={domain!r}: give a host name such as shop.example (no scheme, port or IP address)"
        )
    return value


def _check_host(name: str) -> str:
    value = name.strip().lower()
    if value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    if value != "*" and (not value or any(c in value for c in "/@ ") or "://" in value):
        raise ValueError(f"--allowed-host {name!r}: give a host name or address without scheme or port (or *)")
    return value


def is_postgres_url(target: str) -> bool:
    """``target`` names a PostgreSQL database (``postgresql://`` or ``postgres://``)."""
    return target.startswith(("postgresql://", "postgres://"))


@dataclass(frozen=True)
class Settings:
    """Everything the collector needs to run.

    Args:
        db_path: the database: a SQLite file (created if missing; ``":memory:"`` is
            refused because readers and the writer need separate connections to one
            file) or a ``postgresql://user:password@host:port/dbname`` URL.
        tokens: project tokens accepted in payloads; the first one is the default project
            of the query API.
        secret: the secret for ``/import`` (HTTP Basic user name) and the query API
            (``Authorization: Bearer``). ``None`` disables ``/import`` and lets the query API
            answer loopback clients only.
        allow_origins: CORS allow-list. Empty means any origin is echoed on the ingestion
            endpoints (dev mode); the query API gets CORS headers only for listed origins.
        allowed_hosts: ``Host`` names the collector answers (``--allowed-host``), others
            get 421; ``*`` allows any. Empty: no check (the CLI always gives its defaults:
            the bind address, ``localhost`` and ``127.0.0.1``).
        site_dir: optional folder served as a static site on ``/``.
        max_ids_per_person: cluster cap for identity merges.
        track_max_age_days: how far in the past ``/track`` accepts events.
        workers: collector processes serving one port (PostgreSQL only: a SQLite file
            has one writer).
        api_routes: ``(kind, path)`` pairs (``--api-route``): ``kind`` (``track``, ``engage``,
            ``groups``, ``cookie``) is also accepted on ``path``, beside its default path.
        cookie_domain: ``Domain=`` of the identity cookie that ``POST /cookie`` sets
            (``--cookie-domain``); ``None``: a host-only cookie.
        trust_proxy: reverse proxies in front of the collector (``--trust-proxy N``): the
            client address of cookieless ids is the N-th ``X-Forwarded-For`` entry from the
            right; 0 (default): the socket peer, the header is ignored.
        cookieless_salt_days: UTC days a cookieless salt is kept (``--cookieless-salt-days``).
        identity_secrets: ``(token, secret)`` pairs (``--identity-secret TOKEN=SECRET``):
            those projects accept a link to a user only with that user's
            ``$identity_signature`` (``domain.signing``).
        max_inflight_bytes, max_requests: past these request bytes or requests in
            progress, requests get 503 + ``Retry-After`` (``http.shedding``).
        max_connections: open connections at most (uvicorn ``limit_concurrency``).
        writer_process: SQLite: the writer runs in a child process of its own
            (``store.sqlite.writer_process``; the CLI's default, ``--writer-thread`` turns it
            off), so it never waits for the event loop's GIL. ``False`` (the default here, for
            tests and embedding): a thread of this process. PostgreSQL ignores it.
    """

    db_path: str
    tokens: tuple[str, ...]
    secret: str | None = None
    allow_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    site_dir: str | None = None
    max_ids_per_person: int = DEFAULT_MAX_IDS_PER_PERSON
    track_max_age_days: float = DEFAULT_TRACK_MAX_AGE_DAYS
    workers: int = 1
    api_routes: tuple[tuple[str, str], ...] = ()
    cookie_domain: str | None = None
    trust_proxy: int = 0
    cookieless_salt_days: int = DEFAULT_COOKIELESS_SALT_DAYS
    identity_secrets: tuple[tuple[str, str], ...] = ()
    max_inflight_bytes: int = DEFAULT_MAX_INFLIGHT_BYTES
    max_requests: int = DEFAULT_MAX_REQUESTS
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    writer_process: bool = False

    def __post_init__(self) -> None:
        if is_postgres_url(self.db_path):
            url = urlsplit(self.db_path)
            if not url.path.strip("/"):
                raise ValueError(
                    f"Settings.db_path: {url.scheme}://... names no database: give"
                    " postgresql://user:password@host:port/dbname"
                )
        elif not self.db_path or self.db_path == ":memory:" or self.db_path.startswith("file::memory:"):
            raise ValueError(
                f"Settings.db_path={self.db_path!r}: give a file path"
                " (an in-memory database cannot be shared by the writer and readers)"
            )
        tokens = tuple(self.tokens)
        if not tokens:
            raise ValueError("Settings.tokens is empty: give at least one project token (--token TOKEN)")
        for token in tokens:
            if not isinstance(token, str) or not token.strip() or len(token) > 255:
                raise ValueError(
                    f"Settings.tokens: {token!r} is not a usable token (a non-empty string of at most 255 characters)"
                )
        if len(set(tokens)) != len(tokens):
            raise ValueError(f"Settings.tokens={tokens!r} lists a token twice")
        object.__setattr__(self, "tokens", tokens)
        if self.secret is not None and not self.secret:
            raise ValueError("Settings.secret is empty: omit it or give a non-empty secret")
        origins = tuple(o.rstrip("/") for o in self.allow_origins)
        for origin in origins:
            if origin != "null" and "://" not in origin:
                raise ValueError(f"Settings.allow_origins: {origin!r} is not an origin (expected scheme://host[:port])")
        object.__setattr__(self, "allow_origins", origins)
        hosts = tuple(dict.fromkeys(_check_host(name) for name in self.allowed_hosts))
        object.__setattr__(self, "allowed_hosts", hosts)
        if self.site_dir is not None and not os.path.isdir(self.site_dir):
            raise ValueError(f"Settings.site_dir={self.site_dir!r} is not a directory")
        if not isinstance(self.max_ids_per_person, int) or self.max_ids_per_person < 2:
            raise ValueError(f"Settings.max_ids_per_person={self.max_ids_per_person!r}: must be an integer >= 2")
        if not isinstance(self.workers, int) or self.workers < 1:
            raise ValueError(f"Settings.workers={self.workers!r}: must be an integer >= 1")
        if self.workers > 1 and not is_postgres_url(self.db_path):
            raise ValueError(
                f"--workers {self.workers} needs PostgreSQL: a SQLite file has one writer, so one process"
                " serves it (give --db postgresql://... to run several)"
            )
        routes: list[tuple[str, str]] = []
        for route in self.api_routes:
            name, path = parse_api_route(route if isinstance(route, str) else f"{route[0]}={route[1]}")
            for other_name, other_path in routes:
                if other_path == path and other_name != name:
                    raise ValueError(f"--api-route: {path} is given for both {other_name} and {name}")
            if (name, path) not in routes:
                routes.append((name, path))
        object.__setattr__(self, "api_routes", tuple(routes))
        if self.cookie_domain is not None:
            object.__setattr__(self, "cookie_domain", _check_cookie_domain(self.cookie_domain))
        if type(self.trust_proxy) is not int or not 0 <= self.trust_proxy <= 32:
            raise ValueError(f"--trust-proxy {self.trust_proxy!r}: must be an integer from 0 to 32")
        if type(self.cookieless_salt_days) is not int or not 1 <= self.cookieless_salt_days <= 366:
            raise ValueError(f"--cookieless-salt-days {self.cookieless_salt_days!r}: must be an integer from 1 to 366")
        secrets: dict[str, str] = {}
        for pair in self.identity_secrets:
            token, secret = parse_identity_secret(pair) if isinstance(pair, str) else pair
            if token not in tokens:
                raise ValueError(f"--identity-secret {token!r}=...: {token!r} is not one of the --token values")
            if not secret or token in secrets:
                raise ValueError(f"--identity-secret {token!r}=...: give one non-empty secret per token")
            secrets[token] = secret
        object.__setattr__(self, "identity_secrets", tuple(secrets.items()))
        for name in ("max_inflight_bytes", "max_requests", "max_connections"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"Settings.{name}={value!r}: must be an integer >= 1")
        if not self.track_max_age_days > 0:
            raise ValueError(f"Settings.track_max_age_days={self.track_max_age_days!r}: must be > 0")

    @property
    def default_token(self) -> str:
        """The project the query API reads when no ``?token=`` is given."""
        return self.tokens[0]
