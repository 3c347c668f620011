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


if sys.implementation.name == "micropython":
    _use_bytecode()

from .client import EmpMixClient, NotInitializedError, __version__  # noqa: E402 (after the bytecode switch)

EmpMix = EmpMixClient()
"""The default client; call ``EmpMix.init(token, ...)`` first."""

__all__ = ["EmpMix", "EmpMixClient", "NotInitializedError", "__version__"]
