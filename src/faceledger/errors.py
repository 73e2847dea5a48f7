"""The exception tree of faceledger, with the exit status (CLI) and HTTP status (service) of each.

FaceledgerError               4 400  (exit status, HTTP status)
 ├── UsageError               2 400  a bad option value, or a path given that does not exist
 │    ├── BadOptionError      2 400  an option value that is not valid (also a ConfigError)
 │    ├── ManifestHeaderError 2 400  a manifest unusable as a whole (also a ManifestError)
 │    └── AnchorError         2 400  a witnessed-heads file or a signing key cannot be used
 ├── ConfigError              4 500  bad settings or policy file
 ├── ConflictError            4 409  the request contradicts what is stored (a name taken, a
 │                                   hold already released)
 ├── LibraryError             4 503  library directory missing or not initialised
 │    ├── VaultCountsCorrupt  4 503  the vault's kept counts were edited: `discovery recount`
 │    └── StorageError        4 507  the disk is full: the catalog cannot record even a failure
 ├── InputError               1 422  one input item cannot be used (the batch goes on)
 │    ├── DecodeError         1 422  not an image, truncated, corrupt
 │    ├── ImageTooLargeError  1 413  over the byte or pixel limit
 │    ├── UnsafePathError     1 422  a manifest path that escapes its base directory
 │    ├── ManifestError       1 422  a malformed manifest row or file
 │    ├── NoFaceError         1 422  an image in which no face is found, where one is needed
 │    └── LoadFileError       1 422  a load file that cannot be written or parsed
 ├── ProductionError          4 400  a production that cannot be written as asked
 ├── ModelError               4 500  face model files missing or unusable
 ├── VectorIndexError         4 500  vector index file unreadable or inconsistent
 ├── NotFoundError            4 404  an id that is not in the catalog
 ├── PermissionDenied         3 403  the acting user's role does not allow the action
 │    └── SignInError         3 401  a console sign-in with a wrong name, key or password
 ├── KeyMissingError          4 503  the encryption key is not available
 ├── RecordIntegrityError     4 409  the audit log or the change log fails its hash chain, so
 │                                   no answer is given from them
 └── DecryptionError          4 500  a sealed vector does not open with its key

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
    "VaultCountsCorrupt",
    "InputError",
    "DecodeError",
    "ImageTooLargeError",
    "UnsafePathError",
    "ManifestError",
    "ModelError",
    "VectorIndexError",
    "NotFoundError",
    "PermissionDenied",
    "SignInError",
    "KeyMissingError",
    "AnchorError",
    "ConflictError",
    "LoadFileError",
    "ProductionError",
    "DecryptionError",
    "NoFaceError",
    "RecordIntegrityError",
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
    #: HTTP status the web service answers with for this error.
    http_status = 400


class UsageError(FaceledgerError):
    """A bad option value or argument: nothing was done (no run is recorded)."""

    exit_code = 2


class ConfigError(FaceledgerError):
    """Settings or the policy file are invalid."""

    http_status = 500


class BadOptionError(UsageError, ConfigError):
    """An option or argument value that is not valid (a ConfigError before exit codes split)."""

    http_status = 400


class LibraryError(FaceledgerError):
    """The library directory is missing, not initialised, or from a newer version."""

    http_status = 503


class VaultCountsCorrupt(LibraryError):
    """The vault's kept counts (``catalog.vault_counts``) disagree with their own record (a
    reference count below zero) or with a count of the ties (``discovery count --verify``):
    rows of the kept-count tables were edited by hand. ``faceledger discovery recount``
    derives them anew."""


class StorageError(LibraryError):
    """The disk is full or over a file-size limit, so the catalog cannot record what happened."""

    http_status = 507


class InputError(FaceledgerError):
    """One input item (a file, a manifest row, a WARC record) cannot be used."""

    http_status = 422

    exit_code = 1


class DecodeError(InputError):
    """The bytes are not a readable image."""


class ImageTooLargeError(InputError):
    """The image is over the configured byte or pixel limit."""

    http_status = 413


class UnsafePathError(InputError):
    """A path in a manifest points outside the manifest's directory."""


class ManifestError(InputError):
    """A manifest file or row is malformed."""


class NoFaceError(InputError):
    """An image in which no face is found, where the request needs one."""


class ManifestHeaderError(UsageError, ManifestError):
    """The manifest as a whole is unusable (no 'path' column, unknown encoding): a usage error."""

    exit_code = 2
    http_status = 400


class ModelError(FaceledgerError):
    """The face model files cannot be found or loaded."""

    http_status = 500


class VectorIndexError(FaceledgerError):
    """A vector index file is unreadable or does not match the catalog."""

    http_status = 500


class NotFoundError(FaceledgerError):
    """An id that the catalog does not hold."""

    http_status = 404


class PermissionDenied(FaceledgerError):
    """The acting user's role does not allow this action."""

    http_status = 403

    exit_code = 3


class SignInError(PermissionDenied):
    """A sign-in whose name, API key or password is wrong (or whose user is disabled)."""

    http_status = 401


class KeyMissingError(FaceledgerError):
    """The encryption key for stored vectors is not available."""

    http_status = 503


class AnchorError(UsageError):
    """A file of witnessed audit heads, or an Ed25519 key for them, cannot be read or used."""


class ConflictError(FaceledgerError):
    """The request contradicts what the catalog holds: a name already taken, a hold released."""

    http_status = 409


class LoadFileError(InputError, ValueError):
    """A load file cannot be written or parsed as asked."""


class ProductionError(FaceledgerError):
    """A production cannot be written as asked (bad arguments, non-empty folder, I/O)."""


class DecryptionError(FaceledgerError):
    """A sealed vector could not be opened: wrong key for its key id, or the blob was altered."""

    http_status = 500


class RecordIntegrityError(FaceledgerError):
    """The audit log or the index change log fails verification: answers from them would lie."""

    http_status = 409
