"""A live `faceledger serve` over a real library, for the console's browser and session tests.

The library is built with the CLI from shared photos: img1 and img3 searchable, img4 (the same
person as img1 and the probe img2) uploaded from Illinois and so blocked, img20 searchable (the
opt-out selfie img21 shows the same person). Users: the owner (admin), sam (searcher), cara
(custodian, attested), audrey (auditor), each with a password; the policy is published.
Also used by tools/screenshots.py.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx
from helpers import vault_face_count

DATASET = ("faces", "deepface", "tests", "unit", "dataset")
#: (file, uploader region)
GALLERY = [("img1.jpg", ""), ("img3.jpg", ""), ("img4.jpg", "US-IL"), ("img20.jpg", "")]
USERS = {"owner": "admin", "sam": "searcher", "cara": "custodian", "audrey": "auditor"}
PASSWORD = "correct horse battery staple"
ROOT = Path(__file__).resolve().parents[1]
#: The `faceledger` command, run by this interpreter (whatever venv the tests run in).
FACELEDGER = [sys.executable, "-c", "import sys; from faceledger.cli import app; sys.exit(app())"]


@dataclass
class Live:
    """A running service and what the tests need to know about its library."""

    base_url: str
    library: Path
    tmpdir: Path
    data: Path
    keys: dict[str, str]
    process: subprocess.Popen
    env: dict[str, str] = field(repr=False)

    def client(self, **kwargs) -> httpx.Client:
        """An HTTP client for the service (cookies kept; redirects not followed)."""
        return httpx.Client(base_url=self.base_url, timeout=60, **kwargs)

    def cli(self, *args: str, user: str | None = None, stdin: str | None = None) -> str:
        """Run the CLI against the library (in this process); its stdout (must exit 0)."""
        key = self.keys.get(user) if user and user != "owner" else None  # as that user would
        return _run(self.library, *args, user=user, stdin=stdin, key=key)

    def audit(self, *filters: str) -> list[dict]:
        """Audit entries, exported as the owner's auditor would (`audit export --json`)."""
        return json.loads(self.cli("audit", "export", "--json", *filters, user="audrey"))

    def stop(self) -> None:
        """Stop the service."""
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(library: Path, *args: str, user: str | None = None, stdin: str | None = None,
         key: str | None = None) -> str:
    """The CLI in this process (one import of the face model for the whole build)."""
    from typer.testing import CliRunner

    from faceledger.cli import app

    argv = ["--library", str(library), *(["--as", user] if user else []), *args]
    env = {"FACELEDGER_API_KEY": key} if key else None  # acting as a user takes their key
    result = CliRunner().invoke(app, argv, input=stdin, env=env, catch_exceptions=False)
    assert result.exit_code == 0, (args, result.output)
    return result.stdout


def build_library(base: Path, data: Path) -> tuple[Path, dict[str, str]]:
    """A library made with the CLI from the gallery; the users' API keys.

    Keys and passwords are hashed with cheap argon2 parameters (verification reads them from
    each hash), so the many sign-ins of the tests cost little.
    """
    from argon2 import PasswordHasher

    from faceledger.app.governance import users

    saved = users._hasher
    users._hasher = PasswordHasher(time_cost=1, memory_cost=1024)
    try:
        return _build(base, data)
    finally:
        users._hasher = saved


def _build(base: Path, data: Path) -> tuple[Path, dict[str, str]]:
    library = base / "library"
    src = base / "src"
    src.mkdir()
    lines = ["path,source_url,page_url,uploader_region"]
    for name, region in GALLERY:
        shutil.copy(data / name, src / name)
        lines.append(f"{name},https://cdn.example.org/{name},https://example.org/p/{name},{region}")
    (src / "manifest.csv").write_text("\n".join(lines) + "\n")
    _run(library, "init")
    summary = json.loads(_run(library, "ingest", "--manifest", str(src / "manifest.csv"),
                              "--json"))  # fmt: skip
    assert not summary["errors"] and "faces_blocked" not in summary, summary  # owner: no vault
    assert vault_face_count(library) == 1
    keys = {}
    for name, role in USERS.items():
        if name != "owner":
            _run(library, "users", "add", name, "--role", role)
        keys[name] = json.loads(_run(library, "users", "key", name, "--json"))["api_key"]
        _run(library, "users", "password", name, stdin=f"{PASSWORD}\n{PASSWORD}\n")
    statement = base / "statement.txt"
    statement.write_text("I will use vault access only for legal obligations.\n")
    _run(library, "attest", "cara", "--statement-file", str(statement), user="cara",
         key=keys["cara"])
    _run(library, "policy", "publish", "--out", str(library / "public"),
         "--organisation", "Example Faces Inc.")  # fmt: skip
    return library, keys


def start(base: Path, data: Path, **settings: str) -> Live:
    """Build the library under ``base`` and serve it on a free port of 127.0.0.1."""
    tmpdir = base / "tmp"
    tmpdir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACELEDGER_")}
    env.update({"PYTHONPATH": str(ROOT / "src"), "TMPDIR": str(tmpdir),
                "OPENBLAS_NUM_THREADS": "1", "FACELEDGER_WORKERS": "1"})  # fmt: skip
    env.update({f"FACELEDGER_{k.upper()}": v for k, v in settings.items()})
    library, keys = build_library(base, data)
    port = _free_port()
    log = (base / "serve.log").open("wb")
    process = subprocess.Popen(
        [*FACELEDGER, "--library", str(library), "serve",
         "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    live = Live(f"http://127.0.0.1:{port}", library, tmpdir, data, keys, process, env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError((base / "serve.log").read_text())
        try:
            if httpx.get(f"{live.base_url}/healthz", timeout=2).status_code == 200:
                return live
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    live.stop()
    raise RuntimeError("faceledger serve did not answer within 120 s")
