"""Shared pieces of the benchmarks: paths, statistics, and the collector as a subprocess.

Example::

    with CollectorProcess(tmp / "events.db", ["bench"]) as server:
        ...  # POST to server.url
        print(server.peak_rss_bytes(), count_events(server.db, "bench"))
"""

from __future__ import annotations

import math
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

ROOT = Path(__file__).resolve().parent.parent
WWW = ROOT / "build" / "www"
PAGE_DIR = Path(__file__).resolve().parent / "page"
RESULTS = Path(__file__).resolve().parent / "results"
MIXPANEL_MIN_JS = ROOT / "node_modules" / "mixpanel-browser" / "dist" / "mixpanel.min.js"

__all__ = [
    "ROOT", "WWW", "PAGE_DIR", "RESULTS", "MIXPANEL_MIN_JS",
    "fmt", "percentile", "summarize_ms", "CollectorProcess", "count_events", "read_status_kb",
]


def fmt(value: object, digits: int = 0, suffix: str = "") -> str:
    """A figure for the Markdown tables: thousands separated, ``–`` when missing or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, (int, float)):
        return f"{value:,.{digits}f}{suffix}"
    return str(value)


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100) of a non-empty sequence."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summarize_ms(values_ms: Sequence[float]) -> dict[str, float]:
    """``{n, median_us, p95_us, p99_us, mean_us, max_us}`` of millisecond samples, in microseconds."""
    if not values_ms:
        return {"n": 0, "median_us": math.nan, "p95_us": math.nan, "p99_us": math.nan,
                "mean_us": math.nan, "max_us": math.nan}
    return {
        "n": len(values_ms),
        "median_us": round(statistics.median(values_ms) * 1000, 2),
        "p95_us": round(percentile(values_ms, 95) * 1000, 2),
        "p99_us": round(percentile(values_ms, 99) * 1000, 2),
        "mean_us": round(statistics.fmean(values_ms) * 1000, 2),
        "max_us": round(max(values_ms) * 1000, 2),
    }


def read_status_kb(pid: int, field: str) -> int | None:
    """A ``kB`` field of ``/proc/PID/status`` (``VmHWM``, ``VmRSS``), or None if unreadable."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    found = re.search(rf"^{field}:\s+(\d+)\s+kB", text, re.MULTILINE)
    return int(found.group(1)) if found else None


class CollectorProcess:
    """``python -m empmix_collector`` on a free loopback port, stopped on exit.

    Args:
        db: SQLite file (created if missing) or a ``postgresql://`` URL.
        tokens: accepted project tokens.
        site: optional folder served as the static site.
        python: interpreter to run it with (default: this one). Another one (e.g. a venv with
            uvloop and httptools, for an A/B comparison) imports the collector from ``collector/``.
        extra: more command-line options (``--workers 2``).
    """

    def __init__(self, db: Path | str, tokens: Sequence[str], site: Path | None = None, python: str | None = None,
                 extra: Sequence[str] = ()) -> None:
        self.db = db
        self.python = python or os.environ.get("BENCH_COLLECTOR_PYTHON") or sys.executable
        cmd = [self.python, "-m", "empmix_collector", "--host", "127.0.0.1", "--port", "0", "--db", str(db)]
        for token in tokens:
            cmd += ["--token", token]
        if site is not None:
            cmd += ["--site", str(site)]
        self.cmd = cmd + list(extra)
        self.url = ""
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    def start(self, timeout_s: float = 30.0) -> Self:
        """Start and wait for the ``listening on`` line."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if self.python != sys.executable:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "collector"), env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        env=env, cwd=ROOT)
        ready = threading.Event()

        def drain() -> None:
            assert self.process is not None and self.process.stdout is not None
            for line in self.process.stdout:
                self.output.append(line)
                if not self.url and "listening on " in line:
                    self.url = line.rsplit("listening on ", 1)[1].strip()
                    ready.set()
            ready.set()

        threading.Thread(target=drain, daemon=True).start()
        if not ready.wait(timeout_s) or not self.url:
            self.stop()
            raise RuntimeError("the collector did not start:\n" + "".join(self.output[-40:]))
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def pids(self) -> list[int]:
        """This process and its direct children (the workers of ``--workers N``)."""
        return [self.pid, *child_pids(self.pid)]

    def peak_rss_bytes(self) -> int | None:
        """Peak resident memory so far (``VmHWM``)."""
        kb = read_status_kb(self.pid, "VmHWM")
        return None if kb is None else kb * 1024

    def rss_bytes(self) -> int | None:
        """Resident memory now (``VmRSS``)."""
        kb = read_status_kb(self.pid, "VmRSS")
        return None if kb is None else kb * 1024

    def stop(self) -> None:
        """SIGTERM (queued writes are committed), SIGKILL after 30 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (from ``/proc``)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def cpu_seconds(pids: Sequence[int]) -> float:
    """utime + stime of these processes together, from ``/proc/PID/stat`` (gone ones count 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def count_events(db: Path | str, token: str | None = None) -> int:
    """Rows in the collector's ``events`` table (of one project when ``token`` is given),
    read through a read-only connection (safe while the collector runs: WAL)."""
    if str(db).startswith("postgresql://"):
        import psycopg

        sql = "SELECT COUNT(*) FROM events e JOIN projects p ON p.id = e.project_id WHERE p.token = %s"
        with psycopg.connect(str(db), autocommit=True) as pg:
            row = pg.execute(sql if token else "SELECT COUNT(*) FROM events", (token,) if token else ()).fetchone()
        return int(row[0]) if row else 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        if token is None:
            return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
        row = conn.execute(
            "SELECT COUNT(*) FROM events e JOIN projects p ON p.id = e.project_id WHERE p.token = ?", (token,)
        ).fetchone()
        return int(row[0])
    finally:
        conn.close()
