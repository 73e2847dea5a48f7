"""Text forms of file names and foreign strings that every catalog column can store.

POSIX file names are bytes; the catalog's text columns (SQLite and PostgreSQL) take neither the
lone surrogates that Python uses for undecodable bytes nor NUL. So a path becomes a *locator*:

* a path whose bytes are valid UTF-8 and hold no backslash is its own text, unchanged (so every
  locator stored before this escaping existed still matches on a rerun);
* any other path is written with each backslash doubled (``\\\\``) and each byte that is not
  part of valid UTF-8 as ``\\xNN`` (two lower-case hex digits), e.g. ``b"caf\\xe9.jpg"`` becomes
  ``caf\\xe9.jpg``.

An escaped locator always holds a backslash and an unescaped one never does, so the mapping is
lossless: :func:`locator_bytes` gives back the exact bytes of the path.
"""

from __future__ import annotations

import os
import re
from pathlib import PurePath

__all__ = ["path_locator", "locator_bytes", "storable_text", "display_text"]

_ESCAPE = re.compile(r"\\(\\|x[0-9a-f]{2})")


def path_locator(path: PurePath | str | bytes) -> str:
    """The lossless, storable text form of a file path (see the module docstring)."""
    raw = os.fsencode(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and "\\" not in text:
        return text
    out = []
    for ch in raw.decode("utf-8", "surrogateescape"):
        if ch == "\\":
            out.append("\\\\")
        elif 0xDC80 <= ord(ch) <= 0xDCFF:  # surrogateescape's stand-in for one raw byte
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        else:
            out.append(ch)
    return "".join(out)


def locator_bytes(locator: str) -> bytes:
    """The exact path bytes that :func:`path_locator` turned into ``locator``.

    Raises ValueError for text that no path can have produced (a stray backslash).
    """
    if "\\" not in locator:
        return locator.encode("utf-8")
    out = bytearray()
    pos = 0
    for match in _ESCAPE.finditer(locator):
        plain = locator[pos : match.start()]
        if "\\" in plain:
            raise ValueError(f"{locator!r} has a backslash that is not an escape")
        out += plain.encode("utf-8")
        code = match.group(1)
        out += b"\\" if code == "\\" else bytes([int(code[1:], 16)])
        pos = match.end()
    rest = locator[pos:]
    if "\\" in rest:
        raise ValueError(f"{locator!r} has a backslash that is not an escape")
    out += rest.encode("utf-8")
    return bytes(out)


def storable_text(text: str) -> str:
    """``text`` with NUL and lone surrogates escaped, so a database text column accepts it."""
    if "\x00" not in text and not any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        return text
    return "".join(ascii(c)[1:-1] if c == "\x00" or 0xD800 <= ord(c) <= 0xDFFF else c for c in text)


def display_text(text: str) -> str:
    """``text`` with every character that is not printable escaped (controls, line separators,
    unassigned code points), so that it shows on one terminal line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
