"""Reading photo collections: sources, safe decoding, EXIF, hashing. Decides no policy."""

from faceledger.ingest.decode import Digests, decode_image, digests
from faceledger.ingest.files import read_regular_file
from faceledger.ingest.manifests import ManifestHeaderError
from faceledger.ingest.names import display_text, locator_bytes, path_locator, storable_text
from faceledger.ingest.noise import captured_noise
from faceledger.ingest.sources import (
    SourceFailure,
    SourceItem,
    count_items,
    iter_folder,
    iter_manifest,
    iter_warc,
    website_of,
)

__all__ = [
    "Digests",
    "decode_image",
    "digests",
    "read_regular_file",
    "ManifestHeaderError",
    "display_text",
    "locator_bytes",
    "path_locator",
    "storable_text",
    "captured_noise",
    "SourceFailure",
    "SourceItem",
    "count_items",
    "iter_folder",
    "iter_manifest",
    "iter_warc",
    "website_of",
]
