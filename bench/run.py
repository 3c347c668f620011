"""empmix-web benchmarks: ``./build.sh bench [OPTIONS]`` (after ``./build.sh setup``).

Runs the benchmarks of issue 6, prints Markdown tables and writes JSON under ``bench/results/``
(one file per benchmark plus ``summary.json``):

1. ``track``: ``track()`` cost on the main thread, empmix-web (Pyodide and MicroPython) vs
   mixpanel-browser vs a floor, at several queue depths, with a profile of where empmix-web's
   time goes;
2. ``startup``: ``import empmix_web`` to ``init`` done in a fresh Pyodide; navigation to ``init``
   done on PyScript pages under MicroPython and Pyodide; download sizes;
3. ``burst``: 1,000 events at once: requests and time until the collector stored them;
4. ``load``: the collector under load at 1 and 50 events per request;
5. ``scaling``: ingest rate, query times (person, funnel, retention), database size and collector
   memory at 10^4, 10^5 and 10^6 stored events, and 10^7 with ``--sizes ...,10000000`` (the step
   past 10^6 written straight into the database, ``bench/scaling_fill.py``);
6. ``postgres``: the collector on PostgreSQL (a throwaway cluster): 2 processes under the
   50-per-request load next to the server's own ceiling, and the scaling run on PostgreSQL;
7. ``early`` (issue 17): the share of visits counted when the tab closes 0.3 to 3 s after
   navigation, on the demo's pages with the boot script (Pyodide, MicroPython), without it, and
   mixpanel-browser, cold cache, loopback and 20 Mbps / 20 ms; the boot script's size and
   execution time.
8. ``hostile``: the worst requests a holder of the public token can send, and an overload of
   large batches (``bench/hostile.py``).
9. ``validation``: the collector's per-record validation cost, in this process (``bench/validation.py``).

Examples::

    ./build.sh bench                          # everything, ~10 minutes on 2 cores
    ./build.sh bench --only load,scaling,postgres   # the collector only
    ./build.sh bench --only early             # visitors who leave early, a few minutes
    ./build.sh bench --quick                  # tiny sizes (what the smoke test runs)
    ./build.sh bench --docs                   # refresh the tables in docs/performance.md
    ./build.sh bench --render --docs          # the same from the JSON already in bench/results
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import burst, collector_load, early, hostile, report, scaling, startup, track_cost, track_profile, validation
from bench.browser import BenchBrowser, chromium_path
from bench.common import RESULTS, ROOT

__all__ = ["main", "build_parser", "write_docs", "BENCHMARKS"]

BENCHMARKS = ("track", "startup", "burst", "load", "scaling", "postgres", "early", "hostile", "validation")
BROWSER_BENCHMARKS = ("track", "startup", "burst", "early")
DOCS_PAGE = ROOT / "docs" / "performance.md"  # where ``--docs`` without a file puts the tables


def _ints(text: str) -> list[int]:
    return [int(float(part)) for part in text.split(",") if part.strip()]


def build_parser() -> argparse.ArgumentParser:
    """Command-line options (every size has a full and a ``--quick`` default)."""
    p = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes, one browser page (smoke test)")
    p.add_argument("--only", default=None,
                   help=f"comma-separated subset of {','.join(BENCHMARKS)} (default: all; --quick: all but postgres)")
    p.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON results (default bench/results)")
    p.add_argument("--docs", type=Path, nargs="?", const=DOCS_PAGE, default=None, metavar="FILE",
                   help="also write the tables as Markdown between the bench markers of FILE "
                        f"(default: {DOCS_PAGE.relative_to(ROOT)})")
    p.add_argument("--render", action="store_true",
                   help="run nothing: print (and --docs) the tables of the JSON results already in --out")
    p.add_argument("--n", type=int, default=None, help="track() calls per loop (2000; quick 30)")
    p.add_argument("--depths", type=_ints, default=None, help="queue depths (0,100,1000; quick 0,10)")
    p.add_argument("--no-profile", action="store_true", help="skip the profile of empmix-web's track()")
    p.add_argument("--no-mpy", action="store_true",
                   help="skip MicroPython (PyScript type=\"mpy\") in track, startup and burst")
    p.add_argument("--startup-repeats", type=int, default=None, help="fresh pages for start-up (3; quick 1)")
    p.add_argument("--burst-events", type=int, default=None, help="events in the burst (1000; quick 20)")
    p.add_argument("--burst-timeout", type=float, default=None, help="seconds to wait for a burst (180; quick 30)")
    p.add_argument("--early-repeats", type=int, default=None,
                   help="visits per page kind, leave time and network profile in early (3; quick 1)")
    p.add_argument("--exec-repeats", type=int, default=None,
                   help="loads per variant for the boot script's execution time in early (60; quick 10)")
    p.add_argument("--duration", type=float, default=None, help="seconds per load run (20; quick 1)")
    p.add_argument("--connections", type=int, default=16, help="load generator connections (16)")
    p.add_argument("--batch-sizes", type=_ints, default=[1, 50], help="events per request in the load runs (1,50)")
    p.add_argument("--sizes", type=_ints, default=None,
                   help="scaling sizes (1e4,1e5,1e6; quick 300,1000; add 10000000 for the 10^7 step, ~8 min more)")
    p.add_argument("--collector-python", default=None,
                   help="interpreter for the collector in load/scaling (A/B runs, e.g. a venv with uvloop)")
    return p


def _defaults(args: argparse.Namespace) -> argparse.Namespace:
    quick = args.quick
    pick = lambda value, full, small: value if value is not None else (small if quick else full)  # noqa: E731
    args.n = pick(args.n, 2000, 30)
    args.depths = pick(args.depths, [0, 100, 1000], [0, 10])
    args.startup_repeats = pick(args.startup_repeats, 3, 1)
    args.burst_events = pick(args.burst_events, 1000, 20)
    args.burst_timeout = pick(args.burst_timeout, 180.0, 30.0)
    args.duration = pick(args.duration, 20.0, 1.0)
    args.early_repeats = pick(args.early_repeats, 3, 1)
    args.exec_repeats = pick(args.exec_repeats, 60, 10)
    # the 10^7 step (a direct fill of 9e6 events per store, ~4 min each here) is asked for with
    # --sizes: by default the whole bench stays under 15 minutes on this 2-core machine
    args.sizes = pick(args.sizes, [10_000, 100_000, 1_000_000], [300, 1000])
    args.ingest_events = 300 if quick else 30_000
    args.query_repeats = (3, 2) if quick else (20, 5)
    return args


def _browser_benchmarks(selected: Sequence[str], args: argparse.Namespace, work: Path, browser: Any) -> dict[str, Any]:
    tokens = (track_cost.tokens_for(args.depths) + ["prof_sections", "prof_cprofile", "prof_whatif"]
              + startup.TOKENS + burst.TOKENS + (early.tokens_for(args.early_repeats) if "early" in selected else []))
    results: dict[str, Any] = {}
    mpy = not args.no_mpy
    with BenchBrowser(work / "browser", tokens, browser=browser) as bb:
        pages = args.quick and any(name in selected for name in ("track", "startup", "burst"))
        shared = bb.new_page() if pages else None  # quick: one page (start-up first: it must be fresh)
        # quick: one MicroPython page too (PyScript type="mpy"; it times its own start-up as it loads)
        mpy_shared = bb.new_pyscript_page("mpy") if pages and mpy else None
        if "startup" in selected:
            _log("startup" + (": bare Pyodide; PyScript MicroPython and Pyodide pages" if mpy else ""))
            results["startup"] = startup.run(bb, args.startup_repeats, include_pyodide_size=not args.quick, page=shared,
                                             pyscript=mpy, mpy_page=mpy_shared)
        if "track" in selected:
            _log(f"track: N={args.n}, depths {args.depths}")
            results["track"] = track_cost.run(bb, args.n, args.depths, page=shared, mpy=mpy, mpy_page=mpy_shared)
            if not args.no_profile:
                _log("track: profile")
                context = None if shared else bb.new_context()
                page = shared or bb.new_page(context)
                results["track"]["profile"] = track_profile.run(bb, page, args.n, rounds=1 if args.quick else 3)
                if mpy:
                    _log("track: profile (MicroPython)")
                    page = mpy_shared or bb.new_pyscript_page("mpy", context)
                    results["track"]["profile_mpy"] = track_profile.run_mpy(bb, page, args.n,
                                                                            rounds=1 if args.quick else 3)
                if context is not None:
                    context.close()
        if "burst" in selected:
            _log(f"burst: {args.burst_events} events")
            results["burst"] = burst.run(bb, args.burst_events, args.burst_timeout, page=shared, mpy=mpy,
                                         mpy_page=mpy_shared)
        if "early" in selected:
            leave_times = early.QUICK_LEAVE_S if args.quick else early.LEAVE_S
            _log(f"early: {args.early_repeats} visit(s) per cell, {len(early.KINDS)} page kinds, leave after "
                 f"{', '.join(f'{t:g}' for t in leave_times)} s, {len(early.PROFILES)} network profiles")
            # quick: one leave time, a shorter grace, and the pages left open (time to the first stored
            # page view) over loopback only
            results["early"] = early.run(bb, args.early_repeats, exec_repeats=args.exec_repeats,
                                         references=("loopback",) if args.quick else tuple(early.PROFILES),
                                         leave_times=leave_times,
                                         grace_s=early.QUICK_GRACE_S if args.quick else early.GRACE_S)
            _log(f"early: {results['early']['seconds']} s")
    return results


def _postgres_benchmarks(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Load and scaling on a throwaway PostgreSQL cluster (durable settings: fsync on)."""
    from tests.collector.pgcluster import PgCluster, find_bin_dir

    bin_dir = find_bin_dir()
    if bin_dir is None:
        _log("postgres: no PostgreSQL server binaries (./build.sh setup installs them); skipped")
        return {}
    cluster = PgCluster(bin_dir, durable=True)
    try:
        _log(f"postgres: load, 2 collector processes, {args.duration} s at 50 events/request; ceiling")
        load = collector_load.run_postgres(cluster, args.duration, args.connections)
        _log(f"postgres: scaling, sizes {args.sizes}")
        repeats, funnel_repeats = args.query_repeats
        grown = scaling.run(work / "scaling_pg", args.sizes, args.ingest_events, repeats, funnel_repeats,
                            db=cluster.fresh_url())
    finally:
        cluster.remove()
    return {"collector_load_pg": load, "scaling_pg": grown}


BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def _around_tables(path: Path) -> tuple[str, str]:
    """The text of ``path`` before and after its markers. A missing or empty file has none; a file
    with text but no markers is refused (before any benchmark runs) rather than overwritten."""
    old = path.read_text() if path.exists() else ""
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        return head, rest.split(END, 1)[1]
    if not old.strip():
        return "", "\n"
    raise SystemExit(f"{path} has no {BEGIN} / {END} markers: add them where the tables go")


def write_docs(path: Path, tables: str) -> None:
    """Put ``tables`` between the ``bench:begin``/``bench:end`` markers of ``path`` (the prose
    around them is kept); a missing or empty file gets the tables between new markers."""
    head, tail = _around_tables(path)
    text = f"{head}{BEGIN}\n{tables.rstrip()}\n{END}{tail}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _command(argv: list[str]) -> str:
    """The command line that reproduces the numbers (``--out``/``--docs`` do not change them)."""
    shown: list[str] = []
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
        elif arg == "--out" or (arg == "--docs" and i + 1 < len(argv) and not argv[i + 1].startswith("-")):
            skip = True  # and the value after it (--docs may come without one)
        elif arg != "--docs" and not arg.startswith(("--out=", "--docs=")):
            shown.append(arg)
    return " ".join(["./build.sh bench", *shown])


