"""Issue 12: empmix-web installs by name from a package index, in Chromium, and works.

A local index serves the built wheel (``build/www/dist``) on the pages' own origin: ``/simple/``
answers PEP 691 JSON or PEP 503 HTML by the ``Accept`` header, as PyPI does; ``/static-index/``
is plain PEP 503 HTML whatever is asked, as a static file host serves it. A fresh Pyodide page
runs ``micropip.install("empmix-web", index_urls=[...])``, a PyScript page names the package in
its config (``"packages"`` and ``"index_urls"``); each then runs the README's sign-up flow
against a real collector, and raises a TypeError inside the installed package, whose traceback
must name the repository's file and line. The same traceback is checked under MicroPython, which
unzips the wheel itself (the SDK test pages).
"""

from __future__ import annotations

import ast
import hashlib
import html
import json
import re
import threading
import uuid
from collections.abc import Iterator
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests import wire_server
from tests.browser.conftest import Py
from tests.collector_process import CollectorProcess, launch_collector
from tests.conftest import PAGE_READY_MS, ROOT
from tests.harness import PageError
from tools.backend.empmix_backend import strip_source

TOKEN = "install_test"
PROJECT = "empmix-web"  # the PEP 503 normalised name: what micropip asks for
JSON_TYPE = "application/vnd.pypi.simple.v1+json"


class Index:
    """The wheel the index serves, and the requests it saw."""

    def __init__(self) -> None:
        self.wheel = wire_server.WWW / wire_server.wheel_url().lstrip("/")
        self.data = self.wheel.read_bytes()
        self.sha256 = hashlib.sha256(self.data).hexdigest()
        self.seen: list[tuple[str, str]] = []  # (path, Accept)
        self.lock = threading.Lock()
        self.url = ""

    def paths(self) -> list[str]:
        with self.lock:
            return [path for path, _ in self.seen]

    def project_json(self) -> bytes:
        # an absolute file URL, as PyPI gives: micropip 0.11.1 leaves a relative one in a JSON
        # reply unresolved (it resolves HTML hrefs only) and then refuses to download it
        file = {
            "filename": self.wheel.name,
            "url": f"{self.url}/files/{self.wheel.name}",
            "hashes": {"sha256": self.sha256},
            "requires-python": ">=3.11",
            "size": len(self.data),
        }
        body = {"meta": {"api-version": "1.1"}, "name": PROJECT, "versions": [self.version()], "files": [file]}
        return json.dumps(body).encode()

    def project_html(self) -> bytes:
        href = f"../../files/{self.wheel.name}#sha256={self.sha256}"  # relative to this page, as PEP 503 allows
        return (
            f'<!DOCTYPE html><html><body><a href="{href}" data-requires-python="{html.escape(">=3.11")}">'
            f"{self.wheel.name}</a></body></html>"
        ).encode()

    def version(self) -> str:
        return self.wheel.name.split("-")[1]


