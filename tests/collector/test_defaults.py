"""Safe defaults: the query API without a secret, CORS on /api, the Host guard, the static
site's boundaries, and the smaller hardening fixes (in-process, plus real sockets at the end)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from empmix_collector.http.app import create_app
from empmix_collector.settings import Settings
from tests.collector.conftest import TOKEN, Collector, event, form, wait_for
from tests.collector_process import CollectorProcess

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from starlette.testclient import TestClient

SITE = "https://shop.example"
FOREIGN = "https://evil.example"


@pytest.fixture
def open_app(new_db: Callable[[], str]) -> Iterator[Callable[..., TestClient]]:
    """Factory: a TestClient for a fresh collector, from client address ``client``."""
    opened: list[TestClient] = []

    def make(client: str = "127.0.0.1", **overrides: Any) -> TestClient:
        values: dict[str, Any] = {"db_path": new_db(), "tokens": (TOKEN,), **overrides}
        http = TestClient(create_app(Settings(**values)), client=(client, 40000))
        http.__enter__()
        opened.append(http)
        return http

    yield make
    for http in opened:
        http.__exit__(None, None, None)


# -- the query API without --secret ------------------------------------------------------------


@pytest.mark.parametrize("address", ["203.0.113.9", "10.0.0.2", "::ffff:192.0.2.1", "2001:db8::1"])
def test_without_a_secret_the_query_api_refuses_other_machines(
    open_app: Callable[..., TestClient], address: str
) -> None:
    remote = open_app(client=address)
    r = remote.get("/api/persons")
    assert r.status_code == 403 and "loopback" in r.json()["error"]
    assert remote.post("/track", **form([event("still ingested", "u1")])).status_code == 200
    assert remote.get("/healthz").status_code == 200


@pytest.mark.parametrize("address", ["127.0.0.1", "127.8.0.1", "::1", "::ffff:127.0.0.1"])
def test_without_a_secret_loopback_clients_read_the_query_api(
    open_app: Callable[..., TestClient], address: str
) -> None:
    assert open_app(client=address).get("/api/persons").json() == {"persons": []}


def test_without_a_secret_the_start_up_warns(
    open_app: Callable[..., TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="empmix_collector"):
        open_app()
        open_app(secret="s")
    warned = [r.getMessage() for r in caplog.records if "--secret" in r.getMessage()]
    assert len(warned) == 1 and "loopback clients only" in warned[0]


# -- CORS ------------------------------------------------------------------------------------


def test_the_query_api_gets_cors_only_for_listed_origins_and_never_credentials(
    open_app: Callable[..., TestClient],
) -> None:
    dev = open_app()  # no --allow-origin: ingestion echoes any origin, the query API none
    r = dev.get("/api/persons", headers={"Origin": FOREIGN})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    assert r.headers["vary"] == "Origin"
    assert dev.options("/api/persons", headers={"Origin": FOREIGN}).status_code == 403
    body = form([event("x", "u")])
    track = dev.post("/track", content=body["content"], headers={**body["headers"], "Origin": FOREIGN})
    assert track.headers["access-control-allow-origin"] == FOREIGN
    assert track.headers["access-control-allow-credentials"] == "true"
    listed = open_app(allow_origins=(SITE,))
    r = listed.get("/api/persons", headers={"Origin": SITE})
    assert r.headers["access-control-allow-origin"] == SITE and "access-control-allow-credentials" not in r.headers
    pre = listed.options("/api/persons", headers={"Origin": SITE, "Access-Control-Request-Method": "GET"})
    assert pre.status_code == 204 and "access-control-allow-credentials" not in pre.headers


def test_vary_origin_on_every_reply_and_options_only_on_routes(open_app: Callable[..., TestClient]) -> None:
    http = open_app(allow_origins=(SITE,))
    foreign_get = http.get("/api/persons", headers={"Origin": FOREIGN})
    assert foreign_get.headers["vary"] == "Origin" and "access-control-allow-origin" not in foreign_get.headers
    assert http.get("/healthz").headers["vary"] == "Origin"
    assert http.options("/track", headers={"Origin": SITE}).status_code == 204
    assert http.options("/track").status_code == 204
    for path in ("/nowhere", "/api", "/track/extra"):
        assert http.options(path, headers={"Origin": SITE}).status_code == 404, path
        assert http.options(path).status_code == 404, path


def test_the_own_origin_check_compares_the_scheme(open_app: Callable[..., TestClient]) -> None:
    http = open_app(allow_origins=(SITE,))  # TestClient requests are http://testserver
    body = form([event("x", "u")])
    assert (
        http.post(
            "/track", headers={**body["headers"], "Origin": "http://testserver"}, content=body["content"]
        ).status_code
        == 200
    )
    other = http.post("/track", headers={**body["headers"], "Origin": "https://testserver"}, content=body["content"])
    assert other.status_code == 403


def test_a_get_from_a_foreign_origin_cannot_write(open_app: Callable[..., TestClient]) -> None:
    http = open_app(allow_origins=(SITE,))
    data = json.dumps([event("x", "u")])
    assert http.get("/track", params={"data": data}, headers={"Origin": FOREIGN}).status_code == 403
    assert http.get("/track", params={"data": data}, headers={"Origin": SITE}).status_code == 200


# -- the Host guard --------------------------------------------------------------------------


def test_other_host_names_get_421(open_app: Callable[..., TestClient]) -> None:
    http = open_app(allowed_hosts=("shop.example", "127.0.0.1", "::1"))
    assert http.get("/api/persons").status_code == 421  # Host: testserver
    assert http.post("/track", **form([event("x", "u")])).status_code == 421
    for host in ("shop.example", "SHOP.example:8443", "127.0.0.1:8000", "[::1]:8000"):
        assert http.get("/api/persons", headers={"Host": host}).status_code == 200, host
    assert http.get("/healthz").status_code == 200  # load balancers probe by address
    assert open_app(allowed_hosts=("*",)).get("/api/persons").status_code == 200


def test_allowed_host_values_are_checked() -> None:
    for bad in ("http://x.example", "x.example/path", "", "a b"):
        with pytest.raises(ValueError, match="--allowed-host"):
            Settings(db_path="x.db", tokens=("t",), allowed_hosts=(bad,))
    assert Settings(db_path="x.db", tokens=("t",), allowed_hosts=("[::1]", "A.example")).allowed_hosts == (
        "::1",
        "a.example",
    )


# -- the static site -------------------------------------------------------------------------


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "www"
    (root / "docs").mkdir(parents=True)
    (root / "index.html").write_text("<p>home</p>")
    (root / "docs" / "index.html").write_text("<p>docs</p>")
    (tmp_path / "outside.txt").write_text("private")
    (tmp_path / "outdir").mkdir()
    (tmp_path / "outdir" / "index.html").write_text("private dir")
    os.symlink(tmp_path / "outside.txt", root / "leak.txt")
    os.symlink(tmp_path / "outdir", root / "leakdir")
    os.symlink(root / "index.html", root / "home.html")  # inside: still served
    return root


def test_the_site_follows_no_symlink_out_of_its_folder(open_app: Callable[..., TestClient], site: Path) -> None:
    http = open_app(site_dir=str(site))
    assert http.get("/home.html").text == "<p>home</p>"
    for path in ("/leak.txt", "/leakdir/", "/leakdir/index.html"):
        r = http.get(path)
        assert r.status_code == 404 and "private" not in r.text, path


def test_site_redirects_are_relative_and_framing_is_self_only(open_app: Callable[..., TestClient], site: Path) -> None:
    http = open_app(site_dir=str(site))
    r = http.get("/docs", headers={"Host": "evil.example"}, follow_redirects=False)
    assert r.status_code in (301, 307) and r.headers["location"] == "./docs/"
    r = http.get("/docs?x=1", follow_redirects=False)
    assert r.headers["location"] == "./docs/?x=1"
    assert http.get("/docs", follow_redirects=True).text == "<p>docs</p>"
    assert "frame-ancestors 'self'" in http.get("/").headers["content-security-policy"]


# -- smaller defects -------------------------------------------------------------------------


def test_query_integers_are_ascii_digits_only(client: Collector) -> None:
    for bad in ("1_000", "\u0661\u0660", "\uff11\uff10", " 10", "+10", "0x10", "1e999", "١"):
        r = client.get("/api/events", limit=bad)
        assert r.status_code == 400, bad
    for good in ("10", "1e2", "100.0"):
        assert client.get("/api/events", limit=good).status_code == 200, good


def test_cookie_refuses_duplicate_json_keys(client: Collector) -> None:
    value = '{"distinct_id": "$device:d1", "$device_id": "d1", "state": "anonymous", "distinct_id": "victim"}'
    r = client.http.post(
        "/cookie",
        content="token=" + TOKEN + "&value=" + quote(value, safe=""),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://testserver"},
    )
    assert r.status_code == 400 and "twice" in r.json()["error"] and "set-cookie" not in r.headers


def test_a_sqlite_start_failure_names_the_path(tmp_path: Path) -> None:
    target = tmp_path / "missing-folder" / "events.db"
    done = subprocess.run(
        [sys.executable, "-m", "empmix_collector", "--port", "0", "--db", str(target), "--token", TOKEN],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert str(target) in done.stderr and "Traceback" not in done.stderr


def test_the_wal_is_truncated_once_the_writer_is_idle(tmp_path: Path) -> None:
    path = str(tmp_path / "wal.db")
    with TestClient(create_app(Settings(db_path=path, tokens=(TOKEN,))), client=("127.0.0.1", 1)) as http:
        wal = Path(path + "-wal")
        for n in range(20):
            records = [event("burst", f"u{n}-{i}", blob="x" * 200) for i in range(100)]
            assert http.post("/track", **form(records)).status_code == 200
            assert wal.stat().st_size > 0  # a commit appends to the WAL
        wait_for(lambda: wal.stat().st_size == 0, what="an empty WAL after the burst")
        assert len(http.get("/api/events", params={"limit": 5000}).json()["events"]) == 2000


# -- over real sockets -------------------------------------------------------------------------


def _request(proc: CollectorProcess, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(proc.url + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, {k.lower(): v for k, v in reply.headers.items()}, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read().decode()


def test_secure_defaults_over_real_sockets(start_collector: Callable[..., CollectorProcess]) -> None:
    proc = start_collector(secret=None)  # what ./build.sh serve runs: no --secret, no --allow-origin
    wait_for(lambda: any("no --secret" in line for line in proc.output), what="the start-up warning")
    port = proc.url.rsplit(":", 1)[1]
    # a page on another site reads nothing: no CORS headers on /api, never credentials
    status, headers, body = _request(proc, "/api/persons", {"Origin": FOREIGN})
    assert status == 200 and "access-control-allow-origin" not in headers
    assert "access-control-allow-credentials" not in headers and headers["vary"] == "Origin"
    # DNS rebinding: the browser thinks it talks to evil.example, and says so in Host
    for path in ("/api/persons", "/track?data=" + quote(json.dumps([event("x", "u")]))):
        status, _, body = _request(proc, path, {"Origin": FOREIGN, "Host": f"evil.example:{port}"})
        assert status == 421 and "evil.example" in body, path
    assert proc.api("/api/events")["events"] == []  # the rebound GET /track stored nothing
    status, _, _ = _request(proc, "/api/persons", {"Host": f"localhost:{port}"})
    assert status == 200
