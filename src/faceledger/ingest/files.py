"""Read one regular file with a size limit; FIFOs, devices and sockets are refused, never opened."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from faceledger.errors import ImageTooLargeError, InputError

__all__ = ["read_regular_file", "file_kind", "check_regular"]

_CHUNK = 1 << 20


def file_kind(mode: int) -> str:
    """A short name for the kind of file ``mode`` (from ``os.stat``) describes."""
    kinds = (
        (stat.S_ISREG, "regular file"),
        (stat.S_ISDIR, "directory"),
        (stat.S_ISFIFO, "FIFO (named pipe)"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISLNK, "symbolic link"),
    )
    return next((name for test, name in kinds if test(mode)), "special file")


def check_regular(mode: int) -> None:
    """Raise InputError unless ``mode`` is a regular file's."""
    if stat.S_ISDIR(mode):
        raise InputError("this is a directory, not a file")
    if not stat.S_ISREG(mode):
        raise InputError(
            f"this is a {file_kind(mode)}, not a regular file; only regular files are read "
            "(copy the photo into a file)"
        )


def _too_large(size: int, max_bytes: int) -> ImageTooLargeError:
    return ImageTooLargeError(
        f"{size:,} bytes is over the limit of {max_bytes:,} "
        "(raise FACELEDGER_MAX_FILE_BYTES to accept it)"
    )


def read_regular_file(path: Path | str | bytes, max_bytes: int) -> bytes:
    """The bytes of the regular file at ``path``, at most ``max_bytes`` of them.

    Raises InputError (never OSError or ValueError) for anything that cannot be read: a missing
    file, a directory, a FIFO/device/socket, a NUL byte or an over-long name in the path, and
    ImageTooLargeError over the limit, checked before reading and again while reading.
    """
    try:
        # stat first: opening a FIFO or a tape device can block or have side effects.
        status = os.stat(path)
        check_regular(status.st_mode)
        if status.st_size > max_bytes:
            raise _too_large(status.st_size, max_bytes)
        flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | os.O_CLOEXEC
        fd = os.open(path, flags)
        try:
            # The path may have been swapped for something else since the stat.
            check_regular(os.fstat(fd).st_mode)
            chunks: list[bytes] = []
            total = 0
            while total <= max_bytes:
                chunk = os.read(fd, min(_CHUNK, max_bytes + 1 - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
        finally:
            os.close(fd)
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise InputError("the file does not exist") from exc
    except IsADirectoryError as exc:
        raise InputError("this is a directory, not a file") from exc
    except PermissionError as exc:
        raise InputError("permission denied reading the file") from exc
    except OSError as exc:
        raise InputError(f"cannot read the file: {exc.strerror or exc}") from exc
    except ValueError as exc:  # os functions refuse paths with NUL bytes this way
        raise InputError(f"unusable path: {exc}") from exc
    if total > max_bytes:  # it grew after the stat
        raise _too_large(total, max_bytes)
    return b"".join(chunks)
