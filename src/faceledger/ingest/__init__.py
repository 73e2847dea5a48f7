"""Reading photo collections: sources, safe decoding, EXIF, hashing. Decides no policy."""

from faceledger.ingest.decode import Digests, decode_image, digests
from faceledger.ingest.sources import (
    SourceFailure,
    SourceItem,
    iter_folder,
    iter_manifest,
    iter_warc,
    website_of,
)

__all__ = [
    "Digests",
    "decode_image",
    "digests",
    "SourceFailure",
    "SourceItem",
    "iter_folder",
    "iter_manifest",
    "iter_warc",
    "website_of",
]