class IndexHandler(wire_server.Handler):
    index: Index

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path.startswith(("/simple/", "/static-index/", "/files/")):
            with self.index.lock:
                self.index.seen.append((path, self.headers.get("Accept", "")))
        if path in (f"/simple/{PROJECT}/", f"/static-index/{PROJECT}/"):
            if path.startswith("/simple/") and JSON_TYPE in self.headers.get("Accept", ""):
                self._reply(self.index.project_json(), JSON_TYPE)
            else:
                self._reply(self.index.project_html(), "text/html; charset=utf-8")
        elif path == "/test/install_pyscript.html":  # micropip downloads from absolute URLs only
            page = (wire_server.PAGES / "install_pyscript.html").read_text()
            self._reply(page.replace("{{INDEX}}", self.index.url + "/static-index").encode(), "text/html")
        elif path == f"/files/{self.index.wheel.name}":
            self._reply(self.index.data, "application/octet-stream")
        elif path.startswith(("/simple/", "/static-index/", "/files/")):
            self.send_error(404)
        else:
            super().do_GET()

    def _reply(self, data: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def index() -> Iterator[Index]:
    found = Index()
    handler = type("BoundIndexHandler", (IndexHandler,), {"wire": wire_server.Wire(), "index": found})
    server = wire_server.Server(("127.0.0.1", 0), partial(handler, directory=str(wire_server.WWW)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    found.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield found
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    server = launch_collector(tmp_path_factory.mktemp("install") / "events.db", tokens=[TOKEN])
    yield server
    server.stop()


@pytest.fixture
def context(browser: Any, index: Index) -> Iterator[Any]:
    ctx = browser.new_context(base_url=index.url)
    yield ctx
    ctx.close()


def raise_site(module: str, function: str) -> tuple[int, str]:
    """The line number and text of the one ``raise TypeError`` in ``function`` of the repository's
    ``empmix_web/<module>``."""
    source = (ROOT / "empmix_web" / module).read_text()
    (func,) = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef) and n.name == function]
    (node,) = [n for n in ast.walk(func) if isinstance(n, ast.Raise)]
    return node.lineno, source.splitlines()[node.lineno - 1].strip()


def assert_stored(collector: CollectorProcess, user_id: str, flow: dict[str, Any]) -> None:
    """What the collector holds after the sign-up flow: the person, linked to the device."""
    assert flow["flushed"] is True
    assert flow["anon"] == "$device:" + flow["device"]
    person = collector.person(user_id, TOKEN)
    assert person is not None and person["identified"]
    assert {user_id, flow["anon"]} <= set(person["distinct_ids"])
    assert person["properties"]["plan"] == "Pro"
    events = [(e["event"], e["distinct_id"]) for e in collector.events_of(user_id, TOKEN)]
    assert ("$mp_web_page_view", flow["anon"]) in events
    assert ("Signed Up", user_id) in events
    assert collector.events_of(flow["anon"], TOKEN) == collector.events_of(user_id, TOKEN)  # one person


def assert_traceback(frame: dict[str, Any]) -> None:
    """The frame names the repository's file and line, and the installed file is the stripped one."""
    line, code = raise_site("client.py", "increment")
    assert frame["file"].endswith("/site-packages/empmix_web/client.py")
    assert (frame["name"], frame["line"], frame["code"]) == ("increment", line, code)
    assert frame["text"] == strip_source((ROOT / "empmix_web" / "client.py").read_text())


def test_micropip_installs_from_a_json_index(context: Any, index: Index, collector: CollectorProcess) -> None:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/test/install_index.html")
    page.wait_for_function("window.pyodideReady === true", timeout=PAGE_READY_MS)
    before = len(index.paths())
    user_id = "usr_" + uuid.uuid4().hex[:10]
    code = f"""
import json, importlib.metadata, micropip
await micropip.install("empmix-web", index_urls=[{index.url + "/simple"!r}])
import install_flow
result = await install_flow.sign_up({TOKEN!r}, {collector.url!r}, {user_id!r})
result["traceback"] = install_flow.bad_argument()
result["version"] = importlib.metadata.version("empmix-web")
json.dumps(result)
"""
    flow = json.loads(page.evaluate("code => window.pyodide.runPythonAsync(code)", code))
    wheel_path = f"/files/{index.wheel.name}"
    assert index.paths()[before:] == [f"/simple/{PROJECT}/", wheel_path]
    assert JSON_TYPE in index.seen[before][1]  # micropip asked for PEP 691 JSON, and got it
    assert flow["version"] == index.version()
    assert_stored(collector, user_id, flow)
    assert_traceback(flow["traceback"])
    assert errors == []


def test_pyscript_installs_by_name_from_the_config_index(
    context: Any, index: Index, collector: CollectorProcess
) -> None:
    user_id = "usr_" + uuid.uuid4().hex[:10]
    context.add_init_script(
        f"window.testToken = {TOKEN!r}; window.apiHost = {collector.url!r}; window.userId = {user_id!r};"
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    before = len(index.paths())
    page.goto("/test/install_pyscript.html")
    try:
        page.wait_for_function("window.installResult !== undefined", timeout=PAGE_READY_MS)
    except Exception as exc:
        raise AssertionError(f"the PyScript page did not finish: {errors}") from exc
    flow = json.loads(page.evaluate("window.installResult"))
    assert index.paths()[before:] == [f"/static-index/{PROJECT}/", f"/files/{index.wheel.name}"]
    assert_stored(collector, user_id, flow)
    assert_traceback(flow["traceback"])
    assert errors == []


def test_wheel_tracebacks_name_the_source_line(py: Py) -> None:
    """Both interpreters, on the SDK test pages (the wheel from ``build/www/dist``)."""
    line, _ = raise_site("client.py", "increment")
    with pytest.raises(PageError) as raised:
        py.run("EmpMixClient().increment(42)")
    frames = re.findall(r'File "([^"]*)", line (\d+), in (\w+)', str(raised.value))
    assert frames[-1][0].endswith("empmix_web/client.py")
    assert frames[-1][1:] == (str(line), "increment")
