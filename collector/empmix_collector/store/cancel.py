"""Cancelling a read that is running on a pool thread, from the event loop.

The read's thread attaches the function that interrupts its connection's current statement
(SQLite ``Connection.interrupt``, PostgreSQL ``Connection.cancel_safe``); the event loop calls
:meth:`ReadCancel.cancel` when no one waits for the result any more (``SqlStore._read`` does
when its task is cancelled, e.g. because the HTTP client went away). A cancel that comes before
the connection is attached, or between two statements, is seen by :meth:`ReadCancel.check`.

Example::

    cancel = ReadCancel()
    # thread:      cancel.attach(conn.interrupt); ...; cancel.check(); conn.execute(...)
    # event loop:  cancel.cancel()
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from empmix_collector.store.base import QueryGone

__all__ = ["ReadCancel"]


class ReadCancel:
    """The cancel switch of one read (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._interrupt: Callable[[], object] | None = None
        self.cancelled = False
        """Set once :meth:`cancel` has been called."""

    def attach(self, interrupt: Callable[[], object]) -> None:
        """The read's thread: ``interrupt()`` stops the statement running on its connection.

        Raises:
            QueryGone: the read was cancelled already.
        """
        with self._lock:
            self._interrupt = interrupt
        self.check()

    def detach(self) -> None:
        """The read's thread is done with its connection (it goes back to the pool)."""
        with self._lock:
            self._interrupt = None

    def check(self) -> None:
        """``QueryGone`` if the read was cancelled (call before each statement)."""
        if self.cancelled:
            raise QueryGone("the read was cancelled: no one waits for its result")

    def cancel(self) -> None:
        """Stop the read: its running statement is interrupted, the next one is not started."""
        with self._lock:
            self.cancelled = True
            interrupt = self._interrupt
            if interrupt is not None:
                interrupt()
