"""The exception tree of faceledger, with the exit status the CLI gives each error.

FaceledgerError             4  (exit status)
 ├── UsageError             2  a bad option value, or a path given that does not exist
 │    ├── BadOptionError    2  an option value that is not valid (also a ConfigError)
 │    ├── ManifestHeaderError  2  a manifest unusable as a whole (also a ManifestError)
 │    └── AnchorError       2  a witnessed-heads file or a signing key cannot be used
 ├── ConfigError            4  bad settings or policy file
 ├── LibraryError           4  library directory missing or not initialised
 │    └── StorageError      4  the disk is full: the catalog cannot record even a failure
 ├── InputError             1  one input item cannot be used (the batch goes on)
 │    ├── DecodeError       1  not an image, truncated, corrupt
 │    ├── ImageTooLargeError  1  over the byte or pixel limit
 │    ├── UnsafePathError   1  a manifest path that escapes its base directory
 │    └── ManifestError     1  a malformed manifest row or file
 ├── ModelError             4  face model files missing or unusable
 ├── VectorIndexError       4  vector index file unreadable or inconsistent
 ├── NotFoundError          4  an id that is not in the catalog
 ├── PermissionDenied       3  the acting user's role does not allow the action
 └── KeyMissingError        4  the encryption key is not available

Exit statuses: 0 everything asked for was done; 1 some items failed (the summary says which);
2 usage errors; 3 permission refused; 4 library, configuration or not-found errors.
"""

from __future__ import annotations

__all__ = [
    "EXIT_CODES",
    "FaceledgerError",
    "UsageError",
    "BadOptionError",
    "ManifestHeaderError",
    "ConfigError",
    "LibraryError",
    "StorageError",
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


#: What each exit status of the CLI means (README and ``faceledger --help`` say the same).
EXIT_CODES = {
    0: "everything asked for was done",
    1: "some items failed (the summary says which)",
    2: "usage error: a bad option value, or a path that does not exist",
    3: "permission refused",
    4: "library, configuration or not-found error",
}


class FaceledgerError(Exception):
    """Base class of every error faceledger raises on purpose."""

    #: Process exit status the CLI uses for this error.
    exit_code = 4


class UsageError(FaceledgerError):
    """A bad option value or argument: nothing was done (no run is recorded)."""

    exit_code = 2


class ConfigError(FaceledgerError):
    """Settings or the policy file are invalid."""


class BadOptionError(UsageError, ConfigError):
    """An option or argument value that is not valid (a ConfigError before exit codes split)."""


class LibraryError(FaceledgerError):
    """The library directory is missing, not initialised, or from a newer version."""


class StorageError(LibraryError):
    """The disk is full or over a file-size limit, so the catalog cannot record what happened."""


class InputError(FaceledgerError):
    """One input item (a file, a manifest row, a WARC record) cannot be used."""

    exit_code = 1


class DecodeError(InputError):
    """The bytes are not a readable image."""


class ImageTooLargeError(InputError):
    """The image is over the configured byte or pixel limit."""


class UnsafePathError(InputError):
    """A path in a manifest points outside the manifest's directory."""


class ManifestError(InputError):
    """A manifest file or row is malformed."""


class ManifestHeaderError(UsageError, ManifestError):
    """The manifest as a whole is unusable (no 'path' column, unknown encoding): a usage error."""


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


class AnchorError(UsageError):
    """A file of witnessed audit heads, or an Ed25519 key for them, cannot be read or used."""
