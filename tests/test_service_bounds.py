"""Bounds on the web service: concurrent searches, bytes and pixels a request, API key checks, ids.

Memory- and CPU-heavy cases are simulated cheaply: a 70-byte PNG whose header declares
10000 x 10000 pixels, low configured limits, a request that holds its slot by sending its body
slowly. Servers bind to 127.0.0.1 only and are stopped by their fixture.
"""

from __future__ import annotations

import asyncio
import io
import secrets
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace

import httpx2
import pytest
import uvicorn
from argon2 import PasswordHasher, extract_parameters
from conftest import make_settings
from fastapi.testclient import TestClient
from helpers import cli
from PIL import Image

from faceledger.app import probes as probe_reading
from faceledger.app.governance import users
from faceledger.app.library import Library
from faceledger.config import Settings
from faceledger.errors import ConfigError, NotFoundError
from faceledger.service import create_app
from faceledger.service.bounds import RequestTooLargeError, check_pixel_budget, declared_pixels
from faceledger.service.uploads import read_multipart


# -- helpers -----------------------------------------------------------------------------------
def declared_png(width: int, height: int) -> bytes:
    """A 1x1 PNG whose header (IHDR) declares ``width`` x ``height``: tiny, and never decoded."""
    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    assert data[12:16] == b"IHDR"  # after the 8-byte signature and the chunk's length
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def blank_png(size: int = 20) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), "white").save(buf, "PNG")
    return buf.getvalue()


class CountingHasher(PasswordHasher):
    """The default argon2 parameters, counting verifications (thread-safe)."""

    def __init__(self):
        super().__init__()
        self.verified = 0
        self._lock = threading.Lock()

    def verify(self, hash, password):
        with self._lock:
            self.verified += 1
        return super().verify(hash, password)


@pytest.fixture
def hasher(monkeypatch) -> CountingHasher:
    counting = CountingHasher()
    monkeypatch.setattr(users, "_hasher", counting)
    return counting


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> tuple[Settings, dict[str, str]]:
    """A library with no photos, its owner and a searcher; their API keys (real argon2)."""
    settings = make_settings(tmp_path_factory.mktemp("bounds") / "library")
    lib = Library.create(settings)
    try:
        owner = lib.actor(None)
        users.add_user(lib, owner, "sam", "searcher")
        keys = {n: users.new_api_key(lib, owner, n)["api_key"] for n in (owner.name, "sam")}
    finally:
        lib.close()
    return settings, keys


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def wrong_key(prefix: str | None = None) -> str:
    """A well-formed key that is not valid: a given (known) prefix, or a random one."""
    return f"flk_{prefix or secrets.token_hex(4)}_{secrets.token_urlsafe(32)}"


def prefix_of(key: str) -> str:
    return key.split("_")[1]


def probes(*named: tuple[str, bytes]) -> list:
    return [("images", (name, data, "image/png")) for name, data in named]


