"""The official ``mixpanel`` PyPI client (unmodified) against a running collector."""

from __future__ import annotations

import functools
import time

import mixpanel
import pytest
from mixpanel import BufferedConsumer, Consumer, Mixpanel, MixpanelException

from tests.collector.conftest import SECRET, TOKEN, CollectorProcess


def consumer_kwargs(proc: CollectorProcess) -> dict[str, str]:
    return {"events_url": proc.url + "/track", "people_url": proc.url + "/engage", "import_url": proc.url + "/import"}


@pytest.fixture
def mp(collector: CollectorProcess, monkeypatch: pytest.MonkeyPatch) -> Mixpanel:
    # Mixpanel.alias() (5.4.1) sends through a fresh ``Consumer()`` aimed at api.mixpanel.com whatever
    # consumer is configured; point that default at the collector. The client code itself is unchanged.
    monkeypatch.setattr(mixpanel, "Consumer", functools.partial(Consumer, **consumer_kwargs(collector)))
    return Mixpanel(TOKEN, consumer=Consumer(**consumer_kwargs(collector)))


def test_track_alias_people_and_merge(mp: Mixpanel, collector: CollectorProcess) -> None:
    mp.track("$device:py-1", "view", {"page": "/pricing"})
    mp.alias("py-user", "$device:py-1")
    mp.track("py-user", "signup", {"plan": "pro"})
    mp.people_set("py-user", {"$email": "py@example.com", "plan": "pro"})
    mp.people_set_once("py-user", {"first": "yes"})
    mp.people_set_once("py-user", {"first": "no"})
    mp.people_increment("py-user", {"logins": 1})
    mp.people_increment("py-user", {"logins": 2})
    mp.people_append("py-user", {"pages": "/a"})
    mp.people_union("py-user", {"tags": ["x", "y"]})
    mp.people_remove("py-user", {"tags": "x"})
    mp.people_unset("py-user", ["plan"])

    person = collector.api("/api/persons/py-user")
    assert set(person["distinct_ids"]) == {"py-user", "$device:py-1"}
    assert person["identified"] is True
    assert person["properties"] == {
        "$email": "py@example.com",
        "first": "yes",
        "logins": 3,
        "pages": ["/a"],
        "tags": ["y"],
    }
    events = collector.api("/api/persons/%24device%3Apy-1/events")["events"]
    assert [e["event"] for e in events] == ["view", "$create_alias", "signup"]
    assert all(isinstance(e["time"], int) for e in events)
    assert events[0]["properties"]["mp_lib"] == "python"

    # a second identified person, then $merge through /import with the secret
    mp.track("$device:py-2", "view")
    mp.alias("py-other", "$device:py-2")
    mp.people_set("py-other", {"$email": "other@example.com", "company": "ACME"})
    assert collector.api("/api/persons/py-other")["person_id"] != person["person_id"]
    with pytest.raises(MixpanelException):
        mp.merge(None, "py-user", "py-other", api_secret="wrong-secret")
    mp.merge(None, "py-user", "py-other", api_secret=SECRET)
    merged = collector.api("/api/persons/py-user")
    assert set(merged["distinct_ids"]) == {"py-user", "$device:py-1", "py-other", "$device:py-2"}
    assert merged["properties"]["company"] == "ACME"

    log = collector.api("/api/merges")["merges"]
    assert [(m["kind"], m["from_id"], m["to_id"], m["result"]) for m in log] == [
        ("alias", "$device:py-1", "py-user", "merged"),
        ("alias", "$device:py-2", "py-other", "merged"),
        ("merge", "py-user", "py-other", "merged"),
    ]


def test_rejections_surface_as_client_errors(mp: Mixpanel, collector: CollectorProcess) -> None:
    with pytest.raises(MixpanelException, match="numbers"):
        mp.people_increment("py-user", {"logins": "one"})
    with pytest.raises(MixpanelException, match="event"):
        mp.track("py-user", "")
    bad_token = Mixpanel("not-a-token", consumer=Consumer(**consumer_kwargs(collector)))
    with pytest.raises(MixpanelException, match="unknown token"):
        bad_token.track("py-user", "view")
    assert collector.api("/api/persons/py-user") is None


def test_import_data_and_buffered_consumer(collector: CollectorProcess) -> None:
    buffered = BufferedConsumer(max_size=50, **consumer_kwargs(collector))
    mp = Mixpanel(TOKEN, consumer=buffered)
    for i in range(120):
        mp.track("py-buffered", "tick", {"i": i})
    buffered.flush()
    events = collector.api("/api/persons/py-buffered/events")["events"]
    assert sorted(e["properties"]["i"] for e in events) == list(range(120))

    direct = Mixpanel(TOKEN, consumer=Consumer(**consumer_kwargs(collector)))
    ten_days_ago = int(time.time()) - 10 * 86_400
    direct.import_data(None, "py-buffered", "historical", ten_days_ago, {"src": "backfill"}, api_secret=SECRET)
    events = collector.api("/api/persons/py-buffered/events")["events"]
    assert events[0]["event"] == "historical" and events[0]["time"] == ten_days_ago * 1000
    with pytest.raises(MixpanelException):  # /track refuses what is older than 5 days
        direct.track("py-buffered", "too-old", {"time": ten_days_ago})
