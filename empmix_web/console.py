"""The SDK's log lines go to the browser console of the page that initialised the latest client."""

import logging

try:
    from typing import Any

    from .browser import Browser
except ImportError:
    pass

log = logging.getLogger("empmix_web")


class ConsoleHandler(logging.Handler):
    """SDK log lines go to the browser console at their level (warnings are not errors)."""

    def __init__(self, browser: "Browser") -> None:
        super().__init__()
        self.browser = browser

    def emit(self, record: "Any") -> None:
        """Write one log record to the page's console (never raises)."""
        level = "error" if record.levelno >= logging.ERROR else ("warn" if record.levelno >= logging.WARNING else "log")
        try:
            # MicroPython's LogRecord has the formatted text as .message, CPython's getMessage()
            get = getattr(record, "getMessage", None)
            self.browser.console(level, get() if get is not None else str(record.message))
        except Exception:  # logging must never break the page
            pass


def install_console_log(browser: "Browser") -> None:
    """SDK log lines go to the console of the page that initialised the latest client."""
    for handler in log.handlers:
        if isinstance(handler, ConsoleHandler):
            handler.browser = browser
            return
    log.addHandler(ConsoleHandler(browser))
    log.setLevel(logging.INFO)
    log.propagate = False
