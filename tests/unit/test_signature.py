"""``identify``/``alias`` with ``signature=`` (verified identities, issue 18) on the in-memory browser."""

from __future__ import annotations

import pytest

from tests.unit.conftest import run, tab
from tests.unit.fake_browser import Origin

SIG = "ab" * 32


def test_the_signature_goes_on_the_linking_events_only(origin: Origin) -> None:
    async def body() -> None:
        c, _ = tab(origin)
        c.alias("usr_a", signature=SIG.upper())
        c.identify("usr_a")
        c.track("After")
        assert await c.flush(2000)
        events = {r["event"]: r["properties"] for url, r in origin.received}
        assert events["$create_alias"]["$identity_signature"] == SIG  # hex, lower case
        assert "$identity_signature" not in events["After"]
        d, _ = tab(origin, token="other")
        d.identify("usr_b", signature=SIG)
        assert await d.flush(2000)
        identify = [r for url, r in origin.received if r["properties"].get("distinct_id") == "usr_b"][0]
        assert identify["event"] == "$identify" and identify["properties"]["$identity_signature"] == SIG

    run(body)


@pytest.mark.parametrize("bad", ["nope", "ab" * 31, "zz" * 32, 7])
def test_a_bad_signature_raises_naming_it_and_changes_nothing(origin: Origin, bad: object) -> None:
    c, _ = tab(origin)
    before = dict(origin.local)
    with pytest.raises((TypeError, ValueError), match="signature"):
        c.identify("usr_a", signature=bad)  # type: ignore[arg-type]
    with pytest.raises((TypeError, ValueError), match="signature"):
        c.alias("usr_a", signature=bad)  # type: ignore[arg-type]
    assert c.get_user_id() is None and origin.local == before
