"""Running the app: uvicorn on a socket bound beforehand, in one or several processes.

``serve`` runs one collector process on an already bound socket and prints
``empmix-collector listening on URL`` (flushed) once the app has started, which
test fixtures wait for. ``serve_workers`` forks N such processes on the same
socket (the kernel spreads connections over them) and stays in front as their
supervisor: SIGINT/SIGTERM go to every worker, and it exits when they have.
Queued writes are committed before a worker exits.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from types import FrameType

import uvicorn

from empmix_collector.http.app import create_app
from empmix_collector.settings import Settings

__all__ = ["bind", "serve", "serve_workers"]

log = logging.getLogger("empmix_collector.server")


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket (``port`` 0 picks a free one), inheritable by workers."""
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


def url_of(sock: socket.socket) -> str:
    """``http://HOST:PORT`` of a bound socket."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


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


def serve(settings: Settings, sock: socket.socket, *, log_level: str, access_log: bool) -> int:
    """Run one collector process on ``sock`` until SIGINT/SIGTERM; returns its exit status
    (3 if the app could not start, for example the store failed to open)."""
    config = uvicorn.Config(
        create_app(settings),
        log_level=log_level,
        access_log=access_log,
        lifespan="on",
        server_header=False,
        proxy_headers=False,  # client addresses are not used; skip the per-request middleware
        timeout_graceful_shutdown=10,
        timeout_keep_alive=30,
        limit_concurrency=settings.max_connections,  # connections and requests; past it uvicorn answers 503
    )
    server = _Server(config, url_of(sock))
    # uvicorn re-raises the signal that stopped it once it is done; exit 0 then
    signal.signal(signal.SIGTERM, _exit_quietly)
    signal.signal(signal.SIGINT, _exit_quietly)
    try:
        server.run(sockets=[sock])
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
    return 0 if server.started else 3


def serve_workers(settings: Settings, sock: socket.socket, workers: int, *, log_level: str, access_log: bool) -> int:
    """Fork ``workers`` processes serving ``sock``; returns the worst exit status among them."""
    children: list[int] = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # the worker
            status = 1
            try:
                status = serve(settings, sock, log_level=log_level, access_log=access_log)
            except SystemExit as exc:
                status = exc.code if isinstance(exc.code, int) else 1
            except BaseException:  # a worker must never return into the supervisor's code
                log.exception("worker failed")
            finally:
                sys.stdout.flush()
                os._exit(status)
        children.append(pid)
    sock.close()

    def forward(signum: int, frame: FrameType | None) -> None:
        for child in children:
            try:
                os.kill(child, signum)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    worst = 0
    for child in children:
        _, status = os.waitpid(child, 0)
        code = os.waitstatus_to_exitcode(status)
        worst = max(worst, code if code >= 0 else 128 - code)
        if code != 0:
            forward(signal.SIGTERM, None)  # one worker died: stop the others too
    return worst
