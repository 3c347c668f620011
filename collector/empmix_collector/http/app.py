"""The ASGI application: routes, CORS, the store's lifetime and the optional static site.

Example::

    from empmix_collector.http.app import create_app
    from empmix_collector.settings import Settings
    app = create_app(Settings(db_path="events.db", tokens=("tok",)))
    # uvicorn.run(app) -- or, in tests: with TestClient(app) as client: ...
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route

from empmix_collector.http.api import QueryAPI
from empmix_collector.http.boot import BOOT_PATH, BootScript
from empmix_collector.http.cookie import CookieEndpoint
from empmix_collector.http.cors import CORSMiddleware
from empmix_collector.http.disconnect import while_connected
from empmix_collector.http.errors import ERROR_REPLIES
from empmix_collector.http.hosts import HostGuard
from empmix_collector.http.ingest import Ingest
from empmix_collector.http.shedding import LoadGauges, LoadShedder
from empmix_collector.http.site import SiteFiles
from empmix_collector.settings import Settings
from empmix_collector.store import create_store
from empmix_collector.store.base import Store

__all__ = ["create_app"]

log = logging.getLogger("empmix_collector")
_GET_KINDS = ("track", "engage", "groups")
"""Also answered on GET with ``?data=`` (Mixpanel's image and JSONP transports)."""


def create_app(settings: Settings, *, store: Store | None = None) -> Starlette:
    """Build the collector app for ``settings``.

    The store opens on lifespan startup and closes (after draining queued writes)
    on shutdown. ``app.state.store`` and ``app.state.settings`` expose both;
    ``app.state.load`` the load shedder's gauges.

    Args:
        settings: validated settings.
        store: a store to use instead of one built from ``settings`` (tests).
    """
    if store is None:
        store = create_store(settings)
    ingest = Ingest(settings, store)
    api = QueryAPI(settings, store)
    routes: list[BaseRoute] = [
        Route("/healthz", api.healthz, methods=["GET"]),
        # the bound method: Starlette calls an instance as a raw ASGI app (scope, receive, send)
        Route(BOOT_PATH, BootScript().__call__, methods=["GET", "HEAD"]),
    ]
    cookie = CookieEndpoint(settings, store)
    kinds = {"track": ingest.track, "engage": ingest.engage, "groups": ingest.groups, "cookie": cookie.set_cookie}
    paths = {"/healthz"}
    named = [(f"/{name}", name) for name in kinds] + [(path, name) for name, path in settings.api_routes]
    for path, name in named + [("/import", "import")]:  # --api-route NAME=PATH: the same handler on PATH too
        endpoint = ingest.import_ if name == "import" else kinds[name]
        methods = ["GET", "POST"] if name in _GET_KINDS else ["POST"]
        routes.append(Route(path, endpoint, methods=methods))
        routes.append(Route(path + "/", endpoint, methods=methods))
        paths.update((path, path + "/"))
    routes += [
        Route("/api/persons", while_connected(api.persons), methods=["GET"]),
        Route("/api/persons/{distinct_id:path}/events", while_connected(api.person_events), methods=["GET"]),
        Route("/api/persons/{distinct_id:path}/sessions", while_connected(api.person_sessions), methods=["GET"]),
        Route("/api/groups", while_connected(api.groups), methods=["GET"]),
        Route("/api/groups/{group_key}/{group_id:path}", while_connected(api.group), methods=["GET"]),
        Route("/api/persons/{distinct_id:path}", while_connected(api.person), methods=["GET"]),
        Route("/api/events", while_connected(api.events), methods=["GET"]),
        Route("/api/merges", while_connected(api.merges), methods=["GET"]),
        Route("/api/funnel", while_connected(api.funnel), methods=["GET"]),
        Route("/api/retention", while_connected(api.retention), methods=["GET"]),
        Route("/api/startup", while_connected(api.startup), methods=["GET"]),
        Route("/api/cookieless", while_connected(api.cookieless), methods=["GET"]),
        Route("/api/writer", api.writer, methods=["GET"]),
    ]
    if settings.site_dir is not None:
        routes.append(Mount("/", app=SiteFiles(settings.site_dir), name="site"))

    load = LoadGauges()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await asyncio.to_thread(store.open)
        stats = getattr(store, "writer_stats", None)
        if stats is not None:
            stats.watch_gc()
        if settings.secret is None:
            log.warning(
                "no --secret: the query API (/api/...) answers loopback clients only, and /import is disabled;"
                " give --secret SECRET before serving other machines (or through a reverse proxy on this one)"
            )
        try:
            yield
        finally:
            ingest.close()
            if stats is not None:
                stats.unwatch_gc()
            await asyncio.to_thread(store.close)

    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(HostGuard, allowed_hosts=settings.allowed_hosts),
            Middleware(
                CORSMiddleware,
                allow_origins=settings.allow_origins,
                is_route=lambda path: path in paths or path.startswith("/api/"),
            ),
            # inside CORS, so that a page can read the 503's Retry-After
            Middleware(
                LoadShedder, max_bytes=settings.max_inflight_bytes, max_requests=settings.max_requests, gauges=load
            ),
        ],
        exception_handlers=ERROR_REPLIES,
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.settings = settings
    app.state.cookieless = ingest.cookieless  # its clock: tests move the UTC day
    app.state.load = load
    return app
