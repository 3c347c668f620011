"""Write the app's page variants next to ``index.html``: one markup, four pages.

``site/index.html`` (Pyodide, main thread) is the only source; this writes ``worker.html``
(Pyodide in a worker), ``mpy.html`` (MicroPython) and ``mpy-worker.html`` (MicroPython in a
worker) into the same folder, differing only in the script tag, the runtime label, the title and
the current navigation link. ``./build.sh setup`` runs it on ``build/www``.

    python tools/site_pages.py build/www
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WHEEL = re.compile(r"empmix_web-[^/\"]+-py3-none-any\.whl")

SCRIPT = '<script type="py" src="/app.py" config="/app.toml"></script>'
VARIANTS = {
    # page: (script tag, runtime label, title suffix)
    "worker.html": ('<script type="py" worker src="/app.py" config="/app.toml"></script>',
                    "Python in a worker (loading)", " (worker)"),
    "mpy.html": ('<script type="mpy" src="/app.py" config="/app-mpy.toml"></script>',
                 "MicroPython on the main thread (loading)", " (MicroPython)"),
    "mpy-worker.html": ('<script type="mpy" worker src="/app.py" config="/app-mpy.toml"></script>',
                        "MicroPython in a worker (loading)", " (MicroPython, worker)"),
}
WORKER_NOTE = ("<!-- the same app.py, run by PyScript in a web worker; the page must be cross-origin "
               "isolated\n       (COOP/COEP) for the worker to reach this page's window, document and "
               "localStorage -->\n  ")


def variant(index: str, page: str) -> str:
    script, runtime, suffix = VARIANTS[page]
    for needle in (SCRIPT, '<a href="/" aria-current="page">App</a>', "Python on the main thread",
                   "<title>Acme Notes"):
        if needle not in index:
            raise SystemExit(f"site_pages: {needle!r} is not in index.html any more")
    html = index.replace(SCRIPT, (WORKER_NOTE if "worker" in script else "") + script)
    html = html.replace('<a href="/" aria-current="page">App</a>', '<a href="/">App</a>')
    html = html.replace(f'<a href="/{page}">', f'<a href="/{page}" aria-current="page">')
    html = html.replace('id="runtime">Python on the main thread<', f'id="runtime">{runtime}<')
    return html.replace("<title>Acme Notes", f"<title>Acme Notes{suffix}", 1)


def version() -> str:
    """``empmix_web/version.py``'s VERSION (the one source of the version), read as text."""
    text = (ROOT / "empmix_web" / "version.py").read_text()
    return text.split('VERSION = "', 1)[1].split('"', 1)[0]


def pin_wheel(root: Path) -> None:
    """Point the configs' ``packages`` at the wheel of this version (the configs in site/ may
    name an older one)."""
    wheel = f"empmix_web-{version()}-py3-none-any.whl"
    for name in ("app.toml", "app-mpy.toml", "dashboard.toml"):
        path = root / name
        path.write_text(WHEEL.sub(wheel, path.read_text()))


def main(folder: str) -> None:
    root = Path(folder)
    pin_wheel(root)
    index = (root / "index.html").read_text()
    for page in VARIANTS:
        (root / page).write_text(variant(index, page))


if __name__ == "__main__":
    main(sys.argv[1])
