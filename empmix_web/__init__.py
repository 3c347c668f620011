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

from .client import EmpMixClient, NotInitializedError, __version__

EmpMix = EmpMixClient()
"""The default client; call ``EmpMix.init(token, ...)`` first."""

__all__ = ["EmpMix", "EmpMixClient", "NotInitializedError", "__version__"]
