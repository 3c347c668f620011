"""Dashboard markup, built in Python from the collector's query API answers.

Pure functions from JSON-ready data to HTML/SVG strings (no browser needed, so they are unit
tested on CPython too). Every value that reaches the markup goes through :func:`esc`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any

DEVICE = "$device:"
COOKIELESS = "$cookieless:"  # collector-made ids of cookieless visitors: anonymous too
ANONYMOUS = (DEVICE, COOKIELESS)
STEP_LABELS = {"$mp_web_page_view": "page view"}

# graph geometry (px)
NODE_W, NODE_H, ROW, PAD, GAP = 176, 24, 34, 8, 116
LEFT_X = PAD
RIGHT_X = PAD + NODE_W + GAP
WIDTH = RIGHT_X + NODE_W + 48  # room for same-column edges that bulge right


def esc(value: Any) -> str:
    return escape(str(value), quote=True)


def short_id(distinct_id: str, limit: int = 22) -> str:
    """``$device:1b2c3d4e…`` / ``$cookieless:tcimiuoq…`` / ``usr_alice``: what fits in a node."""
    for prefix in ANONYMOUS:
        if distinct_id.startswith(prefix) and len(distinct_id) > len(prefix) + 9:
            return prefix + distinct_id[len(prefix):len(prefix) + 8] + "…"
    return distinct_id if len(distinct_id) <= limit else distinct_id[:limit - 1] + "…"


def clock(ms: Any) -> str:
    try:
        return datetime.fromtimestamp(int(ms) / 1000, UTC).strftime("%H:%M:%S")
    except (TypeError, ValueError, OverflowError, OSError):
        return "?"


def person_label(person: dict[str, Any]) -> str:
    """The first non-anonymous id, else a short anonymous (device or cookieless) id."""
    ids = person.get("distinct_ids") or []
    for distinct_id in ids:
        if not distinct_id.startswith(ANONYMOUS):
            return distinct_id
    return "anonymous " + short_id(ids[0]) if ids else f"person #{person.get('person_id')}"


# -- identity graph ------------------------------------------------------------------------------
def person_edges(ids: list[str], merges: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge attempts touching ``ids``, one edge per (from, to) pair, in log order.

    ``kinds`` maps each kind of attempt on the pair to its strongest result (merged > refused >
    noop); the edge's ``result`` is the strongest over all kinds, so a pair linked one way after
    being refused another way is drawn merged, with the refused kind marked in its label.
    """
    rank = {"merged": 3, "refused": 2, "noop": 1}
    idset = set(ids)
    edges: dict[tuple[str, str], dict[str, Any]] = {}
    for merge in merges:
        src, dst = str(merge.get("from_id", "")), str(merge.get("to_id", ""))
        if src == dst or not (src in idset or dst in idset):
            continue
        edge = edges.setdefault((src, dst), {"from": src, "to": dst, "kinds": {}, "reasons": []})
        kind, result = str(merge.get("kind")), str(merge.get("result"))
        if rank.get(result, 0) > rank.get(edge["kinds"].get(kind, ""), 0):
            edge["kinds"][kind] = result
        if merge.get("reason") and merge["reason"] not in edge["reasons"]:
            edge["reasons"].append(merge["reason"])
    for edge in edges.values():
        edge["result"] = max(edge["kinds"].values(), key=lambda r: rank.get(r, 0))
    return list(edges.values())


