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
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route

from empmix_collector.http.api import QueryAPI
from empmix_collector.http.boot import BOOT_PATH, BootScript
from empmix_collector.http.cookie import CookieEndpoint
from empmix_collector.http.cors import CORSMiddleware
from empmix_collector.http.ingest import Ingest
from empmix_collector.http.site import SiteFiles
from empmix_collector.settings import Settings
from empmix_collector.store import create_store
from empmix_collector.store.base import Store

__all__ = ["create_app"]


def create_app(settings: Settings, *, store: Store | None = None) -> Starlette:
    """Build the collector app for ``settings``.

    The store opens on lifespan startup and closes (after draining queued writes)
    on shutdown. ``app.state.store`` and ``app.state.settings`` expose both.

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
    for path, endpoint in (*((f"/{name}", handler) for name, handler in kinds.items()), ("/import", ingest.import_)):
        routes.append(Route(path, endpoint, methods=["POST"]))
        routes.append(Route(path + "/", endpoint, methods=["POST"]))
    for name, path in settings.api_routes:  # --api-route NAME=PATH: the same handler on PATH too
        routes.append(Route(path, kinds[name], methods=["POST"]))
        routes.append(Route(path + "/", kinds[name], methods=["POST"]))
    routes += [
        Route("/api/persons", api.persons, methods=["GET"]),
        Route("/api/persons/{distinct_id:path}/events", api.person_events, methods=["GET"]),
        Route("/api/persons/{distinct_id:path}/sessions", api.person_sessions, methods=["GET"]),
        Route("/api/groups", api.groups, methods=["GET"]),
        Route("/api/groups/{group_key}/{group_id:path}", api.group, methods=["GET"]),
        Route("/api/persons/{distinct_id:path}", api.person, methods=["GET"]),
        Route("/api/events", api.events, methods=["GET"]),
        Route("/api/merges", api.merges, methods=["GET"]),
        Route("/api/funnel", api.funnel, methods=["GET"]),
        Route("/api/retention", api.retention, methods=["GET"]),
        Route("/api/startup", api.startup, methods=["GET"]),
        Route("/api/cookieless", api.cookieless, methods=["GET"]),
    ]
    if settings.site_dir is not None:
        routes.append(Mount("/", app=SiteFiles(settings.site_dir), name="site"))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await asyncio.to_thread(store.open)
        try:
            yield
        finally:
            await asyncio.to_thread(store.close)

    app = Starlette(
        routes=routes,
        middleware=[Middleware(CORSMiddleware, allow_origins=settings.allow_origins)],
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.settings = settings
    app.state.cookieless = ingest.cookieless  # its clock: tests move the UTC day
    return app
