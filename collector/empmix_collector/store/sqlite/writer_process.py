"""The SQLite writer in a process of its own, so that it never waits for the event loop's GIL.

In one process the writer thread and the event loop (HTTP, decoding, validation) share one
GIL. Under load the event loop holds it most of the time, and every ``sqlite3`` call of the
writer gives it up and must take it back: a group that needs 3 ms of CPU was held for
100-500 ms (``GET /api/writer``: ``hold_ms`` against ``cpu_ms``), and every request behind it
waited as long. :class:`ProcessWriter` has the same interface as
:class:`~empmix_collector.store.writer.GroupWriter`, but runs that ``GroupWriter`` (same group
commit, same transaction function, ``sqlite.store.make_commit``) in a child process, with its
own interpreter and GIL. Validated batches go to it over a pipe; its answers (results or
errors, and each group's timings) come back once the group has committed, so a reply is still
never sent before its records are committed.

If the collector is killed, the child reads the end of the pipe, commits what it had already
received (none of it was acknowledged) and exits. If the child dies, every batch waiting for it
fails with ``StoreUnavailable`` (503: nothing of them was acknowledged) and a new child is
started.

Example::

    writer = ProcessWriter("events.db", max_ids_per_person=500, max_pending=2000)
    writer.start()
    result = await writer.submit(batch)
    writer.stop()
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
import pickle
import queue
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from empmix_collector.domain.records import WriteBatch, WriteResult
from empmix_collector.store.base import StoreBusy, StoreClosed, StoreUnavailable
from empmix_collector.store.writer import DEFAULT_MAX_PENDING, SMALL_BATCH_RECORDS, GroupWriter
from empmix_collector.store.writer_stats import WriterStats

__all__ = ["ProcessWriter"]

log = logging.getLogger("empmix_collector.store")

_Waiting = tuple[asyncio.AbstractEventLoop, "asyncio.Future[WriteResult]"]
_Answer = tuple[int, WriteResult | None, BaseException | None]


class ProcessWriter:
    """:class:`~empmix_collector.store.writer.GroupWriter`'s interface, the writer in a child process.

    Args:
        path: the SQLite file (schema already in place).
        max_ids_per_person: identity cluster cap.
        max_pending: batches sent and not yet answered beyond which :meth:`submit` raises
            :class:`StoreBusy`.
    """

    def __init__(self, path: str, *, max_ids_per_person: int, max_pending: int = DEFAULT_MAX_PENDING) -> None:
        self.path = path
        self.max_ids_per_person = max_ids_per_person
        self.max_pending = max_pending
        self.stats = WriterStats()
        """Per-group timings, as the child reports them (``GET /api/writer``)."""
        self.commit_count = 0
        """Transactions the child committed."""
        self._waiting: dict[int, _Waiting] = {}
        self._lock = threading.Lock()  # _waiting, the pipe's sending end, the child
        self._ids = itertools.count(1)
        self._running = False
        self._conn: Connection | None = None
        self._child: Any = None
        self._receiver: threading.Thread | None = None
        # (rank, ident, message): small batches (rank 0) are sent before large ones, then the stop
        self._outbox: queue.PriorityQueue[tuple[int, int, tuple[int, WriteBatch, float] | None]] = queue.PriorityQueue()
        self._sender: threading.Thread | None = None

    @property
    def pending(self) -> int:
        """Batches sent to the child and not yet answered."""
        return len(self._waiting)

    def start(self) -> None:
        """Start the child process (it opens its own connection) and the thread that reads its answers."""
        self._running = True
        self._spawn()
        self._sender = threading.Thread(target=self._send, name="empmix-writer-sender", daemon=True)
        self._sender.start()

    def _spawn(self) -> None:
        context = multiprocessing.get_context("spawn")  # never fork a process that has threads
        ours, theirs = context.Pipe()
        child = context.Process(
            target=_child_main, args=(theirs, self.path, self.max_ids_per_person), name="empmix-writer", daemon=True
        )
        child.start()
        theirs.close()
        self._conn, self._child = ours, child
        self._receiver = threading.Thread(target=self._receive, args=(ours, child), name="empmix-writer-answers")
        self._receiver.daemon = True
        self._receiver.start()

    def stop(self) -> None:
        """Let the child commit what it has, then stop it. Idempotent."""
        if not self._running:
            return
        self._running = False
        self._outbox.put((2, 0, None))  # after every batch already submitted
        if self._sender is not None:
            self._sender.join()
        with self._lock:
            child, receiver = self._child, self._receiver
        if receiver is not None:
            receiver.join()
        if child is not None:
            child.join(30)
            if child.is_alive():
                child.kill()

    async def submit(self, batch: WriteBatch) -> WriteResult:
        """Send ``batch`` to the child and wait until its transaction has committed.

        Raises:
            StoreClosed: the writer is stopped.
            StoreBusy: too many batches are already waiting.
            StoreUnavailable: the database cannot be reached, or the child process died.
            Exception: whatever the commit raised for this batch alone (nothing of it stored).
        """
        if not self._running:
            raise StoreClosed("the store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[WriteResult] = loop.create_future()
        with self._lock:
            if len(self._waiting) >= self.max_pending:
                raise StoreBusy(f"{len(self._waiting)} batches are waiting to be written")
            ident = next(self._ids)
            self._waiting[ident] = (loop, future)
        # the sender thread pickles and writes it: a 2,000-record batch is ~0.5 MB, more than the
        # pipe holds, and the event loop must not wait for the child to read it
        rank = 0 if len(batch) <= SMALL_BATCH_RECORDS else 1  # a one-event request is not queued behind them
        self._outbox.put((rank, ident, (ident, batch, time.perf_counter())))
        # shield: a client that hangs up does not cancel a write already sent
        return await asyncio.shield(future)

    def _send(self) -> None:
        """Batches to the child, in submit order (then ``None``: commit what came and stop)."""
        while True:
            item = self._outbox.get()[2]
            with self._lock:
                conn = self._conn
                if item is not None and item[0] not in self._waiting:
                    continue  # its child died meanwhile: already answered 503
            try:
                assert conn is not None
                conn.send(item)
            except (OSError, ValueError) as exc:
                if item is not None:
                    with self._lock:
                        waiting = self._waiting.pop(item[0], None)
                    gone = StoreUnavailable(f"the writer process is gone: {exc}")
                    _deliver([(waiting, None, gone)])
            if item is None:
                return

    def _receive(self, conn: Connection, child: Any) -> None:
        """The answers of one child, until it exits (then, if still running, start another)."""
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            if message is None:  # the child is done (after stop)
                break
            answers, group, committed = message
            self.stats.add_group(group)
            if committed:
                self.commit_count += 1
            with self._lock:
                found = [(self._waiting.pop(ident, None), result, error) for ident, result, error in answers]
            _deliver(found)
        conn.close()
        child.join()
        with self._lock:
            lost, self._waiting = self._waiting, {}
            restart = self._running and self._conn is conn
        if lost:
            log.error("the writer process exited (code %s): %d batches turned away", child.exitcode, len(lost))
            gone = StoreUnavailable("the writer process exited; nothing of this batch was acknowledged")
            _deliver([(waiting, None, gone) for waiting in lost.values()])
        if restart:
            log.warning("starting a new writer process")
            self._spawn()


def _deliver(found: list[tuple[_Waiting | None, WriteResult | None, BaseException | None]]) -> None:
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[WriteResult], Any, Any]]] = {}
    for waiting, result, error in found:
        if waiting is not None:
            by_loop.setdefault(waiting[0], []).append((waiting[1], result, error))
    for loop, resolved in by_loop.items():
        try:
            loop.call_soon_threadsafe(_resolve, resolved)
        except RuntimeError:  # the awaiting loop is gone
            pass


def _resolve(resolved: list[tuple[asyncio.Future[WriteResult], Any, Any]]) -> None:
    for future, result, error in resolved:
        if future.done():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


def _picklable(error: BaseException | None) -> BaseException | None:
    if error is None:
        return None
    try:
        pickle.dumps(error)
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")
    return error


def _child_main(conn: Connection, path: str, max_ids_per_person: int) -> None:
    """The child: a ``GroupWriter`` on its own connection; batches in from the pipe, answers out."""
    from empmix_collector.store.sqlite.store import connect, make_commit

    sys.setswitchinterval(0.001)  # the pipe's reader thread takes batches in while the writer works
    db = connect(path)
    stats = WriterStats()
    sending = threading.Lock()

    def deliver(outcomes: list[Any]) -> None:
        answers: list[_Answer] = [(task.ident, result, _picklable(error)) for task, result, error in outcomes]
        committed = any(error is None for _, _, error in answers)
        try:
            with sending:
                conn.send((answers, stats.last_group(), committed))
        except OSError:  # the collector is gone: nothing of it can be acknowledged any more
            pass

    writer = GroupWriter(make_commit(db, max_ids_per_person, stats), on_exit=db.close, stats=stats, deliver=deliver)
    writer.start()
    try:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):  # the collector is gone (killed): commit what came, then stop
                break
            if message is None:
                break
            ident, batch, queued = message
            writer.enqueue(batch, ident, queued)
    finally:
        writer.stop()
        try:
            with sending:
                conn.send(None)
        except OSError:
            pass
        conn.close()
