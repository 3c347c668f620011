"""The toy wheel the wheel-rewriting tools are tested on (``tools/pyc_wheel.py``,
``tools/mpy_wheel.py``): a package ``pkg`` 1.0 of the given sources, ``py.typed``, and the
``.dist-info`` files a built wheel has (``RECORD`` empty: the tools write their own)."""

from __future__ import annotations

import zipfile
from pathlib import Path

METADATA = b"Metadata-Version: 2.4\nName: pkg\nVersion: 1.0\n"
WHEEL = b"Wheel-Version: 1.0\nTag: py3-none-any\n"


def toy_wheel(folder: Path, sources: dict[str, bytes]) -> Path:
    """``folder/pkg-1.0-py3-none-any.whl`` holding ``sources`` ({path in the wheel: text})."""
    path = folder / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in sources.items():
            z.writestr(name, data)
        z.writestr("pkg/py.typed", b"")
        z.writestr("pkg-1.0.dist-info/METADATA", METADATA)
        z.writestr("pkg-1.0.dist-info/WHEEL", WHEEL)
        z.writestr("pkg-1.0.dist-info/RECORD", b"")
    return path
