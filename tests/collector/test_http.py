"""CORS, the static site, and the CLI/server process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from empmix_collector.http.site import CONTENT_SECURITY_POLICY
from tests.collector.conftest import TOKEN, Collector, CollectorProcess, event, form

ORIGIN = "https://shop.example"
CSP = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval' 'unsafe-eval'; connect-src 'self'; "
    "img-src 'self' data:; style-src 'self' 'unsafe-inline'; worker-src 'self' blob:; font-src 'self' data:; "
    "frame-ancestors 'self'"
)


# -- CORS --------------------------------------------------------------------------------------


def test_preflight_is_answered_with_credentials(client: Collector) -> None:
    r = client.http.options(
        "/track/",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert r.headers["access-control-allow-credentials"] == "true"
    assert "POST" in r.headers["access-control-allow-methods"]
    assert "content-type" in r.headers["access-control-allow-headers"].lower()
    assert "Origin" in r.headers["vary"]


def test_any_origin_is_echoed_in_dev_mode(client: Collector) -> None:
    r = client.http.post(
        "/track/?verbose=1",
        headers={"Origin": ORIGIN, **form([event("v", "u")])["headers"]},
        content=form([event("v", "u")])["content"],
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert r.headers["access-control-allow-credentials"] == "true"
    assert r.headers["access-control-expose-headers"] == "Retry-After"
    assert r.headers["vary"] == "Origin"


def test_allow_list_echoes_only_listed_origins(make_client: Callable[..., Collector]) -> None:
    client = make_client(allow_origins=(ORIGIN, "http://localhost:3000"))
    body = form([event("v", "u")])
    ok = client.http.post("/track/?verbose=1", content=body["content"], headers={**body["headers"], "Origin": ORIGIN})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == ORIGIN
    evil = client.http.post(
        "/track/?verbose=1",
        content=form([event("v", "evil")])["content"],
        headers={**body["headers"], "Origin": "https://evil.example"},
    )
    assert evil.status_code == 403 and "access-control-allow-origin" not in evil.headers
    assert client.person("evil") is None
    pre = client.http.options(
        "/track/", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert pre.status_code == 403 and "access-control-allow-origin" not in pre.headers
    # the collector's own origin (pages served by --site) is always allowed
    same = client.http.post(
        "/track/?verbose=1",
        content=form([event("v", "self")])["content"],
        headers={**body["headers"], "Origin": "http://testserver"},
    )
    assert same.status_code == 200
    # a read from a foreign origin gets no CORS headers
    get = client.http.get("/healthz", headers={"Origin": "https://evil.example"})
    assert get.status_code == 200 and "access-control-allow-origin" not in get.headers


def test_cors_headers_on_errors_too(client: Collector) -> None:
    r = client.http.post("/track/?verbose=1", content="junk", headers={"Origin": ORIGIN, "Content-Type": "text/plain"})
    assert r.status_code == 400 and r.headers["access-control-allow-origin"] == ORIGIN


def test_plain_options_without_origin(client: Collector) -> None:
    r = client.http.options("/engage")
    assert r.status_code == 204 and "POST" in r.headers["allow"]


# -- static site -------------------------------------------------------------------------------


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "www"
    (root / "sub").mkdir(parents=True)
    files = {
        "index.html": "<!doctype html><title>home</title>",
        "app.js": "console.log(1)",
        "mod.mjs": "export const x = 1",
        "pyodide.asm.wasm": "\0asm",
        "empmix_web-0.1.0-py3-none-any.whl": "PK",
        "data.json": "{}",
        "style.css": "body{}",
        "pyscript.toml": "packages = []",
        "main.py": "print(1)",
        "sub/index.html": "<p>sub</p>",
    }
    for name, text in files.items():
        (root / name).write_text(text)
    (tmp_path / "secret.txt").write_text("do not serve")
    return root


@pytest.mark.parametrize(
    "path,ctype",
    [
        ("/", "text/html"),
        ("/index.html", "text/html"),
        ("/app.js", "text/javascript"),
        ("/mod.mjs", "text/javascript"),
        ("/pyodide.asm.wasm", "application/wasm"),
        ("/empmix_web-0.1.0-py3-none-any.whl", "application/zip"),
        ("/data.json", "application/json"),
        ("/style.css", "text/css"),
        ("/pyscript.toml", "text/plain"),
        ("/main.py", "text/plain"),
        ("/sub/", "text/html"),
    ],
)
def test_site_media_types_and_headers(make_client: Callable[..., Collector], site: Path, path: str, ctype: str) -> None:
    client = make_client(site_dir=str(site))
    r = client.http.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"].split(";")[0] == ctype
    assert r.headers["cache-control"] == "no-cache"
    assert r.headers["cross-origin-opener-policy"] == "same-origin"
    assert r.headers["cross-origin-embedder-policy"] == "require-corp"
    assert r.headers["cross-origin-resource-policy"] == "same-origin"
    assert r.headers["content-security-policy"] == CSP == CONTENT_SECURITY_POLICY


def test_site_404_traversal_and_api_alongside(make_client: Callable[..., Collector], site: Path) -> None:
    client = make_client(site_dir=str(site))
    missing = client.http.get("/nope.js")
    assert missing.status_code == 404 and missing.headers["cross-origin-embedder-policy"] == "require-corp"
    assert client.http.get("/../secret.txt").status_code == 404
    assert client.http.get("/%2e%2e/secret.txt").status_code == 404
    assert client.http.get("/sub", follow_redirects=False).status_code in (301, 307)
    assert client.track([event("v", "u")]).json()["status"] == 1
    assert client.http.get("/healthz").json() == {"ok": True}
    assert client.person("u") is not None
    head = client.http.head("/app.js")
    assert head.status_code == 200 and head.headers["content-type"].startswith("text/javascript")


def test_no_site_means_404_on_root(client: Collector) -> None:
    assert client.http.get("/").status_code == 404


# -- the process -------------------------------------------------------------------------------


def _get(url: str, headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _post(url: str, body: bytes, ctype: str = "application/x-www-form-urlencoded") -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": ctype}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_server_process_announces_itself_and_serves(collector: CollectorProcess) -> None:
    assert collector.url.startswith("http://127.0.0.1:")
    assert _get(collector.url + "/healthz") == {"ok": True}
    status, body = _post(collector.url + "/track/?verbose=1", form([event("v", "proc-user")])["content"].encode())
    assert (status, json.loads(body)) == (200, {"status": 1, "error": None})
    person = _get(collector.url + "/api/persons/proc-user", {"Authorization": "Bearer sec"})
    assert person["distinct_ids"] == ["proc-user"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_server_stops_cleanly_on_signals(start_collector: Callable[..., CollectorProcess], sig: int) -> None:
    proc = start_collector()
    status, _ = _post(proc.url + "/track/?verbose=1", form([event("v", "u")])["content"].encode())
    assert status == 200
    assert proc.stop(sig) == 0, "".join(proc.output)
    assert "Traceback" not in "".join(proc.output)


def test_restart_on_the_same_db_keeps_data(
    start_collector: Callable[..., CollectorProcess], new_db: Callable[[], str]
) -> None:
    db = new_db()
    first = start_collector(db=db)
    _post(first.url + "/track/?verbose=1", form([event("v", "kept")])["content"].encode())
    first.stop()
    second = start_collector(db=db)
    assert _get(second.url + "/api/persons/kept", {"Authorization": "Bearer sec"})["distinct_ids"] == ["kept"]


def test_cli_options_and_errors(tmp_path: Path) -> None:
    help_text = subprocess.run(
        [sys.executable, "-m", "empmix_collector", "--help"], capture_output=True, text=True, timeout=30
    ).stdout
    for option in ("--host", "--port", "--db", "--token", "--secret", "--allow-origin", "--site"):
        assert option in help_text
    missing = subprocess.run(
        [sys.executable, "-m", "empmix_collector", "--db", str(tmp_path / "x.db")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert missing.returncode == 2 and "--token" in missing.stderr
    bad_site = subprocess.run(
        [
            sys.executable,
            "-m",
            "empmix_collector",
            "--db",
            str(tmp_path / "x.db"),
            "--token",
            TOKEN,
            "--site",
            str(tmp_path / "nowhere"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad_site.returncode == 2 and "not a directory" in bad_site.stderr


def test_several_tokens_and_origins_on_the_command_line(start_collector: Callable[..., CollectorProcess]) -> None:
    proc = start_collector("--token", "second", "--allow-origin", ORIGIN, "--allow-origin", "http://localhost:1")
    status, _ = _post(proc.url + "/track/?verbose=1", form([event("v", "u2", token="second")])["content"].encode())
    assert status == 200
    assert _get(proc.url + "/api/persons/u2?token=second", {"Authorization": "Bearer sec"})["distinct_ids"] == ["u2"]


# -- the query API's errors ----------------------------------------------------------------------


def test_query_api_errors_are_answered_in_one_shape(
    make_client: Callable[..., Collector], monkeypatch: pytest.MonkeyPatch
) -> None:
    from empmix_collector.store.base import StoreUnavailable

    client = make_client(allow_origins=(ORIGIN,))

    def reply(path: str, **headers: str) -> tuple[int, dict[str, Any], Any]:
        r = client.http.get(path, headers={"Authorization": "Bearer sec", **headers})
        return r.status_code, r.json(), r.headers

    status, body, headers = reply("/api/funnel")
    assert (status, body) == (400, {"error": "steps=A,B,... is required"})
    assert headers["cache-control"] == "no-store"
    status, body, headers = reply("/api/events", Authorization="Bearer wrong")
    assert (status, body) == (401, {"error": "the query API needs Authorization: Bearer <secret>"})
    assert headers["www-authenticate"] == 'Bearer realm="empmix-collector"'
    assert reply("/api/events?token=nope")[:2] == (404, {"error": "unknown token 'nope'"})
    assert reply("/api/persons/ghost")[:2] == (404, {"error": "no person has distinct_id 'ghost'"})
    assert reply("/api/groups/company/none")[:2] == (404, {"error": "no group 'company' 'none'"})

    async def unavailable(*args: Any) -> None:
        raise StoreUnavailable("disk gone")

    monkeypatch.setattr(client.http.app.state.store, "latest_events", unavailable)  # type: ignore[attr-defined]
    status, body, headers = reply("/api/events", Origin=ORIGIN)
    assert (status, body) == (503, {"error": "store unavailable: disk gone"})
    assert headers["retry-after"] == "1"
    assert headers["access-control-allow-origin"] == ORIGIN  # answered inside the CORS middleware
