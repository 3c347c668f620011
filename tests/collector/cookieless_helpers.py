"""What the cookieless tests share: a browser's request, the injected day, the stored ids."""

from __future__ import annotations

from typing import Any

from empmix_collector.domain.cookieless import DAY_MS
from empmix_web.ids import COOKIELESS, COOKIELESS_PREFIX
from tests.collector.conftest import Collector, event, form
from tests.collector.dbs import rows

__all__ = ["UA_A", "UA_B", "PAGE", "DAY", "COOKIELESS", "COOKIELESS_PREFIX", "Browser", "at_day", "view", "tables"]

UA_A = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 EmpmixTestChrome/131.0"
UA_B = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) EmpmixTestSafari/17.5"
PAGE = "https://shop.example/pricing"
ORIGIN = "https://shop.example"  # a browser sends it with every POST: the host of profile records
DAY = 20_400  # a UTC day (2025-11-07), as days since the epoch
TABLES = (
    "events", "persons", "person_distinct_ids", "aliases", "merges", "profile_updates",
    "cookieless_salts", "cookieless_resets",
)  # fmt: skip


def at_day(client: Collector, day: int, hour: int = 12) -> None:
    """Move the collector's cookieless clock to ``hour`` o'clock UTC of ``day``."""
    client.http.app.state.cookieless.clock = lambda: day * DAY_MS + hour * 3_600_000  # type: ignore[attr-defined]


def view(**props: Any) -> dict[str, Any]:
    """A page view as the SDK sends it in cookieless operation."""
    return event("$mp_web_page_view", COOKIELESS, **{"$current_url": PAGE, **props})


class Browser:
    """One browser: a user agent and (behind a trusted proxy) an address."""

    def __init__(self, client: Collector, user_agent: str = UA_A, forwarded_for: str | None = None) -> None:
        self.client = client
        self.user_agent = user_agent
        self.forwarded_for = forwarded_for

    def _headers(self, content_type: str) -> dict[str, str]:
        headers = {"Content-Type": content_type, "User-Agent": self.user_agent, "Origin": ORIGIN}
        if self.forwarded_for is not None:
            headers["X-Forwarded-For"] = self.forwarded_for
        return headers

    def post(self, path: str, records: list[dict[str, Any]], status: int = 200) -> Any:
        body = form(records)
        headers = self._headers("application/x-www-form-urlencoded")
        response = self.client.http.post(path + "?verbose=1", content=body["content"], headers=headers)
        assert response.status_code == status, response.text
        return response.json()

    def send(self, *records: dict[str, Any]) -> list[str]:
        """POST ``records`` to /track; returns the distinct ids stored for them, in order."""
        self.post("/track", list(records))
        return [self.client_id(r["properties"]["$insert_id"]) for r in records]

    def client_id(self, insert_id: str) -> str:
        events = self.client.get("/api/events", limit=10_000).json()["events"]
        found = [e for e in events if e["insert_id"] == insert_id]
        assert len(found) == 1, found
        return str(found[0]["distinct_id"])

    def visit(self) -> str:
        """One cookieless page view -> the id the collector gave it."""
        return self.send(view())[0]


def tables(target: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every collector table."""
    return {name: rows(target, f"SELECT * FROM {name}") for name in TABLES}
