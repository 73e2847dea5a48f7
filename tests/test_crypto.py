"""AES-GCM vector sealing, key ids, key files and rotation."""

from __future__ import annotations

import base64
import hashlib
import os
import stat

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from faceledger.catalog.crypto import (
    KEY_ENV,
    AesGcmSealer,
    DecryptionError,
    generate_key_file,
    key_id,
    load_key,
)
from faceledger.catalog.vectors import VectorSealer, from_blob, to_blob
from faceledger.errors import ConfigError, KeyMissingError

DATA = np.arange(128, dtype="<f4").tobytes()


@pytest.fixture
def k1():
    return os.urandom(32)


@pytest.fixture
def k2():
    return os.urandom(32)


def test_key_id_is_a_short_sha256(k1):
    assert key_id(k1) == hashlib.sha256(k1).hexdigest()[:16]
    assert len(key_id(k1)) == 16


def test_round_trip(k1):
    sealer: VectorSealer = AesGcmSealer({key_id(k1): k1}, key_id(k1))
    blob = sealer.seal(DATA)
    assert DATA not in blob and len(blob) == 12 + len(DATA) + 16
    assert sealer.seal(DATA) != blob  # a fresh nonce each time
    assert sealer.open(blob, sealer.key_id) == DATA


def test_round_trip_of_a_vector(k1):
    sealer = AesGcmSealer.from_keys(k1)
    vector = np.random.default_rng(0).standard_normal(128).astype(np.float32)
    blob = to_blob(vector, sealer)
    np.testing.assert_array_equal(from_blob(blob, sealer.key_id, sealer), vector)


def test_plain_blobs_pass_through(k1):
    # Vectors stored before the library had a key carry no key id.
    assert AesGcmSealer.from_keys(k1).open(DATA, None) == DATA


def test_wrong_key_fails(k1, k2):
    blob = AesGcmSealer.from_keys(k1).seal(DATA)
    other = AesGcmSealer.from_keys(k2)
    # The blob is labelled with k2's id (say, a mixed-up row) but was sealed with k1.
    with pytest.raises(DecryptionError, match="does not match or the stored blob was altered"):
        other.open(blob, other.key_id)


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[:20] + bytes([b[20] ^ 1]) + b[21:],  # one ciphertext bit
        lambda b: bytes([b[0] ^ 1]) + b[1:],  # the nonce
        lambda b: b[:-1],  # the tag cut short
        lambda b: b[:10],  # not even a nonce and a tag
    ],
)
def test_tampered_blob_fails(k1, damage):
    sealer = AesGcmSealer.from_keys(k1)
    with pytest.raises(DecryptionError):
        sealer.open(damage(sealer.seal(DATA)), sealer.key_id)


def test_blob_from_another_use_of_the_key_fails(k1):
    # Associated data ties blobs to this format: same key, other purpose, no open.
    nonce = os.urandom(12)
    foreign = nonce + AESGCM(k1).encrypt(nonce, DATA, b"something-else")
    with pytest.raises(DecryptionError):
        AesGcmSealer.from_keys(k1).open(foreign, key_id(k1))


def test_missing_key_raises_key_missing(k1, k2):
    blob = AesGcmSealer.from_keys(k1).seal(DATA)
    with pytest.raises(KeyMissingError) as caught:
        AesGcmSealer.from_keys(k2).open(blob, key_id(k1))
    message = str(caught.value)
    assert key_id(k1) in message and KEY_ENV in message and "--key-file" in message


def test_rotation(k1, k2):
    old = AesGcmSealer.from_keys(k1)
    old_blob = old.seal(DATA)
    rotated = AesGcmSealer.from_keys(k2, k1)
    assert rotated.key_id == key_id(k2)
    assert rotated.key_ids == {key_id(k1), key_id(k2)}
    assert rotated.open(old_blob, key_id(k1)) == DATA
    new_blob = rotated.seal(DATA)
    assert rotated.open(new_blob, rotated.key_id) == DATA
    # Blobs sealed after rotation need the new key.
    with pytest.raises(KeyMissingError):
        old.open(new_blob, rotated.key_id)
    # Same thing through the plain constructor.
    same = AesGcmSealer({key_id(k1): k1, key_id(k2): k2}, current=key_id(k2))
    assert same.open(new_blob, key_id(k2)) == same.open(old_blob, key_id(k1)) == DATA


@pytest.mark.parametrize(
    "make",
    [
        lambda k1, k2: ({key_id(k1): k2}, key_id(k1)),  # key filed under another key's id
        lambda k1, k2: ({key_id(k1): k1}, key_id(k2)),  # current key not given
        lambda k1, k2: ({key_id(k1[:16]): k1[:16]}, key_id(k1[:16])),  # AES-128 key
    ],
)
def test_bad_sealer_configuration(k1, k2, make):
    keys, current = make(k1, k2)
    with pytest.raises(ConfigError):
        AesGcmSealer(keys, current)


# -- key files and the environment ------------------------------------------------------------


def test_generate_key_file_is_private(tmp_path):
    path = tmp_path / "library.key"
    old_umask = os.umask(0)  # even a permissive umask must not widen the mode
    try:
        kid = generate_key_file(path)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = load_key(str(path), {})
    assert key is not None and len(key) == 32 and key_id(key) == kid


def test_generate_key_file_refuses_to_overwrite(tmp_path):
    path = tmp_path / "library.key"
    generate_key_file(path)
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        generate_key_file(path)
    assert path.read_bytes() == before


def test_load_key_from_environment(k1):
    assert load_key(None, {KEY_ENV: base64.b64encode(k1).decode()}) == k1
    assert load_key(None, {}) is None


def test_key_file_wins_over_environment(tmp_path, k1, k2):
    path = tmp_path / "k"
    path.write_text(base64.b64encode(k1).decode() + "\n")
    assert load_key(path, {KEY_ENV: base64.b64encode(k2).decode()}) == k1


def test_missing_key_file(tmp_path):
    with pytest.raises(KeyMissingError, match="does not exist"):
        load_key(tmp_path / "nope.key", {})


@pytest.mark.parametrize("content", ["not base64 !!", base64.b64encode(b"short").decode(), ""])
def test_bad_key_text(tmp_path, content):
    path = tmp_path / "k"
    path.write_text(content)
    with pytest.raises(ConfigError):
        load_key(path, {})
    with pytest.raises(ConfigError):
        load_key(None, {KEY_ENV: content or "@@"})
