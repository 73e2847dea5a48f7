"""File helpers every package may use: atomic writes and an inter-process file lock."""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from faceledger.faults import crash_point

__all__ = ["atomic_write", "file_lock"]


def atomic_write(
    path: Path, data: bytes | Iterable[bytes | memoryview], crash_point_name: str | None = None
) -> None:
    """Write ``data`` (bytes, or buffers written one after another, so a large file need not
    be joined in memory first) to ``path`` so that a crash leaves either the old or the new
    file.

    ``crash_point_name`` names a :func:`faceledger.faults.crash_point` between the write of the
    temporary file and its rename (for the crash tests).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            for part in [data] if isinstance(data, bytes) else data:
                out.write(part)
            out.flush()
            os.fsync(out.fileno())
        if crash_point_name:
            crash_point(crash_point_name)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) across processes and threads.

    flock locks belong to an open file description, so two threads of one process that each
    open the file exclude each other too.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