def graph_svg(person: dict[str, Any], merges: list[dict[str, Any]]) -> str:
    """The person's distinct ids as nodes (anonymous ``$device:`` ids left, the rest right) and
    the merges between them as edges; refused merges point at a dashed "ghost" node for the id
    outside the person."""
    ids = [str(i) for i in person.get("distinct_ids") or []]
    edges = person_edges(ids, merges)
    ghosts = []
    for edge in edges:
        for end in (edge["from"], edge["to"]):
            if end not in ids and end not in ghosts:
                ghosts.append(end)
    columns: dict[str, list[tuple[str, str]]] = {"left": [], "right": []}
    for distinct_id in ids:
        columns["left" if distinct_id.startswith(ANONYMOUS) else "right"].append(
            (distinct_id, "anon" if distinct_id.startswith(ANONYMOUS) else "user")
        )
    for ghost in ghosts:
        columns["left" if ghost.startswith(ANONYMOUS) else "right"].append((ghost, "ghost"))
    pos: dict[str, tuple[float, float]] = {}
    nodes = []
    for column, x in (("left", LEFT_X), ("right", RIGHT_X)):
        for row, (distinct_id, kind) in enumerate(columns[column]):
            y = PAD + row * ROW
            pos[distinct_id] = (x, y)
            nodes.append(
                f'<g class="node {kind}" data-id="{esc(distinct_id)}"><title>{esc(distinct_id)}</title>'
                f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="5"/>'
                f'<text x="{x + 8}" y="{y + 16}">{esc(short_id(distinct_id))}</text></g>'
            )
    degree: dict[str, int] = {}
    for edge in edges:
        for end in (edge["from"], edge["to"]):
            degree[end] = degree.get(end, 0) + 1
    lines = []
    for edge in edges:
        (x1, y1), (x2, y2) = pos[edge["from"]], pos[edge["to"]]
        y1, y2 = y1 + NODE_H / 2, y2 + NODE_H / 2
        if x1 != x2:  # across the columns
            ends = (edge["from"], edge["to"])
            if x1 > x2:
                (x1, y1), (x2, y2), ends = (x2, y2), (x1, y1), ends[::-1]
            x1 += NODE_W
            path = f"M{x1} {y1} L{x2} {y2}"
            # label the edge where it is alone: away from a node that several edges share
            t = 0.5 if degree[ends[0]] == degree[ends[1]] else (0.3 if degree[ends[0]] < degree[ends[1]] else 0.7)
            lx, ly = x1 + t * (x2 - x1), y1 + t * (y2 - y1) - 5
        else:  # within a column: bulge to the right of the nodes
            xr = x1 + NODE_W
            bulge = xr + 26 + 10 * abs(y2 - y1) / ROW
            path = f"M{xr} {y1} C{bulge} {y1} {bulge} {y2} {xr} {y2}"
            lx, ly = bulge - 6, (y1 + y2) / 2 + 4
        label = " / ".join(("✕ " if r == "refused" else "") + k for k, r in edge["kinds"].items())
        title = (
            f"{edge['from']} → {edge['to']}: {label} ({edge['result']}"
            + (f": {', '.join(edge['reasons'])}" if edge["reasons"] else "")
            + ")"
        )
        lines.append(
            f'<g class="edge {edge["result"]}" data-from="{esc(edge["from"])}" data-to="{esc(edge["to"])}" '
            f'data-kinds="{esc(" ".join(edge["kinds"]))}" '
            f'data-refused="{esc(" ".join(k for k, r in edge["kinds"].items() if r == "refused"))}"><title>{esc(title)}</title>'
            f'<path d="{path}"/><text x="{lx:.0f}" y="{ly:.0f}" text-anchor="middle">{esc(label)}</text></g>'
        )
    rows = max(len(columns["left"]), len(columns["right"]), 1)
    height = PAD * 2 + (rows - 1) * ROW + NODE_H
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="identity graph of {esc(person_label(person))}">'
        + "".join(lines)
        + "".join(nodes)
        + "</svg>"
    )


# -- sections ------------------------------------------------------------------------------------
def sessions_html(sessions: list[dict[str, Any]] | None, limit: int = 6) -> str:
    """The person's sessions, newest first: start-end, how many events, the id's tail."""
    if not sessions:
        return ""
    items = []
    for found in list(reversed(sessions))[:limit]:
        count = int(found.get("events") or 0)
        sid = str(found.get("session_id"))
        items.append(
            f'<li class="session" data-session-id="{esc(sid)}" data-events="{count}" title="$session_id {esc(sid)}">'
            f"{clock(found.get('start'))}–{clock(found.get('end'))} · {count} event{'s' if count != 1 else ''}"
            f' <span class="muted">…{esc(sid[-6:])}</span></li>'
        )
    more = len(sessions) - limit
    plural = "s" if len(sessions) != 1 else ""
    return (
        f'<details class="sessions-box" open><summary>{len(sessions)} session{plural}</summary>'
        f'<ol class="sessions" data-count="{len(sessions)}">'
        + "".join(items)
        + (f'<li class="muted">… {more} older</li>' if more > 0 else "")
        + "</ol></details>"
    )


