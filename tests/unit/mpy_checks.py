# Runs under MicroPython (tools/mpy_run.mjs) and prints one JSON line that test_micropython.py
# compares with CPython: the validators (ids, percent-encoding, bounded parsing, dates) and one
# identity scenario through a minimal in-memory Browser, all in the common subset.
import json
import random
import time

from empmix_web import EmpMixClient
from empmix_web.browser import HttpReply
from empmix_web.campaigns import campaign, domain_of, first_touch
from empmix_web.compat import MICROPYTHON, loads_bounded
from empmix_web.ids import illegal_id_reason, is_insert_id, uuid4
from empmix_web.percent import quote, unquote
from empmix_web.sessions import uuid7
from empmix_web.validation import check_user_id
from empmix_web.wire import http_date_ms, outcome


class MiniBrowser:
    in_worker = False

    def __init__(self):
        self.local = {}
        self.cookies = {}
        self.sent = []

    def local_get(self, key):
        return self.local.get(key)

    def local_set(self, key, value):
        self.local[key] = value

    def local_remove(self, key):
        self.local.pop(key, None)

    def local_keys(self, prefix):
        return [k for k in self.local if k.startswith(prefix)]

    guard = None
    template = ("", "")
    guarded = 0  # writes local_set_event made: the hot path ran under MicroPython

    def set_guard(self, key, value, url):
        self.guard = (key, value, url)

    def set_template(self, text, id_prefix):
        self.template = (text, id_prefix)

    def local_set_event(self, key, name_json, session_json, props_json, count):
        if self.guard is None or self.local.get(self.guard[0]) != self.guard[1] or self.guard[2] != self.page_url():
            return 0
        text, prefix = self.template  # the page helper's assembly (_bridge._PAGE_HELPER's event)
        value = ('{"event":' + name_json + ',"properties":{"time":' + str(int(self.now_ms())) + ',"$insert_id":"'
                 + prefix + ("000000000000" + ("%x" % count))[-12:] + '","$session_id":' + session_json
                 + ("," + text if text else "") + ("," + props_json[1:-1] if len(props_json) > 2 else "") + "}}")
        self.local[key] = value
        self.guarded += 1
        return len(value)

    def get_cookies(self):
        return "; ".join(k + "=" + self.cookies[k] for k in self.cookies)

    def set_cookie(self, cookie):
        name, _, rest = cookie.partition("=")
        value = rest.split(";")[0]
        if "Max-Age=0" in cookie:
            self.cookies.pop(name, None)
        else:
            self.cookies[name] = value

    def page_url(self):
        return "http://127.0.0.1/page"

    def page_host(self):
        return "127.0.0.1"

    def page_origin(self):
        return "http://127.0.0.1"

    def is_https(self):
        return False

    def referrer(self):
        return ""

    def screen_size(self):
        return (1, 1)

    def on_page_hide(self, callback):
        pass

    def console(self, level, message):
        pass

    def now_ms(self):
        return time.time() * 1000

    def monotonic(self):
        return time.time()

    def random_bytes(self, n):
        return bytes([random.getrandbits(8) for _ in range(n)])

    async def post_form(self, url, body, timeout_ms):
        self.sent.append((url, json.loads(unquote(body[len("data=") :]))))
        return HttpReply(200, '{"status":1}')

    def send_beacon(self, url, body):
        return True

    def has_locks(self):
        return False

    def hold_lock(self, name):
        return lambda: None

    async def try_lock(self, name):
        return None


def raises(fn, arg):
    try:
        fn(arg)
        return None
    except Exception as exc:
        return type(exc).__name__


def timed(c, b):
    """A timed event: a refused track() leaves its timer running; the next one carries it."""
    c.time_event("step")
    refused = raises(lambda v: c.track("step", {"v": v}), float("nan"))
    kept = c._core.timers.running("step")
    c.track("step")
    queued = [json.loads(b.local[k]) for k in sorted(b.local) if k.startswith("empmix_tok_q_")]
    props = queued[-1]["properties"]
    return [refused, kept, isinstance(props.get("$duration"), float), "$session_id" in props]


def hot_path(c, b):
    """Two events: the second goes through the one-call hot path, and says what the first did."""
    c.track("h1", {"k": 1})
    before = b.guarded
    c.track("h2", {"k": 2})
    queued = [json.loads(b.local[k]) for k in sorted(b.local) if k.startswith("empmix_tok_q_")]
    first, second = queued[-2]["properties"], queued[-1]["properties"]
    same = [k for k in first if k not in ("time", "$insert_id", "k") and first[k] != second.get(k)]
    return [b.guarded - before, queued[-1]["event"], second["k"], sorted(second) == sorted(first), same]


IDS = ["usr_1", "Nan", "NULL", "null", "None", "UNDEFINED", "'none'", "", "  ", "$device:", "0", "x" * 256]
INSERT_IDS = ["a" * 36, "a" * 37, "", "Az09-", "a_b", "a b", "\u00e9", "1\x00", "--", 7, None]
TEXTS = ["abc", "a b%c&=", '{"x":"\u00e9\u20ac"}', "~!*()'", "\x01\n"]


async def main():
    b = MiniBrowser()
    c = EmpMixClient("tok", browser=b, flush_interval_ms=10)
    c.track("a", {"x": "\u00e9"})
    c.set_user_properties({"a": 1})
    c.unset(["a"])
    c.set_user_properties_once({"a": 2})
    c.identify("usr_1")
    c.increment("n", 1)
    ok = await c.flush(5000)
    c.register({"sp": "secret-value"})
    c.reset()
    stored = "\n".join(list(b.local.values()) + list(b.cookies.values()))
    events = [r["event"] for url, batch in b.sent if "/track/" in url for r in batch]
    ops = []
    for url, batch in b.sent:
        if "/engage/" in url:
            for r in batch:
                ops.append([k for k in r if k in ("$set", "$unset", "$set_once", "$add")][0])
    result = {
        "micropython": MICROPYTHON,
        "flushed": ok,
        "events": events,
        "ops": ops,
        "left_after_reset": ("usr_1" in stored) or ("secret-value" in stored),
        "ids": [illegal_id_reason(i) is None for i in IDS],
        "user_ids": [raises(check_user_id, i) for i in IDS + [True, 1.5, 7]],
        "insert_ids": [is_insert_id(i) for i in INSERT_IDS],
        "quote": [quote(t) for t in TEXTS],
        "unquote": [unquote(quote(t)) == t for t in TEXTS],
        "deep": loads_bounded("[" * 3000, 10000) is None,
        "date": http_date_ms("Thu, 01 Jan 1970 00:00:10 GMT"),
        "uuid": uuid4(bytes(range(16))),
        "outcome": [outcome(s, '{"failed_records":[{"index":0}]}')[0] for s in (200, 400, 408, 413, 403)],
        "track_nan": raises(lambda v: c.track("e", {"x": v}), float("nan")),
        "uuid7": uuid7(1800000000000.0, bytes(range(10))),
        "campaign": campaign("https://a.example/p?utm_source=news%20letter&x=1&utm_medium=email+x&gclid=G#utm_term=no"),
        "domains": [
            domain_of(u) for u in ("", "https://www.Example.com:8080/a?b", "http://[::1]:80/", "android-app://x")
        ],
        "first_touch": first_touch("https://ref.example/x", "/?utm_source=a&utm_campaign=b", {}),
        "session_ok": len(c.get_session_id()) == 36 and c.get_session_id()[14] == "7",
        "duration": timed(c, b),
        "hot": hot_path(c, b),
    }
    print("RESULT " + json.dumps(result))


await main()
