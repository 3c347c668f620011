"""Command line: ``empmix-collector`` (also ``python -m empmix_collector``).

Example::

    empmix-collector --port 8000 --db var/events.db --token dev-token --secret s3cret \\
        --site build/www

Binds the socket itself (``--port 0`` picks a free port), starts uvicorn on it,
and once the app is ready prints ``empmix-collector listening on http://HOST:PORT``
(flushed), which test fixtures wait for. SIGINT/SIGTERM stop it cleanly: queued
writes are committed before the process exits.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from types import FrameType

import uvicorn

from empmix_collector import __version__
from empmix_collector.app import create_app
from empmix_collector.settings import DEFAULT_MAX_IDS_PER_PERSON, DEFAULT_TRACK_MAX_AGE_DAYS, Settings

__all__ = ["main", "build_parser", "settings_from_args"]

SECRET_ENV = "EMPMIX_COLLECTOR_SECRET"
SWITCH_INTERVAL_S = 0.001


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (documented in collector/README.md)."""
    parser = argparse.ArgumentParser(
        prog="empmix-collector",
        description="Mixpanel-compatible collector with identity merge, profiles and a query API (SQLite).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port; 0 picks a free one (default 8000)")
    parser.add_argument("--db", required=True, metavar="PATH", help="SQLite database file (created if missing)")
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
        site_dir=args.site,
        max_ids_per_person=args.max_ids_per_person,
        track_max_age_days=args.track_max_age_days,
    )


def _bind(host: str, port: int) -> socket.socket:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind(address)
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    """uvicorn, announcing readiness once the app has started and the socket is served."""

    def __init__(self, config: uvicorn.Config, url: str) -> None:
        super().__init__(config)
        self.url = url

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and not self.should_exit:
            print(f"empmix-collector listening on {self.url}", flush=True)


def _exit_quietly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the collector until SIGINT/SIGTERM."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # the writer thread re-takes the GIL after every SQLite call; with the default 5 ms
    # switch interval a busy event loop makes it wait that long each time
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        sock = _bind(args.host, args.port)
    except OSError as exc:
        parser.exit(1, f"empmix-collector: cannot listen on {args.host}:{args.port}: {exc}\n")
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        log_level=args.log_level,
        access_log=args.access_log,
        lifespan="on",
        server_header=False,
        proxy_headers=False,  # client addresses are not used; skip the per-request middleware
        timeout_graceful_shutdown=10,
        timeout_keep_alive=30,
    )
    server = _Server(config, f"http://{shown}:{port}")
    # uvicorn re-raises the signal that stopped it once it is done; exit 0 then
    signal.signal(signal.SIGTERM, _exit_quietly)
    signal.signal(signal.SIGINT, _exit_quietly)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    if not server.started:
        sys.exit(3)


if __name__ == "__main__":  # pragma: no cover
    main()
