"""The Mixpanel wire, as pure functions: request bodies, replies, and beacon chunks.

Replies decide what happens to a batch (``outcome``):

- 2xx: delivered (records the server names in ``failed_records`` were refused; logged);
- 400 with ``failed_records``: those records are dropped (logged), the rest sent again (the
  server deduplicates by ``$insert_id``); 400 without that list: the whole batch is dropped;
- 413: the batch is split in two; a single record still too large is dropped (logged);
- no reply, 408, 429, 5xx: retried with exponential back-off and jitter from about 1 s to a
  cap of 3 minutes, or after ``Retry-After`` when the server sends one (capped at 10 minutes);
- any other 4xx: dropped (logged): the server will never accept it.
"""

from .compat import loads_bounded
from .percent import quote

try:
    from typing import Any
except ImportError:
    pass

BACKOFF_BASE_MS = 1_000
BACKOFF_CAP_MS = 180_000
RETRY_AFTER_CAP_MS = 600_000
BEACON_LIMIT = 64 * 1024  # the keepalive in-flight quota shared by all beacons of a page
MAX_REPLY_CHARS = 1_000_000

DELIVERED, RETRY, SPLIT, DROP, DROP_SOME = "delivered", "retry", "split", "drop", "drop_some"
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


# where each kind of request goes, relative to api_host; init(api_routes=...) overrides any subset
DEFAULT_ROUTES = {"track": "track/", "engage": "engage/", "groups": "groups/", "cookie": "cookie"}


def url(api_host: str, route: str, verbose: bool = True) -> str:
    """``api_host`` + ``route`` (with ``verbose=1``, which asks for ``failed_records``)."""
    base = api_host.rstrip("/") + "/" + route.lstrip("/")
    return base + ("&" if "?" in base else "?") + "verbose=1" if verbose else base


def encode_batch(bodies: "list[str]") -> str:
    """The form body ``data=<url-encoded JSON array>``."""
    return "data=" + quote("[" + ",".join(bodies) + "]")


def encoded_size(body: str) -> int:
    """What one record adds to ``encode_batch``'s length (with its ``%2C`` separator)."""
    return len(quote(body)) + 3


EMPTY_BATCH_SIZE = len("data=%5B%5D") - 3  # the frame, less the one separator it does not have


def failed_records(reply_body: str) -> "dict[int, str]":
    """``{index: reason}`` from a verbose reply's ``failed_records`` (Mixpanel's /import shape)."""
    reply = loads_bounded(reply_body, MAX_REPLY_CHARS)
    failed = reply.get("failed_records") if isinstance(reply, dict) else None
    out: "dict[int, str]" = {}
    for item in failed if isinstance(failed, list) else []:
        if isinstance(item, dict):
            index = item.get("index")
            if isinstance(index, int) and not isinstance(index, bool):
                out[index] = str(item.get("message") or item.get("reason") or "rejected")
    return out


def outcome(status: int, reply_body: str) -> "tuple[str, dict[int, str]]":
    """What to do with a batch after an HTTP reply, and which records the server refused."""
    if 200 <= status < 300:
        return DELIVERED, failed_records(reply_body)
    if status == 413:
        return SPLIT, {}
    if status in (408, 429) or status >= 500:
        return RETRY, {}
    if status == 400:
        failed = failed_records(reply_body)
        if failed:
            return DROP_SOME, failed
    return DROP, {}


def backoff_ms(attempts: int, jitter: float) -> int:
    """Exponential back-off for the ``attempts``-th retry; ``jitter`` in [0, 1)."""
    backoff = BACKOFF_BASE_MS * (2 ** min(attempts, 20))
    if backoff > BACKOFF_CAP_MS:
        backoff = BACKOFF_CAP_MS
    return int(backoff * (0.5 + jitter / 2))  # tabs don't retry in step


def retry_after_ms(value: "str | None", now_ms: float) -> "int | None":
    """``Retry-After`` (seconds, or an HTTP date) in milliseconds, capped; None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(int(value) * 1000, RETRY_AFTER_CAP_MS)
    when = http_date_ms(value)
    if when is None:
        return None
    return max(0, min(int(when - now_ms), RETRY_AFTER_CAP_MS))


def http_date_ms(value: str) -> "float | None":
    """An IMF-fixdate (``Wed, 21 Oct 2015 07:28:00 GMT``) as epoch milliseconds, else None."""
    parts = value.replace(",", " ").split()
    if len(parts) != 6 or parts[5].upper() != "GMT":
        return None
    day, month, year, clock = parts[1], parts[2].lower(), parts[3], parts[4].split(":")
    if month not in _MONTHS or not day.isdigit() or not year.isdigit() or len(clock) != 3:
        return None
    if not all(p.isdigit() for p in clock):
        return None
    days = _days_from_civil(int(year), _MONTHS.index(month) + 1, int(day))
    seconds = days * 86400 + int(clock[0]) * 3600 + int(clock[1]) * 60 + int(clock[2])
    return seconds * 1000.0


def _days_from_civil(y: int, m: int, d: int) -> int:
    # Howard Hinnant's algorithm: days since 1970-01-01 in the proleptic Gregorian calendar
    if m <= 2:
        y -= 1
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def beacon_chunks(records: "list[Any]", batch_size: int, budget: int = BEACON_LIMIT) -> "list[list[Any]]":
    """Split queued records into beacon bodies: consecutive records of one endpoint, at most
    ``batch_size`` a body, all bodies together within ``budget`` characters (the page's
    keepalive quota). Records that are not idempotent are left out; so is what exceeds the
    budget (the next page load sends it)."""
    chunks: "list[list[Any]]" = []
    chunk: "list[Any]" = []
    size = total = 0
    for record in records:
        if not record.kind.idempotent or not record.body:  # no text: gone from storage
            continue
        grown = encoded_size(record.body)
        if chunk and (record.kind.endpoint != chunk[0].kind.endpoint or len(chunk) >= batch_size):
            chunks.append(chunk)
            total += size
            chunk = []
        if not chunk:
            size = EMPTY_BATCH_SIZE
        if total + size + grown > budget:
            break
        chunk.append(record)
        size += grown
    if chunk:
        chunks.append(chunk)
    return chunks
