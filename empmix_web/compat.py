"""What differs between CPython (Pyodide) and MicroPython outside the JS bridge.

The rest of the package is written in the subset both run (``tests/unit/test_micropython.py``
enforces it): no ``{**a}``, no dataclasses, ``typing`` only behind ``try``, ``json`` with
``separators`` only, no ``re``, no 64-bit integers across the FFI.
"""

import json
import sys

try:
    from typing import Any
except ImportError:
    pass

MICROPYTHON = sys.implementation.name == "micropython"
MAX_DEPTH = 24  # nesting accepted in stored JSON: deeper values are hostile, not ours

if MICROPYTHON:

    def dumps(o: "Any") -> str:
        """Compact JSON (MicroPython writes non-ASCII raw, like CPython with ensure_ascii=False)."""
        return json.dumps(o, separators=(",", ":"))

else:
    _encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    dumps = _encoder.encode
    try:  # the C encoder JSONEncoder.encode builds on every call (µs in wasm), built once
        from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]

        def _make_encoder() -> "Any":
            return c_make_encoder({}, _encoder.default, encode_basestring, None, ":", ",", False, False, False)

        _c_encoder = [_make_encoder()]

        def _c_dumps(o: "Any") -> str:
            if type(o) is str:
                return encode_basestring(o)
            try:
                return "".join(_c_encoder[0](o, 0))
            except BaseException:
                _c_encoder[0] = _make_encoder()  # a failed call can leave circular-reference marks
                raise

        if _c_dumps({"a": [1.5, None, True, "\u00e9"]}) == _encoder.encode({"a": [1.5, None, True, "\u00e9"]}):
            dumps = _c_dumps
    except Exception:  # no C accelerator, or another signature: the encoder's own path
        pass

# MicroPython's json.dumps accepts NaN and non-str keys, so values are always checked first there.
CHECK_BEFORE_DUMPS = MICROPYTHON


def _not_json(name: str) -> "Any":
    raise ValueError("not JSON: " + name)


# CPython's json.loads reads NaN and Infinity, which JSON.parse (the boot script) and MicroPython refuse
_loads = json.loads if MICROPYTHON else json.JSONDecoder(parse_constant=_not_json).decode


def nesting(text: str) -> int:
    """The deepest ``[``/``{`` nesting of JSON text (strings skipped); cheap for flat values."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:  # C-speed: cannot be deeper than this
        return 0
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "[" or ch == "{":
            depth += 1
            if depth > deepest:
                deepest = depth
        elif ch == "]" or ch == "}":
            depth -= 1
    return deepest


def loads_bounded(text: object, max_length: int) -> object:
    """Parse stored JSON text, or None when it is not text, too long, too deep or malformed.

    Every value read from storage or cookies goes through here: a sibling subdomain can set
    the cookie to anything, and CPython's recursive parser overflows the browser's stack on
    thousands of ``[`` (a fatal error for the whole interpreter, not an exception).
    """
    if not isinstance(text, str) or len(text) > max_length or nesting(text) > MAX_DEPTH:
        return None
    try:
        return _loads(text)
    except Exception:  # ValueError on both; anything else from hostile input is data too
        return None


def spawn(coro: "Any") -> "Any":
    """Start ``coro`` as a task on the running loop (the browser's, in Pyodide and MicroPython),
    also from synchronous code such as an event handler."""
    import asyncio

    try:
        loop = asyncio.get_running_loop()
    except (RuntimeError, AttributeError):  # AttributeError: MicroPython has no get_running_loop
        loop = asyncio.get_event_loop()
    return loop.create_task(coro)


async def wait_event(event: "Any", seconds: "float | None") -> bool:
    """True once ``event`` is set, False after ``seconds`` (None: no limit).

    Not ``asyncio.wait_for``: CPython 3.11's can swallow a cancellation that races the event
    (the task then never stops), and MicroPython's cancels the calling task, which fails when
    that is PyScript's top level. Two small tasks race instead; both are cancelled after."""
    import asyncio

    if event.is_set():
        return True
    if seconds is None:
        await event.wait()
        return True
    done = asyncio.Event()

    async def watch() -> None:
        await event.wait()
        done.set()

    async def ring() -> None:
        await asyncio.sleep(max(0.0, seconds))
        done.set()

    watcher, timer = spawn(watch()), spawn(ring())
    try:
        await done.wait()
    finally:
        watcher.cancel()
        timer.cancel()
    return bool(event.is_set())
