"""Fuzzing the readers: manifests, WARC, EXIF/GPS and the image decoder.

Inputs are real files from the shared data (broken images, camera JPEGs, web archives) and
small manifests, mutated by bit flips, truncations, splices, insertions and deletions, plus
generated ones. The only allowed outcomes are items, SourceFailure items and the InputError
family; any other exception, or a reader that runs past HANG_SECONDS, is a bug.

``make test`` runs a bounded number of examples (deterministic); ``make fuzz`` sets
FACELEDGER_FUZZ=1 for a longer random campaign that writes each crashing input to
tests/fuzz-corpus/<kind>/<sha256>. test_fuzz_corpus.py replays that folder in every run.
A kept input that is a mutation of a shared file must not be committed as it is (shared data
never goes into the repository): rebuild the few bytes that matter on generated content, as
was done for the BigTIFF EXIF header in tests/fuzz-corpus/image/.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import shared_path
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image

from faceledger.errors import InputError
from faceledger.ingest import (
    SourceFailure,
    SourceItem,
    decode_image,
    iter_manifest,
    iter_warc,
)
from faceledger.ingest.exif import read_gps_with_note, read_taken_at

CORPUS = Path(__file__).parent / "fuzz-corpus"
FUZZ = os.environ.get("FACELEDGER_FUZZ") == "1"
HANG_SECONDS = 20
SEED_MAX_BYTES = 64 * 1024
MAX_BYTES = 1 << 22
MAX_PIXELS = 1 << 22


def _examples(normal: int) -> int:
    if FUZZ:
        return int(os.environ.get("FACELEDGER_FUZZ_EXAMPLES", "5000"))
    return normal


def _settings(normal: int):
    return settings(
        max_examples=_examples(normal),
        deadline=None,
        derandomize=not FUZZ,  # make test is repeatable; make fuzz explores
        database=None,  # the corpus folder is the memory that is kept
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


class Hang(Exception):
    """A reader ran past HANG_SECONDS on one input."""


@contextlib.contextmanager
def _time_limit(seconds: int):
    def expire(signum, frame):
        raise Hang(f"no answer after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# -- the readers, one per corpus kind ---------------------------------------------------------
def _check_item(item) -> None:
    """What every yielded item must look like: storable, printable text."""
    assert isinstance(item, SourceItem | SourceFailure), item
    assert isinstance(item.name, str) and item.name.isprintable(), repr(item.name)
    if isinstance(item, SourceFailure):
        assert isinstance(item.error, InputError)
        str(item.error).encode("utf-8")  # error messages are stored too
        return
    prov = item.provenance
    for text in (prov.locator, prov.source_url, prov.page_url, prov.caption, prov.website):
        if text is not None:
            text.encode("utf-8")  # no lone surrogates
            assert "\x00" not in text


def _manifest(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "a.jpg").write_bytes(b"\xff\xd8 not really")
        os.mkfifo(folder / "pipe.jpg")
        manifest = folder / f"m{suffix}"
        manifest.write_bytes(data)
        for item in iter_manifest(manifest, encoding="cp1252", root=folder):
            _check_item(item)
            if isinstance(item, SourceItem):
                with contextlib.suppress(InputError):
                    item.read(1 << 16)


def read_csv(data: bytes) -> None:
    """Read ``data`` as a CSV manifest and every file it names."""
    _manifest(data, ".csv")


def read_jsonl(data: bytes) -> None:
    """Read ``data`` as a JSONL manifest and every file it names."""
    _manifest(data, ".jsonl")


def read_warc(data: bytes) -> None:
    """Read ``data`` as a WARC/ARC archive."""
    with tempfile.TemporaryDirectory() as tmp:
        warc = Path(tmp) / "x.warc.gz"
        warc.write_bytes(data)
        for item in iter_warc(warc, MAX_BYTES):
            _check_item(item)
            if isinstance(item, SourceItem):
                data = item.read(MAX_BYTES)  # by offset, as a worker reads it
                assert isinstance(data, bytes) and len(data) <= MAX_BYTES


def read_image(data: bytes) -> None:
    """Decode ``data`` as a photo, EXIF time and GPS included."""
    rgb, facts = decode_image(data, "x", MAX_BYTES, MAX_PIXELS)
    assert rgb.ndim == 3 and rgb.shape[2] == 3
    assert rgb.shape[0] * rgb.shape[1] <= MAX_PIXELS
    if facts.gps is not None:
        assert -90 <= facts.gps.lat <= 90 and -180 <= facts.gps.lon <= 180


READERS: dict[str, Callable[[bytes], None]] = {
    "manifest-csv": read_csv,
    "manifest-jsonl": read_jsonl,
    "warc": read_warc,
    "image": read_image,
}


def run_reader(kind: str, data: bytes) -> None:
    """Run one reader on ``data``: InputError is an answer, anything else propagates."""
    with _time_limit(HANG_SECONDS), contextlib.suppress(InputError):
        READERS[kind](data)


def _save(kind: str, data: bytes) -> Path:
    folder = CORPUS / kind
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / hashlib.sha256(data).hexdigest()
    path.write_bytes(data)
    return path


def _campaign(kind: str, inputs: st.SearchStrategy[bytes], examples: int) -> None:
    """Run ``kind``'s reader on ``inputs``; under make fuzz, keep the crashing input."""
    last: list[bytes] = []

    @_settings(examples)
    @given(inputs)
    def check(data: bytes) -> None:
        try:
            run_reader(kind, data)
        except BaseException:
            last[:] = [data]  # Hypothesis replays the shrunk example last
            raise

    try:
        check()
    except BaseException:
        if FUZZ and last:
            print(f"crashing input kept as {_save(kind, last[0])}")
        raise


