"""EXIF date-time and GPS from Pillow's Exif object; broken tags give None, never an error."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

from PIL import ExifTags, Image

from faceledger.records import GeoPoint

__all__ = ["read_taken_at", "read_gps", "read_gps_with_note"]

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
    """The EXIF GPS position in decimal degrees, or None when absent, invalid or ambiguous."""
    return read_gps_with_note(exif)[0]


def read_gps_with_note(exif: Image.Exif) -> tuple[GeoPoint | None, str | None]:
    """The EXIF GPS position, and when GPS tags exist but give no position, the reason why.

    A latitude or longitude without its hemisphere reference (GPSLatitudeRef/GPSLongitudeRef
    'N'/'S', 'E'/'W') is stored as unknown, never guessed: a wrong sign moves a photo from
    Illinois to China.
    """
    try:
        gps = exif.get_ifd(_GPS_IFD)
    except Exception:  # Pillow raises many types on broken IFDs
        return None, "the GPS tags are unreadable"
    if not gps or (_G.GPSLatitude not in gps and _G.GPSLongitude not in gps):
        return None, None
    lat = _degrees(gps.get(_G.GPSLatitude))
    lon = _degrees(gps.get(_G.GPSLongitude))
    if lat is None or lon is None:
        return None, "the GPS latitude or longitude is missing or not a number"
    lat_sign = _hemisphere(gps.get(_G.GPSLatitudeRef), "N", "S")
    lon_sign = _hemisphere(gps.get(_G.GPSLongitudeRef), "E", "W")
    missing = [
        tag
        for tag, sign in (("GPSLatitudeRef", lat_sign), ("GPSLongitudeRef", lon_sign))
        if sign is None
    ]
    if missing:
        return None, (
            f"GPS position without a valid hemisphere reference ({', '.join(missing)} "
            "missing or not N/S/E/W): stored as unknown"
        )
    lat, lon = lat * lat_sign, lon * lon_sign  # type: ignore[operator]
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None, f"GPS position {lat:.6f}, {lon:.6f} is out of range"
    if lat == 0 and lon == 0:  # cameras write zeros when they had no fix
        return None, "GPS position 0, 0 (the camera had no fix)"
    return GeoPoint(round(lat, 7), round(lon, 7)), None


def _degrees(dms: object) -> float | None:
    try:
        d, m, s = (float(x) for x in dms)  # type: ignore[union-attr]
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    value = d + m / 60 + s / 3600
    if not math.isfinite(value) or value < 0:
        return None
    return value


def _hemisphere(ref: object, positive: str, negative: str) -> int | None:
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "ignore")
    if not isinstance(ref, str):
        return None
    ref = ref.strip("\x00 ").upper()
    if ref == positive:
        return 1
    if ref == negative:
        return -1
    return None
