"""Crash points for the crash tests: a process killed where a real crash would hurt most.

``FACELEDGER_CRASH_AT=after-commit`` kills a process right after a transaction that moved faces
committed and before any index caught up; ``during-save`` kills it while an index snapshot is
half saved (written to its temporary file, not yet renamed). Unset, each point costs one
environment lookup.
"""

from __future__ import annotations

import os
import signal

__all__ = ["crash_point", "CRASH_ENV"]

CRASH_ENV = "FACELEDGER_CRASH_AT"


def crash_point(name: str) -> None:
    """SIGKILL this process here if the crash tests asked for point ``name``."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
