"""empmix-web: product-analytics identity for Python in the browser (PyScript: Pyodide or
MicroPython).

    from empmix_web import EmpMix

    EmpMix.init("YOUR_TOKEN")          # sends to the page's own origin by default
    EmpMix.track("Page Viewed")
    EmpMix.alias("usr_abc123")          # once, at sign-up
    EmpMix.identify("usr_abc123")       # at every login
    EmpMix.set_user_properties({"plan": "Pro"})
    EmpMix.increment("logins_count", 1)
    EmpMix.reset()                      # at logout

Public names: ``EmpMix`` (the default client, like the JavaScript global), ``EmpMixClient`` (one
client per project token), ``NotInitializedError``, ``__version__``.
"""

import sys


def _use_bytecode() -> None:
    """MicroPython: run the precompiled modules of the site's MicroPython wheel
    (``tools/mpy_wheel.py``: ``_mpy/*.mpy``) when this MicroPython loads their format. It looks
    for ``X.py`` before ``X.mpy``, so they have a folder of their own, and the package's
    ``__path__`` (a string there) points at it if ``_mpy/_probe.mpy`` imports. A MicroPython of another
    bytecode format raises ValueError on the probe, and the plain wheel (no ``_mpy``)
    ImportError: both keep the sources."""
    package = globals()
    sources = package["__path__"]
    package["__path__"] = sources + "/_mpy"
    try:
        __import__(__name__ + "._probe")
    except (ImportError, ValueError):
        package["__path__"] = sources


def _use_bundle() -> None:
    """CPython: run the modules from the Pyodide wheel's bytecode bundle (``tools/pyc_wheel.py``:
    ``_bytecode.<cache_tag>.bin`` beside this file, this Python's magic number and then one
    marshal dump of ``{"empmix_web.mod": code}``) through a meta-path finder ahead of the
    PathFinder. The plain wheel has no bundle: the sources. Each module's ``__file__`` is where
    its source would be, and its code names that file and the lines (not their text)."""
    folder = __path__[0]
    try:
        with open(folder + "/_bytecode." + sys.implementation.cache_tag + ".bin", "rb") as f:
            data = f.read()
    except OSError:
        return
    import marshal
    from importlib.util import MAGIC_NUMBER

    if data[:4] != MAGIC_NUMBER:
        raise ImportError(__name__ + ": the bytecode bundle is not this Python's; install the plain wheel")
    codes = marshal.loads(memoryview(data)[4:])
    spec = type(__spec__)

    class Bundle:
        bundle_of = __name__

        @staticmethod
        def find_spec(name: str, path: object = None, target: object = None) -> object:
            if name not in codes:
                return None
            found = spec(name, Bundle, origin=folder + "/" + name.rpartition(".")[2] + ".py")  # type: ignore[arg-type]
            found.has_location = True
            return found

        @staticmethod
        def create_module(found: object) -> None:
            return None

        @staticmethod
        def exec_module(module: object) -> None:
            exec(codes[module.__name__], module.__dict__)  # type: ignore[attr-defined]

    meta = [f for f in sys.meta_path if getattr(f, "bundle_of", None) != __name__]  # a re-import's
    at = next((i for i, f in enumerate(meta) if getattr(f, "__name__", "") == "PathFinder"), len(meta))
    sys.meta_path[:] = meta[:at] + [Bundle] + meta[at:]  # type: ignore[assignment]


if sys.implementation.name == "micropython":
    _use_bytecode()
else:
    _use_bundle()

from .client import EmpMixClient, NotInitializedError, __version__  # noqa: E402 (after the bytecode switches)

EmpMix = EmpMixClient()
"""The default client; call ``EmpMix.init(token, ...)`` first."""

__all__ = ["EmpMix", "EmpMixClient", "NotInitializedError", "__version__"]
