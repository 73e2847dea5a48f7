"""The exception tree of faceledger.

FaceledgerError
 ├── ConfigError            bad settings or policy file
 ├── LibraryError           library directory missing or not initialised
 ├── InputError             one input item cannot be used (the batch goes on)
 │    ├── DecodeError       not an image, truncated, corrupt
 │    ├── ImageTooLargeError  over the byte or pixel limit
 │    ├── UnsafePathError   a manifest path that escapes its base directory
 │    └── ManifestError     a malformed manifest row or file
 ├── ModelError             face model files missing or unusable
 ├── VectorIndexError       vector index file unreadable or inconsistent
 ├── NotFoundError          an id that is not in the catalog
 ├── PermissionDenied       the acting user's role does not allow the action
 ├── KeyMissingError        the encryption key is not available
 └── AnchorError            a witnessed-heads file or a signing key cannot be used
"""

from __future__ import annotations

__all__ = [
    "FaceledgerError",
    "ConfigError",
    "LibraryError",
    "InputError",
    "DecodeError",
    "ImageTooLargeError",
    "UnsafePathError",
    "ManifestError",
    "ModelError",
    "VectorIndexError",
    "NotFoundError",
    "PermissionDenied",
    "KeyMissingError",
    "AnchorError",
]


class FaceledgerError(Exception):
    """Base class of every error faceledger raises on purpose."""

    #: Process exit status the CLI uses for this error.
    exit_code = 1


class ConfigError(FaceledgerError):
    """Settings or the policy file are invalid."""

    exit_code = 2


class LibraryError(FaceledgerError):
    """The library directory is missing, not initialised, or from a newer version."""


class InputError(FaceledgerError):
    """One input item (a file, a manifest row, a WARC record) cannot be used."""


class DecodeError(InputError):
    """The bytes are not a readable image."""


class ImageTooLargeError(InputError):
    """The image is over the configured byte or pixel limit."""


class UnsafePathError(InputError):
    """A path in a manifest points outside the manifest's directory."""


class ManifestError(InputError):
    """A manifest file or row is malformed."""


class ModelError(FaceledgerError):
    """The face model files cannot be found or loaded."""


class VectorIndexError(FaceledgerError):
    """A vector index file is unreadable or does not match the catalog."""


class NotFoundError(FaceledgerError):
    """An id that the catalog does not hold."""


class PermissionDenied(FaceledgerError):
    """The acting user's role does not allow this action."""

    exit_code = 3


class KeyMissingError(FaceledgerError):
    """The encryption key for stored vectors is not available."""


class AnchorError(FaceledgerError):
    """A file of witnessed audit heads, or an Ed25519 key for them, cannot be read or used."""

    exit_code = 2
