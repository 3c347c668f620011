"""The collector's version and its pin on the SDK: both are ``empmix_web/version.py``'s ``VERSION``.

The collector and the SDK are released together from one checkout, so the collector takes the
SDK's version (one source, read here without importing the SDK) and requires exactly that SDK,
whose id rules it imports. Built from its sdist (no checkout around it), it reads them back from
the sdist's own ``PKG-INFO``. Everything else is in ``pyproject.toml``.
"""

import ast
from email.parser import Parser
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent
SDK_VERSION_FILE = HERE.parent / "empmix_web" / "version.py"
# the runtime dependencies besides the SDK (pyproject.toml declares them dynamic: they are here)
REQUIRES = [
    "starlette>=0.40",
    "uvicorn>=0.30",
    # uvicorn picks these up by itself: a C HTTP parser and event loop, about twice the
    # requests/s of the pure-Python defaults (see docs/performance.md)
    "httptools>=0.6",
    "uvloop>=0.19; sys_platform != 'win32' and platform_python_implementation == 'CPython'",
    # JSON on the hot path (decode bodies, encode stored properties and replies) in C
    "orjson>=3.9",
]


def sdk_version() -> str:
    """``VERSION`` from the checkout's ``empmix_web/version.py``, else from this sdist's PKG-INFO."""
    if SDK_VERSION_FILE.exists():
        for node in ast.parse(SDK_VERSION_FILE.read_text()).body:
            if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["VERSION"]:
                return str(ast.literal_eval(node.value))
        raise SystemExit(f"{SDK_VERSION_FILE} defines no VERSION")
    pkg_info = HERE / "PKG-INFO"
    if pkg_info.exists():
        return str(Parser().parsestr(pkg_info.read_text())["Version"])
    raise SystemExit(f"build the collector from a checkout of empmix-web (no {SDK_VERSION_FILE})")


VERSION = sdk_version()
# the SDK's id rules (empmix_web.ids) are the collector's: exactly the SDK of the same release
setup(version=VERSION, install_requires=["empmix-web==" + VERSION, *REQUIRES])
