"""The start-up report (``GET /api/startup``) and the early leavers in funnels, on both stores,
from events posted to ``/track`` as the boot script and the SDK send them; and the report's
arithmetic (``domain.startup``) on plain values."""

from __future__ import annotations

import ast
import math
import statistics
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from empmix_collector.domain import startup
from tests.collector.conftest import TOKEN, TOKEN2, Collector, event, now_ms
from tests.conftest import ROOT

T0 = now_ms() - 3_600_000  # an hour ago: /track takes the last 5 days


def track(client: Collector, *records: dict[str, Any]) -> None:
    r = client.track(list(records))
    assert r.status_code == 200 and r.json() == {"status": 1, "error": None}, r.text


def visit(device: str, t: int, **props: Any) -> dict[str, Any]:
    """The boot script's page view."""
    return event("$mp_web_page_view", "$device:" + device, time=t, **{"$device_id": device}, **props)


def left_early(device: str, t: int, **props: Any) -> dict[str, Any]:
    """The boot script's page leave, before Python was ready."""
    return event("$mp_page_leave", "$device:" + device, time=t,
                 **{"$left_before_ready": True, "$time_on_page_ms": 300}, **props)  # fmt: skip


def ready(device: str, t: int, ms: Any, interpreter: Any = "pyodide", **props: Any) -> dict[str, Any]:
    """The SDK's ``$python_ready``."""
    return event("$python_ready", "$device:" + device, time=t, **{"$ready_ms": ms, "$interpreter": interpreter},
                 **props)  # fmt: skip


def report(client: Collector, **params: Any) -> dict[str, Any]:
    r = client.get("/api/startup", **params)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    return dict(r.json())


def test_startup_counts_visits_early_leavers_and_ready_times(client: Collector) -> None:
    track(
        client,
        visit("a", T0), left_early("a", T0 + 300),  # left before Python was ready
        visit("b", T0), ready("b", T0 + 2000, 2000.5), ready("b2", T0, 1000), ready("b3", T0, 3000),
        visit("c", T0), ready("c", T0 + 400, 400, "micropython"), ready("c2", T0, 600, "micropython"),
        visit("d", T0),
        # a page left after ready: the SDK's own page leave, no flag
        event("$mp_page_leave", "$device:b", time=T0 + 9000),
    )  # fmt: skip
    body = report(client)
    assert body["visits"] == 4
    assert body["left_before_ready"] == 1 and body["left_before_ready_share"] == 0.25
    assert body["ready"] == [
        {"interpreter": "pyodide", "count": 3, "median_ms": 2000.5, "p90_ms": 2800.1},
        {"interpreter": "micropython", "count": 2, "median_ms": 500.0, "p90_ms": 580.0},
    ]
    hist = body["histogram"]
    assert hist["interpreters"] == ["pyodide", "micropython"] and hist["width_ms"] == 500
    by_bar = {bar["start_ms"]: bar["counts"] for bar in hist["buckets"] if any(bar["counts"].values())}
    assert by_bar == {0: {"pyodide": 0, "micropython": 1}, 500: {"pyodide": 0, "micropython": 1},
                      1000: {"pyodide": 1, "micropython": 0}, 2000: {"pyodide": 1, "micropython": 0},
                      3000: {"pyodide": 1, "micropython": 0}}  # fmt: skip
    assert hist["buckets"][-1] == {"start_ms": 3000, "end_ms": 3500, "counts": {"pyodide": 1, "micropython": 0}}


def test_startup_counts_a_record_sent_twice_once(client: Collector) -> None:
    """The boot script sends the page view at once and the SDK sends it again from the queue:
    one ``$insert_id``, one visit."""
    view = visit("a", T0)
    leave = left_early("a", T0 + 1)
    track(client, view, leave)
    track(client, view, leave)
    body = report(client)
    assert (body["visits"], body["left_before_ready"]) == (1, 1)


def test_startup_ignores_implausible_values(client: Collector) -> None:
    track(
        client,
        visit("a", T0),
        ready("b", T0, "fast"), ready("c", T0, True), ready("d", T0, -5), ready("e", T0, 7_200_000),
        ready("f", T0, None), event("$python_ready", "$device:g", time=T0),
        ready("h", T0, 800, "cpython"), ready("i", T0, 900, 42),  # unknown interpreters: "other"
        event("$mp_page_leave", "$device:j", time=T0, **{"$left_before_ready": "true"}),  # not the flag
        event("$mp_page_leave", "$device:k", time=T0, **{"$left_before_ready": 1}),
    )  # fmt: skip
    body = report(client)
    assert body["visits"] == 1 and body["left_before_ready"] == 0
    assert body["ready"] == [{"interpreter": "other", "count": 2, "median_ms": 850.0, "p90_ms": 890.0}]


def test_startup_reads_texts_with_escapes(client: Collector) -> None:
    """A property holding NUL is stored as ``\\u0000``, which PostgreSQL's JSON functions refuse:
    such events are still counted."""
    track(
        client,
        visit("a", T0, note="nul \x00 here"),
        left_early("a", T0 + 1, note="nul \x00 here"),
        ready("b", T0, 1234, note="\x00"),
    )
    body = report(client)
    assert (body["visits"], body["left_before_ready"]) == (1, 1)
    assert body["ready"] == [{"interpreter": "pyodide", "count": 1, "median_ms": 1234.0, "p90_ms": 1234.0}]


