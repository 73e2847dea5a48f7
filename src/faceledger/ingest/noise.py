"""Capture what decoders print (to file descriptor 2, ``sys.stderr`` or as Python warnings).

C libraries such as libtiff write messages like "Fax4Decode: Bad code word" straight to file
descriptor 2, under any Python-level redirection; Pillow and warcio warn through ``warnings``,
``logging`` and ``sys.stderr``. :func:`captured_noise` catches all of them for one item, so the
message travels with that item instead of scrolling past on the terminal.

File descriptor 2 belongs to the whole process, so captures take one lock: two threads never
swap it at once. Output that another thread writes while a capture is open lands in that
capture; decoding threads should therefore all decode through it.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator

__all__ = ["captured_noise", "MAX_NOISE_LINES"]

#: At most this many lines are kept per capture (a broken file can print thousands).
MAX_NOISE_LINES = 20
_MAX_LINE = 300
_MAX_READ = 64 * 1024

_lock = threading.Lock()


def _new_lock_in_child() -> None:
    # A fork taken while another thread held the lock would leave the child locked forever.
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_new_lock_in_child)


def _scratch_fd() -> int:
    if hasattr(os, "memfd_create"):  # no file system round trip (Linux)
        return os.memfd_create("faceledger-noise", os.MFD_CLOEXEC)
    with tempfile.TemporaryFile() as handle:
        return os.dup(handle.fileno())


def _flush() -> None:
    for stream in (sys.stderr, sys.__stderr__):
        with contextlib.suppress(Exception):
            if stream is not None:
                stream.flush()


@contextlib.contextmanager
def captured_noise() -> Iterator[list[str]]:
    """Collect fd-2 output, ``sys.stderr`` writes and warnings made inside the block.

    Yields a list that is filled when the block ends (also when it raises): one string per
    message, warnings as ``"UserWarning: text"``, at most MAX_NOISE_LINES of them.
    """
    lines: list[str] = []
    with _lock:
        _flush()
        scratch = _scratch_fd()
        try:
            saved: int | None = os.dup(2)
        except OSError:  # no fd 2 at all (a daemon): capture anyway, close it after
            saved = None
        text = io.StringIO()
        os.dup2(scratch, 2)
        try:
            with (
                warnings.catch_warnings(record=True) as caught,
                contextlib.redirect_stderr(text),
            ):
                warnings.simplefilter("always")
                yield lines
        finally:
            _flush()
            if saved is None:
                os.close(2)
            else:
                os.dup2(saved, 2)
                os.close(saved)
            os.lseek(scratch, 0, os.SEEK_SET)
            raw = os.read(scratch, _MAX_READ)
            os.close(scratch)
            found = [f"{w.category.__name__}: {w.message}" for w in caught]
            found += text.getvalue().splitlines()
            found += raw.decode("utf-8", "backslashreplace").splitlines()
            lines.extend(_tidy(found))


def _tidy(found: list[str]) -> list[str]:
    unique = dict.fromkeys(" ".join(line.split())[:_MAX_LINE] for line in found)
    seen = [line for line in unique if line]
    if len(seen) > MAX_NOISE_LINES:
        seen = seen[: MAX_NOISE_LINES - 1] + [f"... and {len(seen) - MAX_NOISE_LINES + 1} more"]
    return seen
