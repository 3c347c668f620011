# Run in a page that installed empmix-web from a package index (tests/browser/test_install_index.py):
# the README's sign-up flow, and a TypeError raised inside the installed package.
import sys
import traceback


async def sign_up(token, api_host, user_id):
    from empmix_web import EmpMix

    EmpMix.init(token, api_host=api_host, flush_interval_ms=100)
    EmpMix.track_pageview()
    anon = EmpMix.get_distinct_id()
    EmpMix.alias(user_id)
    EmpMix.identify(user_id)
    EmpMix.track("Signed Up")
    EmpMix.set_user_properties({"plan": "Pro"})
    flushed = await EmpMix.flush(timeout_ms=20000)
    return {"anon": anon, "device": EmpMix.get_device_id(), "flushed": flushed}


def bad_argument():
    """The innermost frame of the TypeError that ``increment(42)`` raises, and its module's text."""
    from empmix_web import EmpMix

    try:
        EmpMix.increment(42)
    except TypeError:
        frame = traceback.extract_tb(sys.exc_info()[2])[-1]
        with open(frame.filename) as module:
            text = module.read()
        return {"file": frame.filename, "line": frame.lineno, "name": frame.name, "code": frame.line, "text": text}
    return None
