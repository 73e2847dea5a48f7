"""faceledger: face search over photo collections, with provenance, blocking and audit built in."""

__version__ = "0.1.0"