# -- inputs -----------------------------------------------------------------------------------
def _seeds(folder: str, suffixes: tuple[str, ...]) -> list[bytes]:
    root = shared_path(folder)
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.name.lower().endswith(suffixes) and p.stat().st_size <= SEED_MAX_BYTES
    )
    assert files, f"no seed files under {root}"
    return [p.read_bytes() for p in files]


@st.composite
def mutations(draw, seeds: list[bytes]) -> bytes:
    """A seed changed by a few bit flips, truncations, splices, insertions or deletions."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "truncate", "splice", "insert", "delete", "repeat"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del data[at:]
        elif op == "splice":
            other = draw(st.sampled_from(seeds))
            start = draw(st.integers(0, max(len(other) - 1, 0)))
            data[at:] = other[start:]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif op == "repeat":
            data[at:at] = data[at : at + draw(st.integers(1, 64))] * draw(st.integers(1, 8))
    return bytes(data)


_FIELD = st.one_of(
    st.sampled_from(["a.jpg", "pipe.jpg", "/etc/passwd", "../a.jpg", "", "US-IL", "2020-01-01"]),
    st.text(max_size=20),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=8),
)


@st.composite
def csv_manifests(draw) -> bytes:
    """Header and rows of CSV text, some with raw bytes (not UTF-8) spliced in."""
    columns = draw(
        st.lists(
            st.sampled_from(["path", "caption", "source_url", "uploader_region", "x"]),
            min_size=1,
            max_size=4,
        )
    )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in draw(st.lists(st.lists(_FIELD, max_size=5), max_size=6)):
        writer.writerow(row)
    data = out.getvalue().encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(max_size=8)) + data[at:]
    return data


@st.composite
def jsonl_manifests(draw) -> bytes:
    """JSON objects (and other JSON values) one a line."""
    value = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | _FIELD,
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=5), children, max_size=3)
        ),
        max_leaves=8,
    )
    rows = draw(
        st.lists(
            st.dictionaries(
                st.sampled_from(["path", "caption", "page_url", "retrieved_at", "zz"]),
                value,
                max_size=4,
            )
            | value,
            max_size=6,
        )
    )
    return b"\n".join(json.dumps(r).encode() for r in rows) + b"\n"


def _manifest_seeds() -> tuple[list[bytes], list[bytes]]:
    csv_seed = (
        "path,source_url,page_url,retrieved_at,uploader_region,caption\n"
        "a.jpg,https://a.example/a.jpg,https://a.example/,2020-01-01T00:00:00Z,US-IL,caf\u00e9\n"
        '"pipe.jpg",,,,,"two\nlines"\n'
        "../escape.jpg,,,,,\n"
    ).encode()
    jsonl_seed = (
        b'{"path": "a.jpg", "source_url": "https://a.example/a.jpg", "caption": "x"}\n'
        b'{"path": "pipe.jpg", "retrieved_at": "2020-01-01T00:00:00+02:00"}\n'
        b'{"path": "/etc/passwd"}\n'
    )
    return [csv_seed, csv_seed.replace(b"\xc3\xa9", b"\xe9")], [jsonl_seed]


# -- the properties ---------------------------------------------------------------------------
def test_fuzz_csv_manifests():
    seeds, _ = _manifest_seeds()
    _campaign("manifest-csv", csv_manifests() | mutations(seeds), examples=120)


def test_fuzz_jsonl_manifests():
    _, seeds = _manifest_seeds()
    _campaign("manifest-jsonl", jsonl_manifests() | mutations(seeds), examples=120)


def test_fuzz_warc_archives():
    seeds = _seeds("warc", (".warc", ".warc.gz", ".arc", ".arc.gz", ".bad"))
    _campaign("warc", mutations(seeds), examples=400)


def test_fuzz_image_decoder():
    seeds = _seeds("broken-images", (".jpg", ".png", ".gif", ".tif", ".webp", ".mpo"))
    seeds += _seeds("exif", (".jpg",))
    _campaign("image", mutations(seeds) | st.binary(max_size=64), examples=500)


_GPS_VALUE = st.one_of(
    st.none(),
    st.text(max_size=4),
    st.binary(max_size=4),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.tuples(st.floats(), st.floats(), st.floats()),
    st.lists(st.integers(0, 2**32), max_size=4).map(tuple),
)
_GPS_TAGS = [
    ExifTags.GPS.GPSLatitude,
    ExifTags.GPS.GPSLatitudeRef,
    ExifTags.GPS.GPSLongitude,
    ExifTags.GPS.GPSLongitudeRef,
]


@_settings(300)
@given(st.dictionaries(st.sampled_from(_GPS_TAGS), _GPS_VALUE))
def test_fuzz_gps_tags_never_raise_and_never_guess(tags):
    exif = Image.Exif()
    exif[ExifTags.IFD.GPSInfo] = tags
    point, note = read_gps_with_note(exif)
    assert read_taken_at(exif) is None
    if point is not None:
        assert note is None
        assert -90 <= point.lat <= 90 and -180 <= point.lon <= 180
        # A position is only ever given with both hemisphere references present.
        assert tags.get(ExifTags.GPS.GPSLatitudeRef) is not None
        assert tags.get(ExifTags.GPS.GPSLongitudeRef) is not None
    elif any(t in tags for t in (ExifTags.GPS.GPSLatitude, ExifTags.GPS.GPSLongitude)):
        assert note, tags


@pytest.mark.parametrize("kind", sorted(READERS))
def test_a_reader_error_that_is_not_input_error_is_reported(kind, monkeypatch):
    # The harness must not swallow real bugs: a reader that raises KeyError fails the run.
    def broken(data: bytes) -> None:
        raise KeyError("a bug")

    monkeypatch.setitem(READERS, kind, broken)
    with pytest.raises(KeyError):
        run_reader(kind, b"")
