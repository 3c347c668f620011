"""The scaling benchmark's ``summary.json`` keys and its tables on the performance page
(``bench.scaling`` results, SQLite and PostgreSQL from the same run).

Per-size keys name the size: ``funnel_ms_at_1e7`` (SQLite), ``funnel_ms_at_1e7_pg``
(PostgreSQL), and so on for ``retention_ms``, ``person_events_ms``, ``db_bytes`` and
``collector_rss_mb`` at 10^6 and 10^7 (``None`` when that size was not run). Growth from 10^6
to 10^7 is ``(time at 10^7 / time at 10^6) / (events at 10^7 / events at 10^6)``: 1.0 is
linear, less is better than linear.

Example::

    summary.update(scaling_report.summary(results.get("scaling") or {}, results.get("scaling_pg") or {}))
    lines = scaling_report.markdown(results["scaling"])
"""

from __future__ import annotations

from typing import Any

from bench.common import fmt as _f

__all__ = ["summary", "markdown", "goals_markdown", "SIZES", "FUNNEL_GOAL_MS_PG", "GROWTH_GOAL"]

SIZES = {"1e6": 1_000_000, "1e7": 10_000_000}
"""The sizes with their own summary keys."""
FUNNEL_GOAL_MS_PG = 1000.0
"""Issue 21: a 3-step funnel over 10^7 events on PostgreSQL."""
GROWTH_GOAL = 1.0
"""Issue 21: from 10^6 to 10^7 events no worse than linear."""
_QUERIES = ("funnel", "retention")


def _mb(value: Any) -> str:
    return "–" if not value else f"{value / 1e6:,.1f} MB"


def _at(result: dict[str, Any], size: int) -> dict[str, Any] | None:
    return next((s for s in result.get("steps") or [] if s["stored_events"] == size), None)


def _ms(step: dict[str, Any] | None, query: str) -> float | None:
    figure = (step or {}).get(query)
    return None if figure is None else figure["median_ms"]


def _growth(result: dict[str, Any], query: str) -> float | None:
    small, large = _at(result, SIZES["1e6"]), _at(result, SIZES["1e7"])
    low, high = _ms(small, query), _ms(large, query)
    if small is None or large is None or not low or high is None:
        return None
    return round((high / low) / (large["stored_events"] / small["stored_events"]), 3)


def summary(scaling: dict[str, Any], scaling_pg: dict[str, Any]) -> dict[str, Any]:
    """The per-size keys, the growth from 10^6 to 10^7 and ``scaling_goals`` (always present,
    ``None`` where not measured)."""
    out: dict[str, Any] = {}
    for suffix, result in (("", scaling), ("_pg", scaling_pg)):
        for label, size in SIZES.items():
            step = _at(result, size)
            for query in ("funnel", "retention", "person_events"):
                out[f"{query}_ms_at_{label}{suffix}"] = _ms(step, query)
            out[f"db_bytes_at_{label}{suffix}"] = step["db_bytes"] if step else None
            rss = step.get("collector_rss_bytes") if step else None
            out[f"collector_rss_mb_at_{label}{suffix}"] = round(rss / 2**20, 1) if rss else None
        for query in _QUERIES:
            out[f"{query}_growth_1e6_to_1e7{suffix}"] = _growth(result, query)
    value = out["funnel_ms_at_1e7_pg"]
    goals: dict[str, Any] = {
        "funnel_ms_at_1e7_pg": {
            "goal_max": FUNNEL_GOAL_MS_PG,
            "value": value,
            "met": None if value is None else value <= FUNNEL_GOAL_MS_PG,
        }
    }
    for suffix in ("", "_pg"):
        for query in _QUERIES:
            key = f"{query}_growth_1e6_to_1e7{suffix}"
            goals[key] = {
                "goal_max": GROWTH_GOAL,
                "value": out[key],
                "met": None if out[key] is None else out[key] <= GROWTH_GOAL,
            }
    out["scaling_goals"] = goals
    return out


