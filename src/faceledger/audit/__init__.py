"""The tamper-evident audit log: append, verify, export, and witnessed heads (anchors)."""

from faceledger.audit import anchor
from faceledger.audit.anchor import AuditHead
from faceledger.audit.log import (
    GENESIS,
    VerifyResult,
    append,
    entry_hash,
    export,
    head,
    verify,
)

__all__ = [
    "GENESIS",
    "AuditHead",
    "VerifyResult",
    "anchor",
    "append",
    "entry_hash",
    "export",
    "head",
    "verify",
]
