"""Where the collector's time goes under load: py-spy samples while benchmark 4's load runs.

Not part of ``./build.sh bench`` (py-spy is not a pinned dependency). Run::

    .venv/bin/pip install py-spy==0.4.3      # or put py-spy on PATH
    .venv/bin/python bench/profile_collector.py --per-request 50 --duration 15

Prints the share of on-CPU samples per thread, per source file and per function (own time
and inclusive), the writer's own per-group timings (``GET /api/writer``: hold, queue wait,
``COMMIT``, group sizes, checkpoints, GC pauses), and what the slowest 1 % of requests overlapped
(a long writer hold, a GC pause, neither), and writes them to ``bench/results/collector_profile.json``.
``--no-spy`` skips py-spy (its sampling costs the collector CPU) and keeps the writer's timings.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import writer_stats
from bench.collector_load import TOKEN, form_body_factory
from bench.common import RESULTS, ROOT, CollectorProcess, count_events, percentile
from bench.loadgen import LoadResult, run_load

__all__ = ["aggregate", "main", "slow_requests", "long_holds"]

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _file_group(path: str) -> str:
    if "empmix_collector" in path:
        return path[path.index("empmix_collector"):]
    return path.split("/")[0] if "/" in path else path


def aggregate(raw: str, top: int = 25) -> dict[str, Any]:
    """Shares (percent of samples) from py-spy's ``--format raw`` output (collapsed stacks)."""
    threads: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    files: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        threads[re.sub(r"\(\d+\)", "", frames[0]).strip()] += count
        calls = frames[1:] or ["<idle>"]
        leaf = _FRAME.match(calls[-1])
        own[calls[-1]] += count
        files[_file_group(leaf.group("file")) if leaf else calls[-1]] += count
        seen = set()
        for frame in calls:
            found = _FRAME.match(frame)
            key = f"{found.group('func')} ({found.group('file')})" if found else frame
            if key not in seen and "empmix_collector" in key:
                inclusive[key] += count
                seen.add(key)

    def share(counter: collections.Counter[str], limit: int) -> dict[str, float]:
        return {k: round(v / total * 100, 1) for k, v in counter.most_common(limit)} if total else {}

    return {"samples": total, "threads_pct": share(threads, 10), "files_pct": share(files, 20),
            "own_pct": share(own, top), "collector_inclusive_pct": share(inclusive, top)}


def long_holds(groups: list[dict[str, Any]], checkpoints: list[dict[str, Any]],
               long_hold_ms: float = 40.0) -> dict[str, Any]:
    """The groups held ≥ ``long_hold_ms``: how many overlapped a background checkpoint, and how
    much of their hold was the ``COMMIT`` and the writer's own CPU."""
    spans = [(c["start_s"], c["start_s"] + c["ms"] / 1000) for c in checkpoints]
    long = [g for g in groups if g["hold_ms"] >= long_hold_ms]
    during = [g for g in long if any(s0 < g["start_s"] + g["hold_ms"] / 1000 and s1 > g["start_s"]
                                     for s0, s1 in spans)]
    busy = sum(s1 - s0 for s0, s1 in spans)
    span = (groups[-1]["start_s"] - groups[0]["start_s"]) if len(groups) > 1 else 0.0
    return {
        "groups": len(groups),
        f"held_over_{int(long_hold_ms)}_ms": len(long),
        "of_which_during_a_checkpoint": len(during),
        "checkpoint_time_share": round(busy / span, 3) if span > 0 else None,
        "their_commit_ms": writer_stats.distribution([g["commit_ms"] for g in long]),
        "their_cpu_ms": writer_stats.distribution([g["cpu_ms"] for g in long]),
        "their_records": writer_stats.distribution([float(g["records"]) for g in long]),
    }