def _bulk(s: dict[str, Any]) -> str:
    bulk = s["bulk_load"]
    if bulk.get("path") == "direct":
        return f"written directly: {_f(bulk['events'])} in {_f(bulk['seconds'], 1)} s"
    return f"{_f(bulk['events_per_s'])} ev/s"


def markdown(scaling: dict[str, Any]) -> list[str]:
    """One store's table."""
    store = scaling.get("store", "sqlite")
    lines = [
        f"### 5. Scaling with stored data ({'PostgreSQL' if store == 'postgres' else 'SQLite'})",
        "",
        "| stored events | bulk load (1,000 / request) | ingest at 50 / request | `/api/persons/{id}/events` "
        "(20 events) | `/api/funnel` (3 steps) | `/api/retention` (by day) | database | collector RSS |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in scaling["steps"]:
        fresh = s.get("funnel_before_vacuum")
        funnel = f"{_f(s['funnel']['median_ms'], 1)} ms" + (
            f" ({_f(fresh['median_ms'], 1)} ms before `VACUUM`)" if fresh else ""
        )
        retention = s.get("retention")
        lines.append(
            f"| {s['stored_events']:,} | {_bulk(s)} | {_f(s['ingest_50_per_request']['events_per_s'])} ev/s "
            f"| {_f(s['person_events']['median_ms'], 1)} ms | {funnel} "
            f"| {_f(retention['median_ms'] if retention else None, 1)} ms | {_mb(s['db_bytes'])} "
            f"| {_mb(s.get('collector_rss_bytes'))} |"
        )
    notes = []
    if any(s["bulk_load"].get("path") == "direct" for s in scaling["steps"]):
        notes.append(
            "Past 10⁶ events the collector was stopped and the events written straight into the database "
            "(`bench/scaling_fill.py`: the rows `/track` stores, with the identity tables; then the "
            "collector restarted): over HTTP the step would take minutes."
        )
    if store == "postgres":
        notes.append(
            "PostgreSQL queries are timed after `VACUUM (ANALYZE)`, as autovacuum leaves a running "
            "database; right after a bulk load every matching event still costs a heap page visit."
        )
    else:
        notes.append("Database: the file and its write-ahead log.")
    return lines + [""] + [" ".join(notes)]


def goals_markdown(scaling: dict[str, Any], scaling_pg: dict[str, Any]) -> list[str]:
    """Issue 21's scaling goals, both stores from the same run (empty when neither reached 10^7)."""
    figures = summary(scaling, scaling_pg)
    if figures["funnel_ms_at_1e7"] is None and figures["funnel_ms_at_1e7_pg"] is None:
        return []
    lines = ["| at 10⁷ events | SQLite | PostgreSQL | goal |", "|---|---:|---:|---|"]
    pg_funnel = figures["scaling_goals"]["funnel_ms_at_1e7_pg"]
    lines.append(
        f"| `funnel_ms_at_1e7` (3 steps) | {_f(figures['funnel_ms_at_1e7'], 1)} "
        f"| **{_f(figures['funnel_ms_at_1e7_pg'], 1)}** | PostgreSQL ≤ {FUNNEL_GOAL_MS_PG:,.0f} ms "
        f"({'met' if pg_funnel['met'] else 'not met'}) |"
    )
    lines.append(
        f"| `retention_ms_at_1e7` | {_f(figures['retention_ms_at_1e7'], 1)} "
        f"| {_f(figures['retention_ms_at_1e7_pg'], 1)} | |"
    )
    for query in _QUERIES:
        key = f"{query}_growth_1e6_to_1e7"
        met = [figures["scaling_goals"][key + suffix]["met"] for suffix in ("", "_pg")]
        verdict = "–" if None in met else ("met" if all(met) else "not met")
        lines.append(
            f"| `{key}` (time ×, per × events) | {_f(figures[key], 2)} | {_f(figures[key + '_pg'], 2)} "
            f"| ≤ {GROWTH_GOAL:g}: no worse than linear ({verdict}) |"
        )
    return lines
