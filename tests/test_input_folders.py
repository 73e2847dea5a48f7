"""Folder sources: file names that are not UTF-8, special files, and the escaping of locators."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest
from conftest import shared_path
from hypothesis import given, settings
from hypothesis import strategies as st

from faceledger.errors import ImageTooLargeError, InputError
from faceledger.ingest import (
    SourceFailure,
    SourceItem,
    iter_folder,
    locator_bytes,
    path_locator,
    read_regular_file,
)
from faceledger.records import Provenance


def _photo() -> bytes:
    return shared_path("broken-images", "hopper_orientation_6.jpg").read_bytes()


def _by_name(items):
    return {Path(i.name).name: i for i in items}


def test_a_name_that_is_not_utf8_is_escaped_losslessly(tmp_path):
    folder = os.fsencode(tmp_path)
    raw_name = b"caf\xe9.jpg"
    with open(os.path.join(folder, raw_name), "wb") as handle:
        handle.write(_photo())

    (item,) = list(iter_folder(tmp_path))
    assert isinstance(item, SourceItem)
    assert item.name.endswith("caf\\xe9.jpg")
    locator = item.provenance.locator
    assert locator == item.name
    # The catalog's text columns refuse lone surrogates: the locator has none and encodes.
    assert locator.encode("utf-8").endswith(b"caf\\xe9.jpg")
    assert locator_bytes(locator) == os.path.join(folder, raw_name)
    assert item.read(10**7) == _photo()


def test_utf8_names_keep_the_locator_they_always_had(tmp_path):
    (tmp_path / "café ünïcode.jpg").write_bytes(_photo())
    (item,) = list(iter_folder(tmp_path))
    assert item.provenance.locator == str(tmp_path / "café ünïcode.jpg")


def test_a_literal_backslash_is_escaped_so_it_cannot_collide(tmp_path):
    # The UTF-8 name `caf\xe9.jpg` (with a real backslash) and the byte name caf<E9>.jpg
    # must get different locators.
    (tmp_path / "caf\\xe9.jpg").write_bytes(_photo())
    with open(os.path.join(os.fsencode(tmp_path), b"caf\xe9.jpg"), "wb") as handle:
        handle.write(_photo())
    locators = {i.provenance.locator for i in iter_folder(tmp_path)}
    assert len(locators) == 2
    assert {locator_bytes(x) for x in locators} == {
        os.fsencode(tmp_path / "caf\\xe9.jpg"),
        os.path.join(os.fsencode(tmp_path), b"caf\xe9.jpg"),
    }


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=40).filter(lambda b: b"\x00" not in b))
def test_locators_round_trip_any_path_bytes(raw):
    locator = path_locator(b"/photos/" + raw)
    locator.encode("utf-8")  # no lone surrogates
    assert "\x00" not in locator
    assert locator_bytes(locator) == b"/photos/" + raw


def test_a_stray_backslash_is_not_a_locator():
    with pytest.raises(ValueError):
        locator_bytes("/photos/a\\q.jpg")


def test_a_fifo_in_a_folder_is_a_failure_not_a_hang(tmp_path):
    os.mkfifo(tmp_path / "pipe.jpg")
    (tmp_path / "ok.jpg").write_bytes(_photo())
    items = _by_name(iter_folder(tmp_path))
    assert isinstance(items["pipe.jpg"], SourceFailure)
    assert "FIFO" in str(items["pipe.jpg"].error)
    assert isinstance(items["ok.jpg"], SourceItem)


def test_a_socket_and_a_dangling_link_are_failures(tmp_path):
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "sock.png"))
        os.symlink(tmp_path / "nowhere.jpg", tmp_path / "dangling.jpg")
        items = _by_name(iter_folder(tmp_path))
    assert "socket" in str(items["sock.png"].error)
    assert "does not exist" in str(items["dangling.jpg"].error)


def test_reading_a_fifo_named_directly_never_blocks(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    item = SourceItem(_prov(fifo), path=fifo)
    done = threading.Event()
    errors = []

    def read():
        try:
            item.read(1000)
        except InputError as exc:
            errors.append(exc)
        done.set()

    threading.Thread(target=read, daemon=True).start()
    assert done.wait(5), "reading a FIFO blocked"
    assert errors and "FIFO" in str(errors[0])


def _prov(path: Path) -> Provenance:
    return Provenance("folder", path_locator(path))


def test_a_device_is_refused_without_reading_it():
    with pytest.raises(InputError, match="character device"):
        read_regular_file(Path("/dev/zero"), 10)


def test_the_size_limit_holds_and_bad_paths_are_input_errors(tmp_path):
    big = tmp_path / "big.jpg"
    big.write_bytes(b"x" * 101)
    with pytest.raises(ImageTooLargeError, match="FACELEDGER_MAX_FILE_BYTES"):
        read_regular_file(big, 100)
    assert read_regular_file(big, 101) == b"x" * 101
    with pytest.raises(InputError):
        read_regular_file(tmp_path / "a\x00b.jpg", 100)
    with pytest.raises(InputError):
        read_regular_file(tmp_path / ("x" * 300 + ".jpg"), 100)
    with pytest.raises(InputError, match="directory"):
        read_regular_file(tmp_path, 100)


def test_a_folder_argument_that_is_a_fifo_is_a_failure(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    (failure,) = list(iter_folder(tmp_path / "pipe"))
    assert isinstance(failure, SourceFailure)
    assert "FIFO" in str(failure.error)