def slow_requests(load: LoadResult, groups: list[dict[str, Any]], long_hold_ms: float = 40.0) -> dict[str, Any]:
    """The requests at or above the p99: how many overlapped a writer group held ≥ ``long_hold_ms``
    (they waited for it), and the hold and size of the longest group each overlapped."""
    if not load.latencies_s or not groups:
        return {}
    cut = percentile(load.latencies_s, 99)
    slow = [(t0, t0 + lat) for t0, lat in zip(load.sent_s, load.latencies_s, strict=True) if lat >= cut]
    spans = [(g["start_s"], g["start_s"] + g["hold_ms"] / 1000, g["hold_ms"], g["records"], g["cpu_ms"])
             for g in groups]
    longest: list[tuple[float, int, float]] = []
    overlapped = 0
    for begin, end in slow:
        worst = max(((hold, records, cpu) for s0, s1, hold, records, cpu in spans if s0 < end and s1 > begin),
                    default=(0.0, 0, 0.0))
        longest.append(worst)
        overlapped += worst[0] >= long_hold_ms
    return {
        "p99_ms": round(cut * 1000, 2),
        "slow_requests": len(slow),
        f"overlapping_a_hold_over_{int(long_hold_ms)}_ms": overlapped,
        "longest_hold_overlapped_ms": writer_stats.distribution([h for h, _, _ in longest]),
        "writer_cpu_in_that_group_ms": writer_stats.distribution([c for _, _, c in longest]),
        "records_of_that_group": writer_stats.distribution([float(r) for _, r, _ in longest]),
    }


def _py_spy(explicit: str | None) -> str | None:
    for candidate in (explicit, shutil.which("py-spy"), str(ROOT / ".venv" / "bin" / "py-spy")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Profile one load run; returns the aggregate."""
    parser = argparse.ArgumentParser(prog="bench/profile_collector.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-request", type=int, default=50)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--py-spy", default=None, help="path to py-spy")
    parser.add_argument("--out", type=Path, default=RESULTS / "collector_profile.json")
    parser.add_argument("--no-spy", action="store_true", help="only the writer's timings, no py-spy")
    parser.add_argument("--tmp", default=None, help="folder for the database (e.g. /dev/shm: no disk I/O)")
    parser.add_argument("--collector-arg", action="append", default=[], help="extra collector option (repeatable)")
    args = parser.parse_args(argv)
    spy = None if args.no_spy else _py_spy(args.py_spy)
    if spy is None and not args.no_spy:
        raise SystemExit("py-spy not found: .venv/bin/pip install py-spy==0.4.3 (or --py-spy PATH)")
    with tempfile.TemporaryDirectory(prefix="empmix-profile-", dir=args.tmp) as tmp:
        raw_path = Path(tmp) / "stacks.txt"
        with CollectorProcess(Path(tmp) / "profile.db", [TOKEN], extra=args.collector_arg) as server:
            make = form_body_factory(args.per_request, TOKEN, int(time.time() * 1000))
            run_load(server.url, "/track/?verbose=1", lambda seq: make(seq + 10**9),
                     content_type="application/x-www-form-urlencoded", connections=2, total_requests=20)
            recorder = None if spy is None else subprocess.Popen(
                [spy, "record", "-p", str(server.pid), "-d", str(int(args.duration)), "-r", str(args.rate),
                 "--threads", "--nonblocking", "--format", "raw", "-o", str(raw_path)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if recorder is not None:
                time.sleep(0.5)
            seq = writer_stats.mark(server.url)
            load = run_load(server.url, "/track/?verbose=1", make, content_type="application/x-www-form-urlencoded",
                            connections=args.connections, duration_s=args.duration)
            snapshot = writer_stats.fetch(server.url, seq)
            errors = "" if recorder is None else recorder.communicate(timeout=60)[1]
            stored = count_events(server.db, TOKEN)
        if recorder is not None and not raw_path.exists():
            raise SystemExit(f"py-spy wrote nothing: {errors[-500:]}")
        result = aggregate(raw_path.read_text()) if recorder is not None else {}
        result["writer"] = writer_stats.summary(server.url, seq, snapshot)
        result["slowest"] = slow_requests(load, snapshot["groups"])
        result["long_holds"] = long_holds(snapshot["groups"], snapshot.get("checkpoint_spans", []))
    result["load"] = {"per_request": args.per_request, "connections": args.connections,
                      "seconds": round(load.elapsed_s, 2), "events_stored": stored,
                      "stored_events_per_s": round(stored / load.elapsed_s, 1), **load.latency()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
