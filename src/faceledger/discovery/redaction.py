"""Protective-order redaction of sensitive sites: which sites a matter's orders redact, the
marker that replaces their URLs and names, and whether a photo's own metadata names one.

A site is redacted for a matter when its registry ``sensitivity`` (catalog/sites.py:
SENSITIVITIES) is one of the categories a protective order of that matter lists. Its domain
and its publisher's name are then replaced, wherever they appear in a value, by
``[REDACTED: <category>]``, and every replacement is logged. Pure: the caller reads the sites
and the orders from the catalog.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from PIL import Image

__all__ = ["MARKER", "SensitiveSite", "Redactor", "metadata_texts"]

#: What replaces a redacted value (the category is the order's, never the site's name).
MARKER = "[REDACTED: {category}]"


@dataclass(frozen=True)
class SensitiveSite:
    """A website of the registry with a sensitivity."""

    domain: str
    publisher: str | None
    sensitivity: str


@dataclass
class Redactor:
    """The sites a matter's protective orders redact; empty ``categories``: nothing is."""

    categories: frozenset[str] = frozenset()
    sites: tuple[SensitiveSite, ...] = ()
    _terms: list[tuple[str, str]] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        for site in self.sites:
            if site.sensitivity in self.categories:
                self._terms.append((site.domain.lower(), site.sensitivity))
                if site.publisher and len(site.publisher.strip()) >= 3:
                    self._terms.append((site.publisher.strip().lower(), site.sensitivity))
        # Longest first, so a publisher name containing the domain is found as a whole.
        self._terms.sort(key=lambda term: -len(term[0]))

    @property
    def active(self) -> bool:
        """Whether any site is redacted."""
        return bool(self._terms)

    def category_in(self, value: object) -> str | None:
        """The category of the first redacted site ``value`` names (domain, host or name)."""
        if not self._terms or value is None:
            return None
        text = str(value).lower()
        host = (urlsplit(text).hostname or "") if "://" in text else ""
        for term, category in self._terms:
            if term in text or (host and (host == term or host.endswith("." + term))):
                return category
        return None

    def redact(self, value: object) -> tuple[object, str | None]:
        """``value``, or the marker when it names a redacted site; and the category (or None)."""
        category = self.category_in(value)
        if category is None:
            return value, None
        return MARKER.format(category=category), category

    def redact_row(
        self, row: Mapping[str, object], fields: Iterable[str]
    ) -> tuple[dict[str, object], list[tuple[str, str]]]:
        """A copy of ``row`` with ``fields`` redacted, and the (field, category) pairs done."""
        out, done = dict(row), []
        for name in fields:
            if name in out:
                out[name], category = self.redact(out[name])
                if category is not None:
                    done.append((name, category))
        return out, done

    def native_category(self, path: Path) -> str | None:
        """The category of a redacted site the photo's own metadata names, if any."""
        if not self._terms:
            return None
        for text in metadata_texts(path):
            category = self.category_in(text)
            if category is not None:
                return category
        return None


def metadata_texts(path: Path) -> list[str]:
    """The texts a photo's own metadata holds: EXIF values, XMP, IPTC, PNG text, comments.

    Read through Pillow (which inflates compressed PNG text chunks), and the raw bytes before
    the image data too, so a tag Pillow does not decode is still seen.
    """
    data = Path(path).read_bytes()
    texts = [data[:1 << 20].decode("latin-1")]
    try:
        with Image.open(io.BytesIO(data)) as image:
            for key, value in image.info.items():
                texts.append(f"{key}={_text(value)}")
            exif = image.getexif()
            texts += [_text(v) for v in exif.values()]
            for ifd in (0x8769, 0x8825):  # the Exif and GPS sub-directories
                texts += [_text(v) for v in exif.get_ifd(ifd).values()]
            if hasattr(image, "text"):
                texts += [f"{k}={v}" for k, v in image.text.items()]
            getxmp = getattr(image, "getxmp", None)
            if getxmp is not None:
                # XMP that cannot be parsed here (no defusedxml) is still in the raw bytes
                # searched above.
                with contextlib.suppress(Exception), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    texts.append(repr(getxmp()))
    except OSError:
        pass  # not decodable here: the raw bytes were searched already
    return texts


def _text(value: object) -> str:
    if isinstance(value, bytes):
        for encoding in ("utf-8", "utf-16"):
            try:
                return value.decode(encoding)
            except UnicodeDecodeError:
                continue
        return value.decode("latin-1")
    return str(value)
