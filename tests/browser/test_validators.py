"""The pure validators inside the real page, under each interpreter: ``re`` and string methods
differ silently on MicroPython, so ids, tokens and percent-encoding are compared with CPython's
answers computed here, in the test process."""

from __future__ import annotations

import json

from empmix_web.ids import illegal_id_reason, is_insert_id, user_id_problem
from empmix_web.percent import quote, unquote
from empmix_web.validation import is_token

IDS = [
    "usr_1",
    "Nan",
    "nan",
    "Null",
    "NULL",
    "NONE",
    "null",
    "None",
    "none",
    "UNDEFINED",
    " Anonymous ",
    "'none'",
    '"guest"',
    "",
    "  ",
    "0",
    "-1",
    "[]",
    "{}",
    "[object Object]",
    "x" * 255,
    "x" * 256,
    "a\x00b",
    "$device:abc",
    "$device:",
    "$device: null",
    "n/a",
    "<nil>",
    "é中文",
    "00000000-0000-0000-0000-000000000000",
]
TOKENS = ["tok", "a.b-c_d", "", "x" * 128, "x" * 129, "bad token", "é", "tok/1"]
TEXTS = ["abc", "a b%c&=+", '{"x":"é€😀"}', "~!*()'", "\x01\n\t", "%E9%zz", "日本語", "".join(map(chr, range(32, 127)))]


def test_validators_answer_in_the_page_as_on_cpython(py):
    expected = {
        "ids": [illegal_id_reason(i) for i in IDS],
        "user": [user_id_problem(i) for i in IDS],
        "tokens": [is_token(t) for t in TOKENS],
        "insert": [is_insert_id(t) for t in TOKENS],
        "quote": [quote(t) for t in TEXTS],
        "unquote": [unquote(t) for t in TEXTS],
    }
    got = py(
        f"""
from empmix_web.ids import illegal_id_reason, is_insert_id, user_id_problem
from empmix_web.percent import quote, unquote
from empmix_web.validation import is_token
IDS = json.loads({json.dumps(IDS, ensure_ascii=False)!r})
TOKENS = json.loads({json.dumps(TOKENS, ensure_ascii=False)!r})
TEXTS = json.loads({json.dumps(TEXTS, ensure_ascii=False)!r})  # raw: MicroPython decodes \\u surrogate pairs as two code points
result = {{"ids": [illegal_id_reason(i) for i in IDS], "user": [user_id_problem(i) for i in IDS],
          "tokens": [is_token(t) for t in TOKENS], "insert": [is_insert_id(t) for t in TOKENS],
          "quote": [quote(t) for t in TEXTS], "unquote": [unquote(t) for t in TEXTS]}}
""",
        "[INTERPRETER, result]",
    )
    interpreter, result = got
    assert interpreter == {"py": "cpython", "mpy": "micropython"}[py.interp]
    assert result == expected


def test_the_js_helper_survives_what_throws_in_javascript(py, token):
    """A synchronous JS throw cannot be caught by MicroPython: the bridge never lets one out."""
    result = py(
        f"""
c = mk({token!r})
b = c._core.browser
js.eval("window._realSet = Storage.prototype.setItem; Storage.prototype.setItem = function () {{ throw new DOMException('full', 'QuotaExceededError') }}")
try:
    b.local_set('empmix_x', '1')
    outcome = 'no error'
except Exception as exc:
    outcome = type(exc).__name__ + ': ' + str(exc)
c.track('while setItem throws')
js.eval("Storage.prototype.setItem = window._realSet")
ok = await c.flush(5000)
""",
        "[outcome, ok, c._core.storage.persistent]",
    )
    assert result == ["StorageUnavailable: QuotaExceededError: full", True, False]
