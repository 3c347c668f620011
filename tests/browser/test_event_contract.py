"""The page assembles hot-path events (``_bridge._PAGE_HELPER``'s ``event``), repeating a rule of
``records.RecordFactory.event``: this binds the two. Over generated templates, properties, names,
sessions and counters, the real helper in the page writes, byte for byte, what the Python
encoder writes for the same per-event values (computed here, in CPython). And ``setEvent``, the
hot path's one call, stores exactly that text (its own clock's ``time``) and returns its length.
The text goes from the page's helper to storage, as on the hot path, and is read back here by
JavaScript: it never returns through the interpreter's FFI.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from empmix_web.compat import dumps
from empmix_web.records import PAGE_FIELDS, EventTemplate, InsertIds, RecordFactory

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8)  # no lone surrogates
NAMES = st.one_of(st.sampled_from(["plan", "token", "$current_url", "é", "", 'a"b', "\u2028"]), TEXT)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.floats(allow_nan=False, allow_infinity=False), TEXT
)
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NAMES, inner, max_size=3), max_leaves=5
)
CASE = st.fixed_dictionaries(
    {
        "shared": st.dictionaries(NAMES, VALUES, max_size=5),
        "props": st.dictionaries(NAMES, VALUES, max_size=4),
        "name": TEXT,
        "session": TEXT,
        "prefix": st.text(alphabet="0123456789abcdef", min_size=20, max_size=20),
        "count": st.integers(1, 2**31 - 1),  # it crosses MicroPython's FFI as a small integer
    }
)

# the hot path's own call, as the hot path makes it: the text goes from the page to storage only
IN_PAGE = """
import json
from empmix_web._bridge import JsBrowser
b = JsBrowser()
b.local_set("empmix_contract_watch", "v1")
b.set_guard("empmix_contract_watch", "v1", b.page_url())
sizes = []
for i, case in enumerate(json.loads({cases!r})):
    b.set_template(case["text"], case["prefix"])
    sizes.append(b.local_set_event("empmix_contract_q" + str(i), case["name_json"], case["session_json"],
                                   case["props_json"], case["count"]))
b.local_remove("empmix_contract_watch")
"""
READ = """n => { const out = []; for (let i = 0; i < n; i++) { const k = "empmix_contract_q" + i;
                 out.push(localStorage.getItem(k)); localStorage.removeItem(k) } return out }"""


def python_bytes(case: dict[str, Any], time: int = 0) -> tuple[dict[str, Any], str]:
    """What the page gets for ``case`` (as the hot path hands it over) and what the encoder
    writes for it at ``time``."""
    shared = {k: v for k, v in case["shared"].items() if k not in PAGE_FIELDS}
    props = {k: v for k, v in case["props"].items() if k not in shared and k not in PAGE_FIELDS}
    ids = InsertIds(bytes(10))
    ids.prefix = case["prefix"]
    factory = RecordFactory("tok", lambda: 0.0, ids)
    template = EventTemplate(shared)
    per_event = {"time": time, "$insert_id": ids.prefix + "%012x" % case["count"], "$session_id": case["session"]}
    props_json = dumps(props)
    body = factory.event(case["name"], template, per_event, props, props_json).body
    given_to_page = {
        "text": template.text,
        "prefix": ids.prefix,
        "name_json": dumps(case["name"]),
        "session_json": dumps(case["session"]),
        "props_json": props_json,
        "count": case["count"],
    }
    return given_to_page, body


def test_the_pages_assembly_stores_the_python_encoders_bytes(py: Any) -> None:
    cases: list[dict[str, Any]] = []

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(CASE)
    def collect(case: dict[str, Any]) -> None:
        cases.append(case)

    collect()
    cases.append({"shared": {}, "props": {}, "name": "e", "session": "s", "prefix": "0" * 20, "count": 1})
    given_to_page = [python_bytes(case)[0] for case in cases]
    # raw text: MicroPython's json.loads makes no character of a surrogate pair written as two \u escapes
    sizes = py(IN_PAGE.format(cases=json.dumps(given_to_page, ensure_ascii=False)), "sizes")
    stored = py.page.evaluate(READ, len(cases))
    for case, size, text in zip(cases, sizes, stored, strict=True):
        assert text is not None, case
        time = json.loads(text)["properties"]["time"]
        assert isinstance(time, int) and time > 1.7e12  # the page's Date.now()
        assert text == python_bytes(case, time)[1], case
        assert size == len(text.encode("utf-16-le")) // 2  # its length, as the page counts it


STORE = """
from empmix_web._bridge import JsBrowser
b = JsBrowser()
b.local_set("empmix_contract_watch", "v1")
b.set_guard("empmix_contract_watch", "v1", b.page_url())
b.local_set("empmix_contract_watch", "v2")  # what the guard assumes no longer holds
refused = b.local_set_event("empmix_contract_q", '"e"', '"sid"', '{}', 8)
left = b.local_get("empmix_contract_q")
b.local_remove("empmix_contract_watch")
"""


def test_set_event_writes_nothing_once_the_guard_fails(py: Any) -> None:
    assert py(STORE, "[refused, left]") == [0, None]
