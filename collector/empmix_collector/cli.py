"""Command line: ``empmix-collector`` (also ``python -m empmix_collector``).

Example::

    empmix-collector --port 8000 --db var/events.db --token dev-token --secret s3cret \\
        --site build/www
    empmix-collector --db postgresql://empmix:pw@127.0.0.1:5432/empmix --token T --workers 2

Parses and validates the options (exit status 2 with the reason), reaches
PostgreSQL before serving (exit status 2 and one line if it cannot), binds the
socket itself (``--port 0`` picks a free port) and hands over to ``server``,
which prints ``empmix-collector listening on http://HOST:PORT`` once ready.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import logging
import os
import sys
from collections.abc import Sequence

from empmix_collector import __version__
from empmix_collector.domain.signing import sign_identity
from empmix_collector.http.hosts import LOOPBACK_NAMES
from empmix_collector.server import bind, serve, serve_workers
from empmix_collector.settings import (
    DEFAULT_COOKIELESS_SALT_DAYS,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_IDS_PER_PERSON,
    DEFAULT_MAX_INFLIGHT_BYTES,
    DEFAULT_MAX_REQUESTS,
    DEFAULT_TRACK_MAX_AGE_DAYS,
    Settings,
)
from empmix_collector.store import create_store
from empmix_collector.store.base import StoreError

__all__ = ["main", "build_parser", "settings_from_args"]

SECRET_ENV = "EMPMIX_COLLECTOR_SECRET"
DB_ENV = "EMPMIX_COLLECTOR_DB"
SWITCH_INTERVAL_S = 0.001
GC_THRESHOLD = (50_000, 10, 10)
"""Cyclic GC: a young collection per 50,000 net allocations instead of 700. A request's
records die by reference counting, so under load the default ran a collection about every
1.5 requests (~7 % of the event loop's time, pauses up to 50 ms from the older
generations); garbage cycles are still collected, in fewer, larger rounds."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (documented in docs/collector.md, "Command-line options")."""
    parser = argparse.ArgumentParser(
        prog="empmix-collector",
        description="Mixpanel-compatible collector with identity merge, profiles and a query API"
        " (SQLite, or PostgreSQL for several collectors).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port; 0 picks a free one (default 8000)")
    parser.add_argument(
        "--db",
        default=os.environ.get(DB_ENV) or None,
        metavar="PATH|URL",
        help="SQLite database file (created if missing) or postgresql://user:password@host:port/dbname;"
        f" also read from ${DB_ENV}",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="collector processes on one port (PostgreSQL only; default 1)",
    )
    parser.add_argument(
        "--token",
        action="extend",
        nargs="+",
        required=True,
        metavar="TOKEN",
        help="accepted project token; repeat for several projects (the first is the query API default)",
    )
    parser.add_argument(
        "--secret",
        default=None,
        help=f"secret for /import (HTTP Basic user) and the query API (Bearer); also read from ${SECRET_ENV}",
    )
    parser.add_argument(
        "--allow-origin",
        action="extend",
        nargs="+",
        default=[],
        metavar="ORIGIN",
        dest="allow_origin",
        help="CORS origin allowed to send and read (repeatable); none given: any origin (dev mode)",
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        dest="allowed_host",
        help="Host name this collector is served as (repeatable; others get 421, * allows any);"
        " default: the --host address, localhost and 127.0.0.1",
    )
    parser.add_argument(
        "--api-route",
        action="append",
        default=[],
        metavar="NAME=PATH",
        dest="api_route",
        help="also accept NAME (track, engage, groups or cookie) requests on PATH, e.g. track=e/ (repeatable)",
    )
    parser.add_argument(
        "--cookie-domain",
        default=None,
        metavar="DOMAIN",
        help="Domain= of the identity cookie POST /cookie sets (default: host-only)",
    )
    parser.add_argument(
        "--identity-secret",
        action="append",
        default=[],
        metavar="TOKEN=SECRET",
        dest="identity_secret",
        help="verify identities for project TOKEN: links to a user need $identity_signature,"
        " the HMAC-SHA256 of the user id under SECRET (repeatable; see 'empmix-collector sign')",
    )
    parser.add_argument("--site", default=None, metavar="DIR", help="also serve this folder as a static site on /")
    parser.add_argument(
        "--max-ids-per-person",
        type=int,
        default=DEFAULT_MAX_IDS_PER_PERSON,
        metavar="N",
        help=f"identity cluster cap (default {DEFAULT_MAX_IDS_PER_PERSON})",
    )
    parser.add_argument(
        "--track-max-age-days",
        type=float,
        default=DEFAULT_TRACK_MAX_AGE_DAYS,
        metavar="DAYS",
        help=f"oldest event /track accepts, in days (default {DEFAULT_TRACK_MAX_AGE_DAYS:g})",
    )
    parser.add_argument(
        "--trust-proxy",
        type=int,
        default=0,
        metavar="N",
        help="N reverse proxies in front: cookieless ids take the client address from X-Forwarded-For"
        " (the N-th entry from the right); default 0: the socket peer",
    )
    parser.add_argument(
        "--cookieless-salt-days",
        type=int,
        default=DEFAULT_COOKIELESS_SALT_DAYS,
        metavar="DAYS",
        help=f"UTC days a cookieless salt is kept before it is deleted (default {DEFAULT_COOKIELESS_SALT_DAYS})",
    )
    parser.add_argument(
        "--max-inflight-mb",
        type=float,
        default=DEFAULT_MAX_INFLIGHT_BYTES / 2**20,
        metavar="MB",
        help=f"request bodies in progress at most, past it 503 (default {DEFAULT_MAX_INFLIGHT_BYTES >> 20})",
    )
    parser.add_argument(
        "--max-requests",
        type=int,
        default=DEFAULT_MAX_REQUESTS,
        metavar="N",
        help=f"requests in progress at most, past it 503 (default {DEFAULT_MAX_REQUESTS})",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help=f"open connections at most, past it 503 (default {DEFAULT_MAX_CONNECTIONS})",
    )
    parser.add_argument(
        "--writer-thread",
        action="store_true",
        help="SQLite: run the writer as a thread of the collector's process instead of a process of its own"
        " (the default process does not share the event loop's GIL: shorter commit holds under load)",
    )
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=["critical", "error", "warning", "info", "debug"],
        help="log level (default warning)",
    )
    parser.add_argument("--access-log", action="store_true", help="log every request (slower)")
    parser.add_argument("--version", action="version", version=f"empmix-collector {__version__}")
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from parsed arguments (raises ``ValueError`` with the reason)."""
    return Settings(
        db_path=args.db,
        tokens=tuple(args.token),
        secret=args.secret if args.secret is not None else (os.environ.get(SECRET_ENV) or None),
        allow_origins=tuple(args.allow_origin),
        allowed_hosts=tuple(args.allowed_host) or (args.host, *LOOPBACK_NAMES),
        site_dir=args.site,
        max_ids_per_person=args.max_ids_per_person,
        track_max_age_days=args.track_max_age_days,
        workers=args.workers,
        api_routes=tuple(args.api_route),
        cookie_domain=args.cookie_domain,
        trust_proxy=args.trust_proxy,
        cookieless_salt_days=args.cookieless_salt_days,
        identity_secrets=tuple(args.identity_secret),
        max_inflight_bytes=max(int(args.max_inflight_mb * 2**20), 1),
        max_requests=args.max_requests,
        max_connections=args.max_connections,
        writer_process=not args.writer_thread,
    )


def _check_database(parser: argparse.ArgumentParser, settings: Settings) -> None:
    """Open the database (and create or upgrade the schema) before serving, so an
    unreachable server or an unusable SQLite file is one clear line and exit status 2."""
    store = create_store(dataclasses.replace(settings, writer_process=False))  # no child just to check
    try:
        store.open()
    except StoreError as exc:
        parser.exit(2, f"empmix-collector: {exc}\n")
    store.close()


def sign_main(argv: Sequence[str]) -> None:
    """``empmix-collector sign --secret SECRET USER_ID``: print the user's ``$identity_signature``."""
    parser = argparse.ArgumentParser(
        prog="empmix-collector sign",
        description="Print USER_ID's $identity_signature (hex HMAC-SHA256 under the project's identity secret).",
    )
    parser.add_argument(
        "--secret", required=True, help="the project's identity secret (--identity-secret TOKEN=SECRET)"
    )
    parser.add_argument("user_id", metavar="USER_ID")
    args = parser.parse_args(argv)
    print(sign_identity(args.secret, args.user_id))


def main(argv: Sequence[str] | None = None) -> None:
    """Run the collector until SIGINT/SIGTERM (or, as ``sign ...``, print a signature)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["sign"]:
        sign_main(arguments[1:])
        return
    parser = build_parser()
    args = parser.parse_args(arguments)
    # the writer thread re-takes the GIL after every database call; with the default 5 ms
    # switch interval a busy event loop makes it wait that long each time
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    gc.set_threshold(*GC_THRESHOLD)
    if not args.db:
        parser.error(f"--db is required (or set ${DB_ENV}): a SQLite file or a postgresql:// URL")
    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _check_database(parser, settings)
    try:
        sock = bind(args.host, args.port)
    except OSError as exc:
        parser.exit(1, f"empmix-collector: cannot listen on {args.host}:{args.port}: {exc}\n")
    gc.freeze()  # what start-up made (modules, settings) lives on: older collections skip it
    try:
        if settings.workers > 1:
            status = serve_workers(
                settings, sock, settings.workers, log_level=args.log_level, access_log=args.access_log
            )
        else:
            status = serve(settings, sock, log_level=args.log_level, access_log=args.access_log)
    finally:
        sock.close()
    if status:
        sys.exit(status)


if __name__ == "__main__":  # pragma: no cover
    main()
