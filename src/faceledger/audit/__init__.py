"""The tamper-evident audit log: append, verify, export."""

from faceledger.audit.log import GENESIS, VerifyResult, append, entry_hash, export, verify

__all__ = ["GENESIS", "VerifyResult", "append", "entry_hash", "export", "verify"]