def test_startup_time_range_and_tokens(client: Collector) -> None:
    track(client, visit("a", T0), ready("a", T0 + 10, 700), visit("b", T0 + 1000), left_early("b", T0 + 1100))
    track(client, visit("z", T0, token=TOKEN2), visit("y", T0, token=TOKEN2))
    assert report(client, **{"from": T0 + 500})["visits"] == 1
    early = report(client, to=T0 + 500)
    assert (early["visits"], early["left_before_ready"], len(early["ready"])) == (1, 0, 1)
    assert report(client, token=TOKEN)["visits"] == 2
    other = report(client, token=TOKEN2)
    assert other["visits"] == 2 and other["ready"] == [] and other["left_before_ready"] == 0
    assert report(client, **{"from": T0 + 10**6})["left_before_ready_share"] is None  # no visits
    assert other["histogram"] == {"width_ms": None, "interpreters": [], "buckets": []}
    assert client.get("/api/startup", token="nope").status_code == 404
    assert client.get("/api/startup", to="soon").status_code == 400


def test_startup_needs_the_secret(client: Collector) -> None:
    assert client.http.get("/api/startup").status_code == 401


def dashboard_steps() -> list[str]:
    """``STEPS`` of site/dashboard.py (the dashboard's first funnel), read without running it."""
    tree = ast.parse((ROOT / "site" / "dashboard.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "STEPS" for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise AssertionError("site/dashboard.py has no STEPS")


@pytest.mark.parametrize("by", ["person", "distinct_id"])
def test_the_dashboard_funnel_counts_visitors_who_left_before_ready(client: Collector, by: str) -> None:
    """A visitor of whom the collector has only the boot script's page view and page leave is
    in the first step of the dashboard's funnel."""
    steps = dashboard_steps()
    assert steps[0] == "$mp_web_page_view"
    track(client, visit("gone", T0), left_early("gone", T0 + 300))
    track(client, visit("stay", T0), ready("stay", T0 + 900, 900), event(steps[1], "$device:stay", time=T0 + 5000))
    r = client.get("/api/funnel", steps=",".join(steps), by=by)
    assert r.status_code == 200, r.text
    assert [s["count"] for s in r.json()["steps"]] == [2, 1, 0]


# -- the arithmetic ------------------------------------------------------------------------------
@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=2, max_size=60))
def test_quantile_interpolates_like_statistics_inclusive(values: list[float]) -> None:
    ordered = sorted(values)
    deciles = statistics.quantiles(ordered, n=10, method="inclusive")
    assert math.isclose(startup.quantile(ordered, 0.9), deciles[8], rel_tol=1e-9, abs_tol=1e-6)
    assert math.isclose(startup.quantile(ordered, 0.5), statistics.median(ordered), rel_tol=1e-9, abs_tol=1e-6)
    assert startup.quantile(ordered, 0) == ordered[0] and startup.quantile(ordered, 1) == ordered[-1]


def test_quantile_of_one_and_of_none() -> None:
    assert startup.quantile([7.0], 0.9) == 7.0
    with pytest.raises(ValueError):
        startup.quantile([], 0.5)


@pytest.mark.parametrize("span,width", [(0, 1), (11, 1), (13, 2), (59, 5), (950, 100), (1201, 200), (30_000, 5000)])
def test_bucket_width_is_round(span: float, width: int) -> None:
    assert startup.bucket_width(span) == width


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["pyodide", "micropython", "other"]),
            st.floats(0, 3_600_000, allow_nan=False),
            st.integers(1, 5),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_histogram_puts_every_sample_in_one_bar(samples: list[tuple[str, float, int]]) -> None:
    hist = startup.histogram(samples)
    bars = hist["buckets"]
    assert 1 <= len(bars) <= startup.BUCKETS + 1
    assert sum(sum(bar["counts"].values()) for bar in bars) == sum(count for _, _, count in samples)
    for name in hist["interpreters"]:
        assert sum(bar["counts"][name] for bar in bars) == sum(c for n, _, c in samples if n == name)
    for bar, after in zip(bars, bars[1:], strict=False):
        assert bar["end_ms"] == after["start_ms"] == bar["start_ms"] + hist["width_ms"]
    for name, ms, _ in samples:  # each sample lies in a bar that holds its interpreter
        bar = next(b for b in bars if b["start_ms"] <= ms and (b["end_ms"] is None or ms < b["end_ms"]))
        assert bar["counts"][name] > 0


def test_histogram_keeps_a_slow_outlier_apart() -> None:
    samples = [("pyodide", float(ms), 1) for ms in range(100, 2100, 100)] + [("pyodide", 600_000.0, 1)]
    hist = startup.histogram(samples)
    assert hist["width_ms"] == 200 and len(hist["buckets"]) == 12
    assert hist["buckets"][-1] == {"start_ms": 2200, "end_ms": None, "counts": {"pyodide": 1}}


@pytest.mark.parametrize("value,expected", [
    (12, 12.0), (0.5, 0.5), (0, 0.0), (True, None), ("12", None), (None, None), (-1, None),
    (float("inf"), None), (startup.MAX_READY_MS + 1, None), ([1], None),
])  # fmt: skip
def test_ready_ms_takes_plausible_numbers_only(value: Any, expected: float | None) -> None:
    assert startup.ready_ms(value) == expected


def test_report_share_and_unknown_interpreters() -> None:
    body = startup.startup_report(8, 2, [("pyodide", 100, 3), ("wasm?", 50, 1), ("pyodide", "x", 9)])
    assert body["left_before_ready_share"] == 0.25
    assert [(r["interpreter"], r["count"]) for r in body["ready"]] == [("pyodide", 3), ("other", 1)]
    assert startup.startup_report(0, 0, [])["left_before_ready_share"] is None