def _render(args: argparse.Namespace) -> dict[str, Any]:
    """Tables from saved results (``summary.json`` keeps the command's environment)."""
    summary = json.loads((args.out / "summary.json").read_text())
    results = {path.stem: json.loads(path.read_text()) for path in sorted(args.out.glob("*.json"))
               if path.stem in ("track", "startup", "burst", "collector_load", "scaling", "collector_load_pg",
                                "scaling_pg", "early", "hostile", "validation")}
    env = summary.get("environment", {})
    machine = (f"{env.get('cpus')} cores ({env.get('cpu_model') or 'unknown CPU'}), "
               f"load average {(env.get('load_average_at_start') or ['?'])[0]} at start")
    text = report.markdown(results, env.get("command", "./build.sh bench"), machine)
    print(text)
    if args.docs is not None:
        write_docs(args.docs, text)
    return {"results": results, "summary": summary}


def _log(message: str) -> None:
    print(f"[bench] {time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def _environment() -> dict[str, Any]:
    cpu = ""
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), "")
    except OSError:
        pass
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "cpu_model": cpu,
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()], "chromium": chromium_path(),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def main(argv: Sequence[str] | None = None, browser: Any = None) -> dict[str, Any]:
    """Run the selected benchmarks; returns ``{"results": ..., "summary": ...}``. ``browser``: a
    Playwright browser to use instead of launching Chromium (the smoke test passes pytest's)."""
    args = _defaults(build_parser().parse_args(argv))
    if args.docs is not None:
        _around_tables(args.docs)  # a page the tables cannot go into fails now, not after the run
    if args.render:
        return _render(args)
    aliases = {"collector_load": "load", "collector": "load"}
    if args.only is None:  # the quick smoke run keeps to what needs no database server
        args.only = ",".join(name for name in BENCHMARKS if not (args.quick and name == "postgres"))
    selected = [aliases.get(name.strip(), name.strip()) for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(selected) - set(BENCHMARKS))
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}")
    if args.collector_python:
        os.environ["BENCH_COLLECTOR_PYTHON"] = args.collector_python
    env = _environment()
    env["collector_python"] = args.collector_python or sys.executable
    started = time.perf_counter()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="empmix-bench-") as tmp:
        work = Path(tmp)
        if any(name in selected for name in BROWSER_BENCHMARKS):
            results.update(_browser_benchmarks(selected, args, work, browser))
        if "load" in selected:
            _log(f"collector load: {args.duration} s at {args.batch_sizes} events/request")
            results["collector_load"] = collector_load.run(work / "load", args.batch_sizes, args.duration,
                                                           args.connections)
        if "scaling" in selected:
            _log(f"scaling: sizes {args.sizes}")
            repeats, funnel_repeats = args.query_repeats
            results["scaling"] = scaling.run(work / "scaling", args.sizes, args.ingest_events, repeats, funnel_repeats)
        if "postgres" in selected:
            results.update(_postgres_benchmarks(args, work))
        if "hostile" in selected:
            _log(f"hostile: writer hold, {args.duration} s flood, {args.duration} s overload")
            results["hostile"] = hostile.run(work / "hostile", args.duration, args.quick)
        if "validation" in selected:
            _log("validation: per-record cost of validate_event")
            results["validation"] = validation.run(args.quick)
    env["seconds"] = round(time.perf_counter() - started, 1)
    env["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    command = _command(list(sys.argv[1:] if argv is None else argv))
    env["command"] = command
    summary = {**report.make_summary(results), "quick": args.quick, "environment": env}
    args.out.mkdir(parents=True, exist_ok=True)
    for name, value in results.items():
        (args.out / f"{name}.json").write_text(json.dumps(value, indent=1) + "\n")
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    machine = (f"{env['cpus']} cores ({env['cpu_model'] or 'unknown CPU'}), "
               f"load average {env['load_average_at_start'][0]} at start")
    text = report.markdown(results, command, machine)
    print(text)
    if args.docs is not None:
        write_docs(args.docs, text)
    _log(f"done in {env['seconds']} s; results in {args.out}")
    return {"results": results, "summary": summary}


if __name__ == "__main__":
    main()
