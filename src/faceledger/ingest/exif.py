"""EXIF date-time and GPS from Pillow's Exif object; broken tags give None, never an error."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

from PIL import ExifTags, Image

from faceledger.records import GeoPoint

__all__ = ["read_taken_at", "read_gps"]

_EXIF_IFD = ExifTags.IFD.Exif
_GPS_IFD = ExifTags.IFD.GPSInfo
_T = ExifTags.Base
_G = ExifTags.GPS


def read_taken_at(exif: Image.Exif) -> datetime | None:
    """EXIF DateTimeOriginal (or DateTime), with OffsetTimeOriginal when present, else as UTC."""
    try:
        sub = exif.get_ifd(_EXIF_IFD)
        raw = sub.get(_T.DateTimeOriginal) or exif.get(_T.DateTime)
        offset = sub.get(_T.OffsetTimeOriginal)
    except Exception:  # Pillow raises many types on broken IFDs
        return None
    if not isinstance(raw, str):
        return None
    try:
        taken = datetime.strptime(raw.strip("\x00 ").strip(), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    tz = _parse_offset(offset) or UTC
    return taken.replace(tzinfo=tz)


def _parse_offset(text: object) -> timezone | None:
    if not isinstance(text, str) or len(text.strip()) < 6:
        return None
    text = text.strip()
    try:
        sign = -1 if text[0] == "-" else 1
        hours, minutes = int(text[1:3]), int(text[4:6])
    except ValueError:
        return None
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def read_gps(exif: Image.Exif) -> GeoPoint | None:
    """The EXIF GPS position in decimal degrees, or None when absent or invalid."""
    try:
        gps = exif.get_ifd(_GPS_IFD)
    except Exception:
        return None
    if not gps:
        return None
    lat = _degrees(gps.get(_G.GPSLatitude), gps.get(_G.GPSLatitudeRef), "S")
    lon = _degrees(gps.get(_G.GPSLongitude), gps.get(_G.GPSLongitudeRef), "W")
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    if lat == 0 and lon == 0:  # cameras write zeros when they had no fix
        return None
    return GeoPoint(round(lat, 7), round(lon, 7))


def _degrees(dms: object, ref: object, negative: str) -> float | None:
    try:
        d, m, s = (float(x) for x in dms)  # type: ignore[union-attr]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    value = d + m / 60 + s / 3600
    if not math.isfinite(value):
        return None
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "ignore")
    if isinstance(ref, str) and ref.strip().upper().startswith(negative):
        value = -value
    return value
