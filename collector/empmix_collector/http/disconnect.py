"""Stop working for a client that has gone: a handler runs while the connection is open.

The query API's handlers await reads that may take seconds. When the HTTP client closes its
connection meanwhile (uvicorn then delivers ``http.disconnect``), :func:`unless_gone` cancels the
handler's task; the store turns that cancellation into an interrupt of the running statement
(``store.cancel``), so an abandoned funnel frees its database connection at once.

Example::

    Route("/api/funnel", while_connected(api.funnel))   # or: await unless_gone(request, work)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

__all__ = ["unless_gone", "while_connected", "CLIENT_GONE"]

CLIENT_GONE = 499
"""Status of the reply no one reads (nginx's "client closed request"; never sent on a live connection)."""


async def _disconnected(request: Request) -> None:
    """Returns when the client has gone (a GET has no body: every message but the first one
    that ``receive`` gives is the disconnect)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def unless_gone(request: Request, work: Awaitable[Response]) -> Response:
    """``await work``, cancelled if the client disconnects first (then a 499 no one receives)."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait((task, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if task.cancelled():
        return Response(status_code=CLIENT_GONE)
    return task.result()


def while_connected(endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """``endpoint``, cancelled when its client disconnects (its errors pass through unchanged)."""

    async def run(request: Request) -> Response:
        return await unless_gone(request, endpoint(request))

    run.__name__ = getattr(endpoint, "__name__", "endpoint")
    run.__doc__ = endpoint.__doc__
    return run
