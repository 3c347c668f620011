"""Write a new wheel from a built one: the steps ``tools/pyc_wheel.py`` (the Pyodide wheel) and
``tools/mpy_wheel.py`` (the MicroPython wheel) share.

The caller reads the built wheel and yields the new wheel's entries in order; :func:`write`
deflates each at level 9 (unless its ``ZipInfo`` says ``ZIP_STORED``), lists each in a new
``RECORD`` (written last, under the built wheel's ``RECORD`` entry), and writes it all to
``target.part`` first, renamed to ``target`` at the end: a page loading the wheel never sees
half of one.

    with zipfile.ZipFile(built) as wheel:
        write(wheel, target, ((info, wheel.read(info)) for info in wheel.infolist() if keep(info)))
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from collections.abc import Iterable
from pathlib import Path


def record_info(wheel: zipfile.ZipFile) -> zipfile.ZipInfo:
    """The wheel's ``*.dist-info/RECORD`` entry."""
    return next(i for i in wheel.infolist() if i.filename.endswith(".dist-info/RECORD"))


def record_line(name: str, data: bytes) -> str:
    """``RECORD``'s line for one file: its name, sha256 (urlsafe base64, unpadded) and size."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def entry(name: str, like: zipfile.ZipInfo, compress_type: int = zipfile.ZIP_DEFLATED) -> zipfile.ZipInfo:
    """A new entry ``name`` with the date and file mode of ``like`` (an entry of the built wheel)."""
    info = zipfile.ZipInfo(name, like.date_time)
    info.external_attr = like.external_attr
    info.compress_type = compress_type
    return info


def write(wheel: zipfile.ZipFile, target: Path, entries: Iterable[tuple[zipfile.ZipInfo, bytes]]) -> None:
    """``target``: ``entries`` (the built wheel's own ``RECORD`` among them is skipped), then a
    ``RECORD`` that lists them."""
    record = record_info(wheel)
    lines: list[str] = []
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    try:
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as out:
            for info, data in entries:
                if info.filename == record.filename:
                    continue
                out.writestr(info, data, compress_type=info.compress_type, compresslevel=9)
                lines.append(record_line(info.filename, data))
            lines.append(f"{record.filename},,")
            out.writestr(record, "\n".join(lines) + "\n", compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