@contextmanager
def serving(app) -> Iterator[str]:
    """A real uvicorn server on 127.0.0.1 (any free port), stopped on leaving."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def client_from(url: str, address: str) -> httpx2.Client:
    """A client whose connections come from ``address`` (all of 127/8 is loopback on Linux)."""
    transport = httpx2.HTTPTransport(local_address=address)
    return httpx2.Client(base_url=url, transport=transport, timeout=30)


# -- bytes and pixels --------------------------------------------------------------------------
def test_request_bytes_over_the_limit_is_413(base):
    settings, keys = base
    small = replace(settings, request_max_bytes=10_000)
    with TestClient(create_app(small)) as client:
        # Each file is well under max_file_bytes; together they are over the request's limit.
        files = probes(("a.png", b"x" * 6000), ("b.png", b"y" * 6000))
        r = client.post("/search", headers=bearer(keys["sam"]), files=files)
    assert r.status_code == 413, r.text
    assert r.json()["error"] == "RequestTooLargeError"
    assert "10,000 bytes" in r.json()["message"]
    assert "FACELEDGER_REQUEST_MAX_BYTES" in r.json()["message"]


def test_request_bytes_are_counted_as_they_arrive():
    """A chunked body declares no length: the limit holds while reading, on what has arrived."""
    sent = []

    async def body():
        head = b'--b\r\nContent-Disposition: form-data; name="images"; filename="a.png"\r\n\r\n'
        for chunk in (head, b"x" * 4000, b"x" * 4000, b"x" * 4000, b"never read"):
            sent.append(len(chunk))
            yield chunk

    with pytest.raises(RequestTooLargeError, match="8,000 bytes"):
        asyncio.run(
            read_multipart(
                "multipart/form-data; boundary=b", body(), file_field="images", text_fields=(),
                max_file_bytes=1_000_000, max_files=16, max_body_bytes=8_000,
            )
        )  # fmt: skip
    assert len(sent) == 3  # refused at the chunk that went over (8,072), not at the end


def test_declared_pixels_are_read_from_the_header():
    huge = declared_png(10_000, 10_000)
    assert len(huge) < 100
    assert declared_pixels(huge) == 100_000_000
    assert declared_pixels(b"not an image") is None
    assert check_pixel_budget([("a", blank_png(20)), ("b", blank_png(20))], 800) == 800


def test_a_probe_declaring_more_pixels_than_the_budget_is_413_before_decoding(base, monkeypatch):
    settings, keys = base

    def no_decoding(*_args, **_kwargs):
        raise AssertionError("a probe was decoded")

    monkeypatch.setattr(probe_reading, "decode_image", no_decoding)
    with TestClient(create_app(settings)) as client:
        started = time.monotonic()
        files = probes(("small.png", blank_png()), ("huge.png", declared_png(10_000, 10_000)))
        r = client.post("/search", headers=bearer(keys["sam"]), files=files)
        elapsed = time.monotonic() - started
    assert r.status_code == 413, r.text
    body = r.json()
    assert body["error"] == "RequestTooLargeError"
    assert "huge.png" in body["message"] and "100,000,000 pixels" in body["message"]
    assert "50,000,000" in body["message"] and "FACELEDGER_REQUEST_MAX_PIXELS" in body["message"]
    assert elapsed < 2, elapsed  # the measured cost was 9 s a probe


def test_the_pixel_budget_is_for_all_probes_together(base):
    settings, keys = base
    low = replace(settings, request_max_pixels=1000)
    with TestClient(create_app(low)) as client:
        three = probes(*[(f"p{i}.png", blank_png(20)) for i in (1, 2, 3)])  # 400 pixels each
        r = client.post("/search", headers=bearer(keys["sam"]), files=three)
        assert r.status_code == 413, r.text
        assert "p3.png" in r.json()["message"] and "1,200" in r.json()["message"]
        r = client.post("/search", headers=bearer(keys["sam"]), files=three[:2])
        assert r.status_code == 200, r.text
        assert [e["faces"] for e in r.json()] == [[], []]


# -- concurrency -------------------------------------------------------------------------------
def test_searches_over_the_concurrency_cap_get_503_with_retry_after(base):
    settings, keys = base
    app = create_app(replace(settings, service_max_concurrent=1))
    boundary = "slowboundary"
    png = declared_png(10_000, 10_000)
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="images"; filename="slow.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    release = threading.Event()

    def slow_body():
        # Half the body, then nothing until the test has seen the cap: the slot is held meanwhile.
        yield head + png[:20]
        release.wait(20)
        yield png[20:] + f"\r\n--{boundary}--\r\n".encode()

    with serving(app) as url, client_from(url, "127.0.0.1") as client:
        headers = {
            **bearer(keys["sam"]),
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        }
        with ThreadPoolExecutor(1) as pool:
            slow = pool.submit(client.post, "/search", headers=headers, content=slow_body())
            deadline = time.monotonic() + 10
            while True:
                files = probes(("fast.png", png))
                r = client.post("/search", headers=bearer(keys["sam"]), files=files)
                if r.status_code == 503 or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"].isdigit()
            assert "FACELEDGER_SERVICE_MAX_CONCURRENT" in r.json()["message"]
            assert "busy" in r.json()["message"]
            # Not heavy: answered while the slot is taken.
            assert client.get("/healthz").status_code == 200
            assert client.get("/stats", headers=bearer(keys["sam"])).status_code == 200
            release.set()
            assert slow.result(timeout=20).status_code == 413  # over the pixel budget
        # The slot came back, even though the slow request ended in an error.
        r = client.post("/search", headers=bearer(keys["sam"]), files=probes(("p.png", png)))
        assert r.status_code == 413, r.text


# -- API keys ----------------------------------------------------------------------------------
def test_a_key_costs_one_argon2_check_whether_or_not_its_prefix_exists(base, hasher):
    settings, keys = base
    lib = Library.open(settings)
    try:
        with lib.catalog.engine.connect() as conn:
            for key in (wrong_key(prefix_of(keys["sam"])), wrong_key()):
                before = hasher.verified
                assert users.verify_api_key(conn, key) is None
                assert hasher.verified == before + 1, key
            before = hasher.verified
            for malformed in ("garbage", "flk_XYZ_abc", "flk_0000000g_abc", "flk_" + "a" * 200):
                assert users.verify_api_key(conn, malformed) is None
            assert hasher.verified == before  # a malformed key costs no hashing
            assert users.verify_api_key(conn, keys["sam"])[1] == "sam"
    finally:
        lib.close()
    # The dummy hash costs what a real one does: the same argon2 parameters.
    assert extract_parameters(users._dummy_hash()) == extract_parameters(hasher.hash("x"))


def test_verified_keys_are_cached_and_revocation_is_immediate(base, hasher):
    settings, _ = base
    lib = Library.open(settings)
    owner = lib.actor(None)
    users.add_user(lib, owner, "rev", "searcher")
    old = users.new_api_key(lib, owner, "rev")["api_key"]
    app = create_app(replace(settings, key_cache_seconds=30))
    auth = app.state.faceledger.auth
    now = [1000.0]
    auth.clock = lambda: now[0]
    try:
        with TestClient(app) as client:
            before = hasher.verified
            for _ in range(5):
                assert client.get("/stats", headers=bearer(old)).status_code == 200
            assert hasher.verified == before + 1  # verified once, then cached
            now[0] += 31  # past the cache's TTL: verified again
            assert client.get("/stats", headers=bearer(old)).status_code == 200
            assert hasher.verified == before + 2
            new = users.new_api_key(lib, owner, "rev")["api_key"]  # revokes the old key
            r = client.get("/stats", headers=bearer(old))
            assert r.status_code == 401 and "revoked" in r.json()["message"]
            assert client.get("/stats", headers=bearer(new)).status_code == 200
            users.disable_user(lib, owner, "rev")
            assert client.get("/stats", headers=bearer(new)).status_code == 401
    finally:
        lib.close()


def test_failed_key_checks_are_limited_per_address(base, hasher):
    """127.0.0.2 runs out of tries; 127.0.0.3, on the same server, is not affected."""
    settings, keys = base
    app = create_app(replace(settings, auth_failures_per_minute=3))
    with (
        serving(app) as url,
        client_from(url, "127.0.0.2") as second,
        client_from(url, "127.0.0.3") as third,
    ):
        # A new random prefix each time, so only the address's budget runs out.
        codes = [second.get("/stats", headers=bearer(wrong_key())).status_code for _ in range(5)]
        assert codes == [401, 401, 401, 429, 429]
        r = second.get("/stats", headers=bearer(wrong_key()))
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.json()["error"] == "TooManyRequests" and "retry in" in r.json()["message"]
        assert hasher.verified == 3  # refused tries cost no argon2
        assert third.get("/stats", headers=bearer(wrong_key())).status_code == 401
        assert third.get("/stats", headers=bearer(keys["sam"])).status_code == 200


def test_failed_key_checks_are_limited_per_prefix_but_a_cached_key_still_works(base, hasher):
    settings, keys = base
    app = create_app(replace(settings, auth_failures_per_minute=3))
    target = prefix_of(keys["sam"])
    with serving(app) as url:
        with client_from(url, "127.0.0.9") as own:
            assert own.get("/stats", headers=bearer(keys["sam"])).status_code == 200  # cached
        codes = []
        for n in range(4, 8):  # a new address each time: only the prefix's budget runs out
            with client_from(url, f"127.0.0.{n}") as other:
                codes.append(other.get("/stats", headers=bearer(wrong_key(target))).status_code)
        assert codes == [401, 401, 401, 429]
        with client_from(url, "127.0.0.9") as own:
            assert own.get("/stats", headers=bearer(keys["sam"])).status_code == 200


def test_a_flood_of_bad_keys_keeps_healthz_fast(base, hasher):
    """40 clients sending bad keys with a known prefix, as fast as they are answered.

    Without the limits this flood ran ~300 argon2 checks and /healthz took 15 s here; with them,
    3 checks and /healthz answered in well under a second.
    """
    settings, keys = base
    app = create_app(replace(settings, auth_failures_per_minute=3))
    bad = bearer(wrong_key(prefix_of(keys["owner"])))
    with serving(app) as url:
        stop = threading.Event()
        codes: list[int] = []

        def flood():
            with client_from(url, "127.0.0.2") as client:
                while not stop.is_set():
                    codes.append(client.get("/stats", headers=bad).status_code)

        with ThreadPoolExecutor(40) as pool:  # the service's thread pool has 40 threads
            for _ in range(40):
                pool.submit(flood)
            latencies = []
            with client_from(url, "127.0.0.3") as probe:
                time.sleep(0.3)  # the flood is on
                for _ in range(10):
                    started = time.monotonic()
                    assert probe.get("/healthz").status_code == 200
                    latencies.append(time.monotonic() - started)
                    time.sleep(0.1)
            stop.set()
    assert len(codes) > 50, len(codes)
    assert set(codes) == {401, 429} and codes.count(401) <= 3
    assert hasher.verified <= 3  # only the 3 allowed failures ran argon2
    # The median, not the max: on a loaded 2-core runner one request can wait for a core; the
    # unbounded flood made every request take seconds (15 s here).
    assert sorted(latencies)[len(latencies) // 2] < 1.0, latencies


def test_auth_settings_are_validated():
    for name in ("SERVICE_MAX_CONCURRENT", "REQUEST_MAX_BYTES", "REQUEST_MAX_PIXELS",
                 "AUTH_FAILURES_PER_MINUTE"):  # fmt: skip
        with pytest.raises(ConfigError, match=name):
            Settings.from_env(environ={f"FACELEDGER_{name}": "0"})
    with pytest.raises(ConfigError, match="key_cache_seconds"):
        Settings.from_env(environ={"FACELEDGER_KEY_CACHE_SECONDS": "-1"})


# -- ids out of range --------------------------------------------------------------------------
OUT_OF_RANGE = [2**63, 99999999999999999999, -1]


@pytest.mark.parametrize("kind", ["photos", "faces"])
def test_ids_out_of_range_are_404_like_a_missing_id(base, kind):
    settings, keys = base
    with TestClient(create_app(settings)) as client:
        missing = client.get(f"/{kind}/999999", headers=bearer(keys["sam"]))
        assert missing.status_code == 404
        for value in OUT_OF_RANGE:
            r = client.get(f"/{kind}/{value}", headers=bearer(keys["sam"]))
            assert r.status_code == 404, (value, r.text)
            assert r.json() == {
                "error": "NotFoundError",
                "message": missing.json()["message"].replace("999999", str(value)),
            }
        assert client.get(f"/{kind}/{2**63 - 1}", headers=bearer(keys["sam"])).status_code == 404


@pytest.mark.parametrize("kind", ["photo", "face"])
def test_cli_show_with_an_id_out_of_range_is_a_clear_error(base, kind):
    settings, _ = base
    for value in ("99999999999999999999", str(2**63)):
        result = cli(settings.library, "show", kind, value)
        assert result.exit_code == NotFoundError.exit_code != 0, result.output
        assert f"no {kind} with id {value}" in result.output
        assert "Traceback" not in result.output
    lib = Library.open(settings)
    try:
        show = lib.show_photo if kind == "photo" else lib.show_face
        with pytest.raises(NotFoundError, match=f"no {kind} with id -1"):
            show(lib.actor(None), -1)
    finally:
        lib.close()
