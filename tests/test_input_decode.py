"""Decoding: GPS without a hemisphere is unknown; decoder noise is captured per item."""

from __future__ import annotations

import csv
import io
import os
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import shared_path
from PIL import ExifTags, Image

from faceledger.errors import DecodeError
from faceledger.ingest import captured_noise, decode_image
from faceledger.records import GeoPoint

_GPS = ExifTags.IFD.GPSInfo
_G = ExifTags.GPS
LIMITS = (10**8, 10**8)


def _jpeg_with_gps(**tags) -> bytes:
    exif = Image.Exif()
    exif[_GPS] = {getattr(_G, name): value for name, value in tags.items()}
    out = io.BytesIO()
    Image.new("RGB", (16, 16), "gray").save(out, "JPEG", exif=exif)
    return out.getvalue()


CHICAGO = {"GPSLatitude": (41.0, 52.0, 48.0), "GPSLongitude": (87.0, 37.0, 48.0)}


def test_gps_with_both_references_is_read():
    data = _jpeg_with_gps(**CHICAGO, GPSLatitudeRef="N", GPSLongitudeRef="W")
    _, facts = decode_image(data, "x", *LIMITS)
    assert facts.gps == GeoPoint(41.88, -87.63)
    assert facts.gps_note is None


@pytest.mark.parametrize(
    "refs, missing",
    [
        ({"GPSLatitudeRef": "N"}, "GPSLongitudeRef"),
        ({"GPSLongitudeRef": "W"}, "GPSLatitudeRef"),
        ({}, "GPSLatitudeRef, GPSLongitudeRef"),
        ({"GPSLatitudeRef": "N", "GPSLongitudeRef": "?"}, "GPSLongitudeRef"),
    ],
)
def test_gps_without_a_hemisphere_is_unknown_not_guessed(refs, missing):
    _, facts = decode_image(_jpeg_with_gps(**CHICAGO, **refs), "x", *LIMITS)
    assert facts.gps is None  # not (41.88, 87.63), a point in China
    assert facts.gps_note and missing in facts.gps_note and "unknown" in facts.gps_note


def test_shared_camera_gps_matches_the_recorded_coordinates():
    root = shared_path("exif")
    with (root / "GPS.csv").open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["status"] == "gps_ok"]
    assert len(rows) == 13
    for row in rows:
        _, facts = decode_image((root / row["file"]).read_bytes(), "x", *LIMITS)
        assert facts.gps is not None, row["file"]
        assert facts.gps.lat == pytest.approx(float(row["lat"]), abs=1e-5)
        assert facts.gps.lon == pytest.approx(float(row["lon"]), abs=1e-5)
        assert facts.gps_note is None


def test_libtiff_noise_on_fd2_comes_back_with_the_item(capfd):
    data = shared_path("broken-images", "crash-0da013a13571cc8eb457a39fee8db18f8a3c7127.tif")
    _, facts = decode_image(data.read_bytes(), "x", *LIMITS)
    assert any("Fax4Decode: Bad code word" in w for w in facts.warnings)
    assert capfd.readouterr().err == ""


def test_python_warnings_come_back_with_the_item(capfd):
    data = shared_path("broken-images", "hopper_bad_exif.jpg").read_bytes()
    _, facts = decode_image(data, "x", *LIMITS)
    assert any(w.startswith("UserWarning: Corrupt EXIF data") for w in facts.warnings)
    assert capfd.readouterr().err == ""


def test_a_failed_decode_carries_its_noise():
    data = shared_path("broken-images", "oom-225817ca0f8c663be7ab4b9e717b02c661e66834.tif")
    with pytest.raises(DecodeError) as info:
        decode_image(data.read_bytes(), "x", *LIMITS)
    assert any("Corrupt EXIF data" in w for w in info.value.warnings)
    assert "Corrupt EXIF data" in str(info.value)


def test_a_clean_image_has_no_warnings():
    data = shared_path("broken-images", "hopper_orientation_6.jpg").read_bytes()
    assert decode_image(data, "x", *LIMITS)[1].warnings == ()


def test_capture_takes_every_channel_and_restores_fd2(capfd):
    before = os.fstat(2)
    with captured_noise() as noise:
        os.write(2, b"from C\n")
        print("from python", file=sys.stderr)
        warnings.warn("from warnings", UserWarning, stacklevel=1)
    after = os.fstat(2)
    assert (before.st_ino, before.st_dev) == (after.st_ino, after.st_dev)
    assert set(noise) == {"from C", "from python", "UserWarning: from warnings"}
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"


def test_capture_is_safe_across_threads():
    noisy = shared_path(
        "broken-images", "crash-0da013a13571cc8eb457a39fee8db18f8a3c7127.tif"
    ).read_bytes()
    clean = shared_path("broken-images", "hopper_orientation_6.jpg").read_bytes()
    jobs = [noisy, clean] * 12
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda d: decode_image(d, "x", *LIMITS)[1].warnings, jobs))
    for data, found in zip(jobs, results, strict=True):
        if data is noisy:
            assert any("Fax4Decode" in w for w in found)
        else:
            assert found == ()


def test_a_bigtiff_header_in_exif_is_a_decode_error():
    # Found by make fuzz: Pillow raised struct.error reading a BigTIFF EXIF header.
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(out, "JPEG", dpi=(72, 72))
    jpeg = out.getvalue()
    exif = b"Exif\x00\x00II+\x00\x08\x00\x00\x00\x00\x00"
    data = jpeg[:20] + b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif + jpeg[20:]
    with pytest.raises(DecodeError, match="cannot decode"):
        decode_image(data, "x", *LIMITS)
