"""A small HTTP/1.1 load generator on raw asyncio streams (keep-alive, one request in flight
per connection), cheap enough to share a 2-core machine with the server it loads.

Example::

    result = run_load("http://127.0.0.1:8000", "/track/?verbose=1", lambda seq: body_for(seq),
                      content_type="application/x-www-form-urlencoded", connections=16, duration_s=20)
    print(result.requests, result.latency())
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import resource
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bench.common import percentile

__all__ = ["LoadResult", "run_load"]


@dataclass
class LoadResult:
    """What a load run did: counts, wall time, per-request latencies, its own CPU time."""

    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    elapsed_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    sent_s: list[float] = field(default_factory=list)
    """When each answered request was sent (``time.perf_counter``, the same clock as the collector's
    ``/api/writer`` on this machine), in the order of ``latencies_s``."""
    client_cpu_s: float = 0.0

    @property
    def ok(self) -> int:
        """Requests answered 200."""
        return self.statuses.get(200, 0)

    def latency(self) -> dict[str, float]:
        """``{p50_ms, p99_ms, max_ms}`` over all answered requests."""
        lat = self.latencies_s
        if not lat:
            return {"p50_ms": float("nan"), "p99_ms": float("nan"), "max_ms": float("nan")}
        return {
            "p50_ms": round(percentile(lat, 50) * 1000, 2),
            "p99_ms": round(percentile(lat, 99) * 1000, 2),
            "max_ms": round(max(lat) * 1000, 2),
        }


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _read_reply(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        lowered = name.strip().lower()
        if lowered == b"content-length":
            length = int(value.strip())
        elif lowered == b"transfer-encoding":
            raise RuntimeError("chunked replies are not supported by the load generator")
    if length:
        await reader.readexactly(length)
    return status


async def _run(url: str, path: str, make_body: Callable[[int], bytes], content_type: str, connections: int,
               duration_s: float | None, total_requests: int | None) -> LoadResult:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
            "Content-Length: %d\r\n\r\n").encode("latin-1")
    result = LoadResult()
    counter = itertools.count()
    deadline = None if duration_s is None else time.perf_counter() + duration_s
    latencies = result.latencies_s
    sent = result.sent_s

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while True:
                if deadline is not None and time.perf_counter() >= deadline:
                    return
                seq = next(counter)
                if total_requests is not None and seq >= total_requests:
                    return
                body = make_body(seq)
                t0 = time.perf_counter()
                writer.write(head % len(body) + body)
                try:
                    status = await _read_reply(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    result.errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                latencies.append(time.perf_counter() - t0)
                sent.append(t0)
                result.requests += 1
                result.statuses[status] += 1
        finally:
            writer.close()

    cpu0, t0 = _cpu_seconds(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    result.elapsed_s = time.perf_counter() - t0
    result.client_cpu_s = _cpu_seconds() - cpu0
    return result


def run_load(url: str, path: str, make_body: Callable[[int], bytes], *, content_type: str,
             connections: int, duration_s: float | None = None, total_requests: int | None = None) -> LoadResult:
    """POST ``make_body(seq)`` (``seq`` = 0, 1, 2, ... across all connections) to ``url + path``
    until ``duration_s`` passes or ``total_requests`` were sent (give one of them)."""
    if (duration_s is None) == (total_requests is None):
        raise ValueError("give exactly one of duration_s and total_requests")
    # a thread of its own: the caller's thread may run an event loop already (Playwright's sync API)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="loadgen") as pool:
        job = pool.submit(asyncio.run,
                          _run(url, path, make_body, content_type, connections, duration_s, total_requests))
        return job.result()
