"""A real collector for tests: ``python -m empmix_collector`` on a free loopback port.

Shared by the collector's, the SDK's and the site's tests, which start it with their own tokens,
secret and ``--site``. It waits for the ``listening on`` line (``--port 0`` picks the port).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

STARTUP_TIMEOUT_S = 30.0


@dataclass
class CollectorProcess:
    """A running collector (its stdout and stderr drained into ``output``)."""

    process: subprocess.Popen[str]
    url: str
    db: Path | str  # what --db got: a SQLite file or a postgresql:// URL
    output: list[str] = field(default_factory=list)
    secret: str | None = None

    def api(self, path: str, token: str | None = None) -> Any:
        """GET a query-API path (for ``token``'s project if given); None on 404."""
        if token is not None:
            path += ("&" if "?" in path else "?") + f"token={token}"
        request = urllib.request.Request(self.url + path)
        if self.secret:
            request.add_header("Authorization", f"Bearer {self.secret}")
        try:
            with urllib.request.urlopen(request, timeout=10) as reply:
                return json.loads(reply.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def person(self, distinct_id: str, token: str | None = None) -> dict[str, Any] | None:
        return self.api(f"/api/persons/{quote(distinct_id, safe='')}", token)

    def events_of(self, distinct_id: str, token: str | None = None) -> list[dict[str, Any]]:
        """Every stored event of the person ``distinct_id`` resolves to (empty when unknown)."""
        found = self.api(f"/api/persons/{quote(distinct_id, safe='')}/events", token)
        return found["events"] if found else []

    def kill9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode


def launch_collector(db: Path | str, *args: str, tokens: Sequence[str], secret: str | None = None,
                     cwd: Path | None = None) -> CollectorProcess:
    """Start the collector and wait until it says it listens; ``args`` are extra CLI options."""
    cmd = [sys.executable, "-m", "empmix_collector", "--host", "127.0.0.1", "--port", "0", "--db", str(db)]
    for token in tokens:
        cmd += ["--token", token]
    if secret is not None:
        cmd += ["--secret", secret]
    cmd += list(args)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env, cwd=cwd)
    output: list[str] = []
    ready = threading.Event()
    found: list[str] = []

    def drain() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if not ready.is_set() and "listening on " in line:
                found.append(line.rsplit("listening on ", 1)[1].strip())
                ready.set()
        ready.set()

    threading.Thread(target=drain, daemon=True).start()
    if not ready.wait(STARTUP_TIMEOUT_S) or not found:
        process.kill()
        raise RuntimeError("collector did not start:\n" + "".join(output))
    return CollectorProcess(process, found[0], db, output, secret)