def person_card(
    person: dict[str, Any], merges: list[dict[str, Any]], sessions: list[dict[str, Any]] | None = None
) -> str:
    ids = person.get("distinct_ids") or []
    identified = bool(person.get("identified"))
    cookieless = bool(person.get("cookieless"))
    props = person.get("properties") or {}
    shown = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in sorted(props.items()))
    return (
        f'<article class="person" data-person-id="{esc(person.get("person_id"))}" '
        f'data-identified="{"true" if identified else "false"}" data-cookieless="{"true" if cookieless else "false"}" '
        f'data-label="{esc(person_label(person))}">'
        f"<header><h3>{esc(person_label(person))}</h3>"
        f'<span class="badge {"identified" if identified else "anonymous"}">{"identified" if identified else "anonymous"}</span>'
        + ('<span class="badge cookieless" title="counted only thanks to cookieless mode">cookieless</span>' if cookieless else "")
        + f'<span class="muted">person #{esc(person.get("person_id"))} · {len(ids)} id{"s" if len(ids) != 1 else ""}</span></header>'
        f'<div class="graph">{graph_svg(person, merges)}</div>'
        + (f'<dl class="props">{shown}</dl>' if shown else "")
        + sessions_html(sessions)
        + "</article>"
    )


def ordered_persons(persons: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Identified persons first, then the newest (the order of the cards)."""
    return sorted(persons, key=lambda p: (not p.get("identified"), -int(p.get("person_id") or 0)))


def persons_html(
    persons: list[dict[str, Any]],
    merges: list[dict[str, Any]],
    limit: int = 40,
    sessions: dict[Any, list[dict[str, Any]]] | None = None,
) -> str:
    """Identified persons first, then the newest; ``sessions``: person_id -> its sessions."""
    ordered = ordered_persons(persons)
    if not ordered:
        return '<p class="muted empty">No persons yet: open the app and click around.</p>'
    found = sessions or {}
    return "".join(person_card(p, merges, found.get(p.get("person_id"))) for p in ordered[:limit])


def groups_rows(groups: list[dict[str, Any]], persons: list[dict[str, Any]]) -> str:
    """One row per group: its id, its ``name`` property, its members (persons), its events."""
    labels = {p.get("person_id"): person_label(p) for p in persons}
    out = []
    for group in groups:
        members = group.get("members") or []
        names = [labels.get(m.get("person_id")) or short_id(str(m.get("distinct_id") or "?")) for m in members]
        props = group.get("properties") or {}
        out.append(
            f'<tr data-group-id="{esc(group.get("group_id"))}" data-members="{len(members)}" '
            f'data-member-labels="{esc(" ".join(names))}">'
            f"<td>{esc(group.get('group_id'))}</td><td>{esc(props.get('name', ''))}</td>"
            f"<td>{esc(', '.join(names)) or '—'}</td><td>{esc(group.get('events', 0))}</td></tr>"
        )
    empty = '<tr><td colspan="4" class="muted">No companies yet: sign up with a company.</td></tr>'
    return "".join(out) or empty


def funnel_html(steps: list[dict[str, Any]]) -> str:
    first = max(int(steps[0]["count"]), 1) if steps else 1
    out = []
    for step in steps:
        count = int(step.get("count") or 0)
        share = 100 * count / first
        out.append(
            f'<li class="step" data-event="{esc(step.get("event"))}" data-count="{count}">'
            f'<span class="name">{esc(STEP_LABELS.get(step.get("event"), step.get("event")))}</span>'
            f'<span class="bar"><span style="width:{share:.0f}%"></span></span>'
            f'<span class="count">{count}</span><span class="share">{share:.0f}%</span></li>'
        )
    return "".join(out)


def events_rows(events: list[dict[str, Any]], persons: list[dict[str, Any]]) -> str:
    labels = {p.get("person_id"): person_label(p) for p in persons}
    out = []
    for event in events:
        person_id = event.get("person_id")
        who = f"#{person_id} {labels.get(person_id, '')}".strip() if person_id is not None else "—"
        out.append(
            f'<tr data-event="{esc(event.get("event"))}" data-distinct-id="{esc(event.get("distinct_id"))}" '
            f'data-person-id="{esc("" if person_id is None else person_id)}">'
            f"<td>{clock(event.get('time'))}</td><td>{esc(event.get('event'))}</td>"
            f'<td title="{esc(event.get("distinct_id"))}">{esc(short_id(str(event.get("distinct_id") or ""), 32))}</td>'
            f"<td>{esc(who)}</td></tr>"
        )
    return "".join(out) or '<tr><td colspan="4" class="muted">No events yet.</td></tr>'


def refused_rows(merges: list[dict[str, Any]]) -> str:
    out = [
        f'<tr class="refused" data-kind="{esc(m.get("kind"))}" data-from="{esc(m.get("from_id"))}" data-to="{esc(m.get("to_id"))}">'
        f"<td>{clock(m.get('time'))}</td><td>{esc(m.get('kind'))}</td><td>{esc(short_id(str(m.get('from_id')), 32))}</td>"
        f'<td>{esc(short_id(str(m.get("to_id")), 32))}</td><td title="{esc(m.get("detail") or "")}">{esc(m.get("reason"))}</td></tr>'
        for m in reversed(merges)
        if m.get("result") == "refused"
    ]
    return "".join(out) or '<tr><td colspan="5" class="muted">None: every link so far was allowed.</td></tr>'


# -- start-up ------------------------------------------------------------------------------------
HIST_W, HIST_H, HIST_PAD, HIST_AXIS, HIST_TOP = 560, 150, 6, 18, 14  # px
INTERPRETER_LABELS = {"pyodide": "Pyodide", "micropython": "MicroPython", "other": "other"}


def ms_label(ms: Any) -> str:
    """``850 ms``, ``1.8 s``, ``12 s``; ``—`` for no value."""
    if ms is None:
        return "—"
    value = float(ms)
    if value < 1000:
        return f"{value:.0f} ms"
    return f"{value / 1000:.1f} s" if value < 10_000 else f"{value / 1000:.0f} s"


def histogram_svg(histogram: dict[str, Any]) -> str:
    """The ready times as bars of equal width, stacked per interpreter; the last bar may be
    open (``end_ms`` null: the slowest loads)."""
    bars = histogram.get("buckets") or []
    names = [str(n) for n in histogram.get("interpreters") or []]
    if not bars:
        return '<p class="muted empty">No <code>$python_ready</code> yet.</p>'
    totals = [sum(int(v) for v in (bar.get("counts") or {}).values()) for bar in bars]
    tallest = max(max(totals), 1)
    slot = (HIST_W - 2 * HIST_PAD) / len(bars)
    plot_h = HIST_H - HIST_AXIS - HIST_TOP
    out = []
    for n, (bar, total) in enumerate(zip(bars, totals, strict=True)):
        x = HIST_PAD + n * slot
        end = bar.get("end_ms")
        span = f"{ms_label(bar.get('start_ms'))}–{ms_label(end)}" if end is not None else f"≥ {ms_label(bar.get('start_ms'))}"
        counts = bar.get("counts") or {}
        title = span + ": " + ", ".join(f"{INTERPRETER_LABELS.get(k, k)} {int(counts.get(k, 0))}" for k in names)
        y = HIST_TOP + plot_h
        rects = []
        for name in names:
            count = int(counts.get(name, 0))
            if count:
                h = plot_h * count / tallest
                y -= h
                rects.append(
                    f'<rect class="bar {esc(name)}" data-interpreter="{esc(name)}" data-count="{count}" '
                    f'x="{x + 1:.1f}" y="{y:.1f}" width="{slot - 2:.1f}" height="{h:.1f}"/>'
                )
        out.append(
            f'<g class="bucket{" open" if end is None else ""}" data-start-ms="{esc(bar.get("start_ms"))}" '
            f'data-end-ms="{esc("" if end is None else end)}" data-count="{total}"><title>{esc(title)}</title>'
            f'<rect class="slot" x="{x:.1f}" y="{HIST_TOP}" width="{slot:.1f}" height="{plot_h:.1f}"/>'
            + "".join(rects)
            + (f'<text class="count" x="{x + slot / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle">{total}</text>' if total else "")
            + f'<text x="{x + 2:.1f}" y="{HIST_H - 4}">{esc(ms_label(bar.get("start_ms")) if n % 2 == 0 else "")}</text></g>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{HIST_W}" height="{HIST_H}" viewBox="0 0 {HIST_W} {HIST_H}" '
        f'role="img" aria-label="histogram of the time until Python was ready">' + "".join(out) + "</svg>"
    )


def startup_html(report: dict[str, Any]) -> str:
    """``/api/startup``: visits and the share left before Python was ready, the median and p90
    ready time per interpreter, and the histogram of ready times."""
    visits = int(report.get("visits") or 0)
    left = int(report.get("left_before_ready") or 0)
    share = report.get("left_before_ready_share")
    shown = "—" if share is None else f"{100 * float(share):.0f}%"
    rows = "".join(
        f'<tr data-interpreter="{esc(r.get("interpreter"))}" data-count="{esc(r.get("count"))}" '
        f'data-median-ms="{esc(r.get("median_ms"))}" data-p90-ms="{esc(r.get("p90_ms"))}">'
        f"<td>{esc(INTERPRETER_LABELS.get(r.get('interpreter'), r.get('interpreter')))}</td>"
        f"<td>{esc(r.get('count'))}</td><td>{ms_label(r.get('median_ms'))}</td><td>{ms_label(r.get('p90_ms'))}</td></tr>"
        for r in report.get("ready") or []
    ) or '<tr><td colspan="4" class="muted">No page has reached Python yet.</td></tr>'
    names = (report.get("histogram") or {}).get("interpreters") or []
    legend = "".join(f'<span class="key-bar {esc(n)}">{esc(INTERPRETER_LABELS.get(n, n))}</span>' for n in names)
    return (
        f'<div class="startup-stats" data-visits="{visits}" data-left="{left}" data-share="{esc("" if share is None else share)}">'
        f'<div class="stat"><span class="value">{visits}</span><span class="label">visits</span></div>'
        f'<div class="stat{" warn" if left else ""}"><span class="value">{shown}</span>'
        f'<span class="label">left before Python was ready ({left})</span></div></div>'
        '<table class="grid ready"><thead><tr><th>interpreter</th><th>ready</th><th>median</th><th>p90</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
        f'<figure class="histogram">{histogram_svg(report.get("histogram") or {})}'
        f"<figcaption>time until Python was ready {legend}</figcaption></figure>"
    )


def cookieless_html(report: dict[str, Any]) -> str:
    """``/api/cookieless``: the visitors counted only thanks to cookieless mode (persons whose every
    id is a cookieless one), out of all persons."""
    only = int(report.get("cookieless_only") or 0)
    total = int(report.get("persons") or 0)
    share = f"{100 * only / total:.0f}%" if total else "—"
    return (
        f'<div class="startup-stats cookieless-stats" data-cookieless-only="{only}" data-persons="{total}">'
        f'<div class="stat"><span class="value">{only}</span>'
        '<span class="label">visitors counted only thanks to cookieless mode</span></div>'
        f'<div class="stat"><span class="value">{share}</span><span class="label">of {total} persons</span></div></div>'
    )
