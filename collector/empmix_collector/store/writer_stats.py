"""What the writer thread spends its time on, group by group (observability and benchmarks).

:class:`WriterStats` keeps the last :data:`KEEP_GROUPS` commit groups: when each started, how
long the oldest batch had waited in the queue, how long the writer held the transaction
(``hold_ms``: ``BEGIN`` to ``COMMIT`` done, the time every later request waits for), how much of
that was the ``COMMIT`` itself, and the group's size. It also counts the pauses of Python's
cyclic garbage collector (they stop every thread) and what the store's checkpoints did.
``GET /api/writer`` (behind the query API's access rule) returns :meth:`WriterStats.snapshot`;
a client keeps the ``seq`` it saw and reads only the groups after it (``?after=SEQ``).

Example::

    stats = WriterStats()
    stats.record_group(started=t0, waited_s=0.002, hold_s=0.008, commit_s=0.001, cpu_s=0.007, batches=12, records=600)
    stats.snapshot(after=0)["groups"][0]["hold_ms"]  # 8.0
"""

from __future__ import annotations

import collections
import gc
import threading
import time
from typing import Any

__all__ = ["WriterStats", "KEEP_GROUPS"]

KEEP_GROUPS = 8192
"""Groups remembered (about 1 MB); a benchmark run of 20 s at 50 events/request makes ~2,000."""


class WriterStats:
    """Per-group timings of one writer (written by the writer thread, read from any thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._groups: collections.deque[tuple[int, float, float, float, float, float, int, int]] = collections.deque(
            maxlen=KEEP_GROUPS
        )
        self.seq = 0
        self.commit_s = 0.0
        """Set by the store's commit function: how long its ``COMMIT`` took (this group)."""
        """Groups recorded since start (the ``seq`` of the last one)."""
        self.max_hold_ms = 0.0
        self.checkpoints: collections.Counter[str] = collections.Counter()
        """What the store's checkpoints did (``passive``, ``passive_partial``, ``truncate``, ``busy``...)."""
        self.checkpoint_s = 0.0
        self._checkpoint_spans: collections.deque[tuple[float, float, str]] = collections.deque(maxlen=1024)
        self.wal_pages = 0
        """WAL size in pages at the last checkpoint (SQLite)."""
        self.gc_pauses = 0
        self.gc_pause_s = 0.0
        self.gc_max_pause_ms = 0.0
        self._gc_started = 0.0

    def record_group(
        self,
        *,
        started: float,
        waited_s: float,
        hold_s: float,
        commit_s: float,
        cpu_s: float,
        batches: int,
        records: int,
    ) -> None:
        """One committed (or failed) group; times from ``time.perf_counter`` (``cpu_s``: the
        writer thread's own CPU time meanwhile, ``time.thread_time``: the rest of ``hold_s`` it
        waited, for the GIL or for I/O)."""
        with self._lock:
            self.seq += 1
            self._groups.append((self.seq, started, waited_s, hold_s, commit_s, cpu_s, batches, records))
            self.max_hold_ms = max(self.max_hold_ms, hold_s * 1000)

    def last_group(self) -> tuple[Any, ...] | None:
        """The last group recorded, as :meth:`add_group` takes it (to pass to another process)."""
        with self._lock:
            return self._groups[-1][1:] if self._groups else None

    def add_group(self, group: tuple[Any, ...] | None) -> None:
        """Record a group another process's stats gave by :meth:`last_group` (numbered here)."""
        if group is None:
            return
        started, waited, hold, commit, cpu, batches, records = group
        with self._lock:
            self.seq += 1
            self._groups.append((self.seq, started, waited, hold, commit, cpu, batches, records))
            self.max_hold_ms = max(self.max_hold_ms, hold * 1000)

    def record_checkpoint(self, kind: str, seconds: float, wal_pages: int | None = None) -> None:
        """One checkpoint attempt of the store (SQLite's checkpointer thread), just finished."""
        with self._lock:
            self.checkpoints[kind] += 1
            self.checkpoint_s += seconds
            self._checkpoint_spans.append((time.perf_counter() - seconds, seconds, kind))
            if wal_pages is not None:
                self.wal_pages = wal_pages

    def watch_gc(self) -> None:
        """Count the garbage collector's pauses (``gc.callbacks``) until :meth:`unwatch_gc`."""
        if self._on_gc not in gc.callbacks:
            gc.callbacks.append(self._on_gc)

    def unwatch_gc(self) -> None:
        """Stop counting the garbage collector's pauses."""
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self._gc_started:
            pause = time.perf_counter() - self._gc_started
            self.gc_pauses += 1
            self.gc_pause_s += pause
            self.gc_max_pause_ms = max(self.gc_max_pause_ms, pause * 1000)

    def snapshot(self, after: int = 0) -> dict[str, Any]:
        """Totals, and the remembered groups with ``seq > after`` (times in ms, ``start_s`` on
        ``time.perf_counter``'s clock)."""
        with self._lock:
            groups = [
                {
                    "seq": seq,
                    "start_s": round(started, 4),
                    "wait_ms": round(waited * 1000, 2),
                    "hold_ms": round(hold * 1000, 2),
                    "commit_ms": round(commit * 1000, 2),
                    "cpu_ms": round(cpu * 1000, 2),
                    "batches": batches,
                    "records": records,
                }
                for seq, started, waited, hold, commit, cpu, batches, records in self._groups
                if seq > after
            ]
            return {
                "seq": self.seq,
                "max_hold_ms": round(self.max_hold_ms, 2),
                "checkpoints": dict(self.checkpoints),
                "checkpoint_s": round(self.checkpoint_s, 3),
                "wal_pages": self.wal_pages,
                "checkpoint_spans": [
                    {"start_s": round(start, 4), "ms": round(seconds * 1000, 2), "kind": kind}
                    for start, seconds, kind in self._checkpoint_spans
                ],
                "gc_pauses": self.gc_pauses,
                "gc_pause_s": round(self.gc_pause_s, 3),
                "gc_max_pause_ms": round(self.gc_max_pause_ms, 2),
                "groups": groups,
            }
