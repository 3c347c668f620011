"""Where the collector's time goes under load: py-spy samples while benchmark 4's load runs.

Not part of ``./build.sh bench`` (py-spy is not a pinned dependency). Run::

    .venv/bin/pip install py-spy==0.4.3      # or put py-spy on PATH
    .venv/bin/python bench/profile_collector.py --per-request 50 --duration 15

Prints the share of on-CPU samples per thread, per source file and per function (own time
and inclusive), and writes them to ``bench/results/collector_profile.json``.
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

from bench.collector_load import TOKEN, form_body_factory
from bench.common import RESULTS, ROOT, CollectorProcess, count_events
from bench.loadgen import run_load

__all__ = ["aggregate", "main"]

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
    args = parser.parse_args(argv)
    spy = _py_spy(args.py_spy)
    if spy is None:
        raise SystemExit("py-spy not found: .venv/bin/pip install py-spy==0.4.3 (or --py-spy PATH)")
    with tempfile.TemporaryDirectory(prefix="empmix-profile-") as tmp:
        raw_path = Path(tmp) / "stacks.txt"
        with CollectorProcess(Path(tmp) / "profile.db", [TOKEN]) as server:
            make = form_body_factory(args.per_request, TOKEN, int(time.time() * 1000))
            recorder = subprocess.Popen(
                [spy, "record", "-p", str(server.pid), "-d", str(int(args.duration)), "-r", str(args.rate),
                 "--threads", "--nonblocking", "--format", "raw", "-o", str(raw_path)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            time.sleep(0.5)
            load = run_load(server.url, "/track/?verbose=1", make, content_type="application/x-www-form-urlencoded",
                            connections=args.connections, duration_s=args.duration)
            _, errors = recorder.communicate(timeout=60)
            stored = count_events(server.db, TOKEN)
        if not raw_path.exists():
            raise SystemExit(f"py-spy wrote nothing: {errors[-500:]}")
        result = aggregate(raw_path.read_text())
    result["load"] = {"per_request": args.per_request, "connections": args.connections,
                      "seconds": round(load.elapsed_s, 2), "events_stored": stored,
                      "stored_events_per_s": round(stored / load.elapsed_s, 1), **load.latency()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
