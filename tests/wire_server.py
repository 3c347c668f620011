"""A test server that serves the built site and records what crosses the wire.

It stands in for the collector where a test asserts on the exact requests the SDK makes: every
POST to ``/track`` or ``/engage`` is decoded (form ``data=`` holding JSON or base64 JSON) and
kept with its method, path, query, headers and records. Replies look like the collector's
verbose reply. Pages under ``/test/`` come from ``tests/pages``; everything else from
``build/www``.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from functools import partial
from html import escape
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
WWW = ROOT / "build" / "www"
PAGES = Path(__file__).resolve().parent / "pages"
MIME = {".wasm": "application/wasm", ".mjs": "text/javascript", ".js": "text/javascript",
        ".json": "application/json", ".whl": "application/zip", ".zip": "application/zip"}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    records: list[dict[str, Any]] = field(default_factory=list)


def decode_records(body: bytes, content_type: str) -> list[dict[str, Any]]:
    text = body.decode()
    if "json" in content_type:
        data = json.loads(text)
    else:
        (payload,) = parse_qs(text)["data"]
        try:
            data = json.loads(payload)
        except ValueError:
            data = json.loads(base64.b64decode(payload))
    return data if isinstance(data, list) else [data]


class Wire:
    """What the server received; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: list[Request] = []

    def add(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def for_token(self, token: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests
                    if any(rec.get("properties", rec).get("token", rec.get("$token")) == token
                           for rec in r.records)]

    def events(self, token: str) -> list[dict[str, Any]]:
        return [rec for r in self.for_token(token) for rec in r.records
                if "event" in rec and rec["properties"].get("token") == token]

    def profiles(self, token: str) -> list[dict[str, Any]]:
        return [rec for r in self.for_token(token) for rec in r.records
                if rec.get("$token") == token and "$distinct_id" in rec]

    def groups(self, token: str) -> list[dict[str, Any]]:
        return [rec for r in self.for_token(token) for rec in r.records
                if rec.get("$token") == token and "$group_key" in rec]


class Handler(SimpleHTTPRequestHandler):
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, **MIME}
    wire: Wire

    def translate_path(self, path: str) -> str:
        parts = urlsplit(path).path
        if parts.startswith("/test/"):
            return str(PAGES / parts[len("/test/"):])
        return super().translate_path(path)

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        if self.command in ("POST", "OPTIONS"):  # a cross-origin page may post here too
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Access-Control-Expose-Headers", "Retry-After")
        super().end_headers()

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        page = url.path
        name, _, interp = page[len("/test/"):-len(".html")].rpartition("-")
        if page.startswith("/test/") and page.endswith(".html") and interp in INTERPRETER_URLS:
            self._send_page(with_query(render_page(name, interp), url.query))
        elif page.startswith("/test/stalled/"):
            self._stall()
        elif page.startswith("/test/") and page.endswith(".template.html"):
            self._send_page(with_query((PAGES / page[len("/test/"):]).read_text(), url.query))
        else:
            super().do_GET()

    def _stall(self) -> None:
        """A request under ``/test/stalled/`` is never answered (a script that takes forever to
        arrive), until the browser gives up on it or a minute has passed."""
        import select
        import time

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            readable, _, _ = select.select([self.connection], [], [], 0.1)
            if readable and not self.connection.recv(1, 2):  # MSG_PEEK: b"" once the peer closed
                return
        self.send_error(504)

    def _send_page(self, html: str) -> None:
        data = html.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self) -> None:
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        request = Request(self.command, url.path, parse_qs(url.query), dict(self.headers.items()))
        if self.command == "POST" and (body.startswith(b"data=") or body.startswith(b"[")):
            request.records = decode_records(body, self.headers.get("Content-Type", ""))  # any route
        self.wire.add(request)
        reply = json.dumps({"status": 1, "error": None}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_POST = _record
    do_OPTIONS = _record  # recorded so a test can assert that no preflight was ever made

    def log_message(self, *args: Any) -> None:
        pass


INTERPRETER_URLS = {"py": "/pyodide/pyodide.mjs", "mpy": "/micropython/micropython.mjs"}


def wheel_url(key: str = "wheel") -> str:
    """The current wheel's URL; ``key="pyodide_wheel"`` / ``"micropython_wheel"``: the one with
    bytecode for this Pyodide / this MicroPython."""
    return str(json.loads((WWW / "dist" / "empmix_web-latest.json").read_text())[key])


def with_query(html: str, query: str) -> str:
    """``{{Q:name}}`` in a test page: the query parameter ``name``, HTML-escaped (empty if absent),
    so one template serves every token and boot-script configuration a test needs."""
    params = {key: values[0] for key, values in parse_qs(query, keep_blank_values=True).items()}
    while "{{Q:" in html:
        start = html.index("{{Q:")
        end = html.index("}}", start)
        html = html[:start] + escape(params.get(html[start + 4:end], ""), quote=True) + html[end + 2:]
    return html


def render_page(name: str, interp: str) -> str:
    """``/test/<name>-py.html`` / ``/test/<name>-mpy.html``: ``tests/pages/<name>.template.html``
    under one interpreter, with the current wheel."""
    template = (PAGES / f"{name}.template.html").read_text()
    wheel = wheel_url()
    # {{LOAD}}: the SDK pages unzip the wheel with "files" under Pyodide (3-4 s faster than
    # micropip, which the documentation-flow page and the site still use), the wheel with
    # bytecode for this Pyodide; under MicroPython they install the wheel with .mpy bytecode for
    # this MicroPython with "packages" (the documented form; PyScript unzips it itself).
    # {{WHEEL}} (the documentation-flow page) is the plain wheel under both: one page per
    # interpreter still runs the SDK from its sources.
    runner = '"/test/page_runner.py": "./page_runner.py"'
    load = (f'"files": {{"{wheel_url("pyodide_wheel")}": "./*", {runner}}}' if interp == "py"
            else f'"packages": ["{wheel_url("micropython_wheel")}"], "files": {{{runner}}}')
    return (template.replace("{{TYPE}}", interp).replace("{{INTERPRETER}}", INTERPRETER_URLS[interp])
            .replace("{{LOAD}}", load).replace("{{WHEEL}}", wheel))


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


def start(wire: Wire) -> Server:
    handler = type("BoundHandler", (Handler,), {"wire": wire})
    server = Server(("127.0.0.1", 0), partial(handler, directory=str(WWW)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
