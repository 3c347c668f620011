"""Every name this SDK stores under, in one table: localStorage keys and the cookie, per token.

``key(token, NAME)`` is ``empmix_<token>_<NAME>``; the names ending in ``_`` are prefixes (one key
per record or per tab). The boot script (``boot.js``) reads and writes the same names.
"""

PREFIX = "empmix_"
PROBE = PREFIX + "probe"  # written, read back and removed: is localStorage (or a cookie domain) usable?

IDENTITY = "identity"  # the identity (identity.py); also in the cookie named cookie_name(token)
CONSENT = "consent"  # the opt-in/opt-out choice (consent.py)
PROPS = "props"  # super properties (properties.py)
PEOPLE = "people"  # profile operations held while anonymous (people.py)
TIMERS = "timers"  # time_event() starts (timers.py)
SESSION = "session"  # the origin's session (sessions.py)
QUEUE = "q_"  # + <tab>_<seq><kind letter>: one queued record (queue.py)
TAB_LOCK = "tab_"  # + <tab>: the Web Lock a live tab holds (tabs.py)
ALIVE = "alive_"  # + <tab>: a tab's heartbeat where there are no Web Locks (tabs.py)

NAMES = (IDENTITY, CONSENT, PROPS, PEOPLE, TIMERS, SESSION, QUEUE, TAB_LOCK, ALIVE)


def key(token: str, name: str) -> str:
    """The localStorage key (or key prefix) ``name`` of one of ``NAMES`` has for ``token``."""
    return PREFIX + token + "_" + name


def cookie_name(token: str) -> str:
    """The first-party identity cookie of ``token``: ``empmix_<token>``."""
    return PREFIX + token
