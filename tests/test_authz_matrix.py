"""Every command against every role, allowed or refused exactly as policy/roles.py says.

Driven from PERMISSIONS: an action added there without a command here fails
``test_every_action_has_a_command``, so the matrix cannot drift from the code.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer
from argon2 import PasswordHasher
from conftest import make_settings, shared_path
from governance_support import open_copy
from helpers import api_key, cli
from PIL import Image, ImageOps
from sqlalchemy import select

from faceledger.app.governance import attestations, users
from faceledger.app.library import Library
from faceledger.catalog import schema as t
from faceledger.cli import app
from faceledger.policy import ACTIONS, PERMISSIONS, ROLES

USER_OF = {"admin": "owner", "searcher": "sam", "custodian": "cara", "auditor": "audrey"}
_serial = itertools.count()

pytest_plugins = ["governance_fixtures"]  # its seeded-library fixtures


@dataclass
class World:
    root: Path
    files: Path
    searchable_face: int
    blocked_face: int
    erasable_face: int


def _people(lib: Library, files: Path) -> None:
    owner = lib.actor(None)
    for role, name in USER_OF.items():
        if role != "admin":
            users.add_user(lib, owner, name, role)
    statement = files / "statement.txt"
    statement.write_text("I will use vault access only for legal obligations.\n")
    attestations.attest(lib, lib.actor("cara"), "cara", statement)


@pytest.fixture(scope="module")
def world(seeded_template, tmp_path_factory) -> World:
    base = tmp_path_factory.mktemp("authz")
    files = base / "files"
    files.mkdir()
    (files / "empty").mkdir()
    (files / "release.txt").write_text("I consent to face search for the stated purpose.\n")
    (files / "statement.txt").write_text("I will use my access only as permitted.\n")
    (files / "sites.csv").write_text("domain,publisher,publisher_region\nexample.org,Ex,US-NY\n")
    selfie = shared_path("faces", "deepface", "tests", "unit", "dataset", "img55.jpg")
    (files / "selfie.jpg").write_bytes(selfie.read_bytes())
    s = open_copy(seeded_template, base / "library")
    _people(s.lib, files)
    s.lib.close()
    return World(
        s.root, files, s.faces["img1.jpg"][0], s.faces["img5.jpg"][0], s.faces["img3.jpg"][0]
    )


def _key_rotate(world: World, tmp: Path) -> tuple[Path, list[str]]:
    # Rotation re-keys the library: it gets a fresh (empty) library of its own.
    from conftest import make_settings

    root = tmp / f"rot{next(_serial)}" / "library"
    lib = Library.create(make_settings(root))
    _people(lib, world.files)
    lib.close()
    return root, ["key", "rotate", "--new-key-file", str(tmp / f"new{next(_serial)}.key")]


def _probe() -> str:
    return str(shared_path("faces", "deepface", "tests", "unit", "dataset", "img2.jpg"))


#: action -> argv builder (world, acting user) for the command that performs it.
COMMANDS = {
    "ingest": lambda w, u: ["ingest", str(w.files / "empty")],
    "search": lambda w, u: ["search", _probe()],
    "show": lambda w, u: ["show", "face", str(w.searchable_face)],
    "stats": lambda w, u: ["stats"],
    "reindex": lambda w, u: ["reindex"],
    "vault.read": lambda w, u: ["show", "face", str(w.blocked_face)],
    "users.manage": lambda w, u: ["users", "add", f"new{next(_serial)}", "--role", "searcher"],
    "users.list": lambda w, u: ["users", "list"],
    "attest": lambda w, u: ["attest", u, "--statement-file", str(w.files / "statement.txt")],
    "hold.manage": lambda w, u: ["hold", "create", "--matter", "m-1", "--scope", "jurisdiction=FR"],
    "hold.list": lambda w, u: ["hold", "list"],
    "retention.run": lambda w, u: ["retention", "run"],
    "erase": lambda w, u: ["erase", "--face", str(w.erasable_face)],
    "consent.record": lambda w, u: [
        "consent",
        "record",
        "--subject",
        "p-1",
        "--purpose",
        "search",
        "--term",
        "3 years",
        "--release-file",
        str(w.files / "release.txt"),
    ],
    "consent.list": lambda w, u: ["consent", "list"],
    "audit.verify": lambda w, u: ["audit", "verify"],
    "audit.export": lambda w, u: ["audit", "export", "--json"],
    "key.rotate": None,  # special: see _key_rotate
    # Commands of other issues, run here once they exist (argument-free ones only).
    "sites.list": lambda w, u: ["sites", "list"],
    "sites.import": lambda w, u: ["sites", "import", str(w.files / "sites.csv")],
    "optout.submit": lambda w, u: [
        "optout",
        "submit",
        "--photo",
        str(w.files / "selfie.jpg"),
        "--region",
        "US-IL",
        "--name",
        f"Subject of {u}",
    ],
    "policy.show": lambda w, u: ["policy", "show"],
    "policy.publish": lambda w, u: ["policy", "publish", "--out", str(w.files / f"pub-{u}")],
    "discovery.count": lambda w, u: ["discovery", "count"],
    "discovery.sources": lambda w, u: ["discovery", "sources"],
    "discovery.vector_dates": lambda w, u: ["discovery", "vector-dates"],
    "discovery.people": lambda w, u: ["discovery", "people"],
    "discovery.locate": lambda w, u: ["discovery", "locate", "--face", "1", "--matter", "M"],
    "discovery.produce": lambda w, u: [
        "discovery",
        "produce",
        "--matter",
        f"M-{u}",
        "--prefix",
        "ABC",
        "--out",
        str(w.files / f"prod-{u}"),
        "-j",
        "US",
    ],
    "discovery.report": lambda w, u: [
        "discovery",
        "report",
        "--matter",
        "M",
        "--out",
        str(w.files / f"report-{u}.html"),
    ],
    "discovery.nexus": lambda w, u: ["discovery", "nexus"],
    "discovery.usage": lambda w, u: ["discovery", "usage"],
    # retention-met holds on the seeded library (nothing is due), so it exits 0 when allowed.
    "discovery.compliance": lambda w, u: ["discovery", "compliance", "--rule", "retention-met"],
    "discovery.recount": lambda w, u: ["discovery", "recount"],
    "policy.apply": lambda w, u: ["policy", "apply"],
    "optout.list": lambda w, u: ["optout", "list"],
}
#: Actions with no command to run here yet, and why.
PENDING = {
    "init": "init creates the library and its owner: no user exists to refuse before it",
}
#: Refused by hiding: a blocked face is "not found" for non-custodians (exit 1, not 3).
HIDDEN = {"vault.read"}


def _has_command(argv: list[str]) -> bool:
    group = typer.main.get_command(app)
    for word in argv:
        sub = getattr(group, "commands", None)
        if sub is None:
            return True
        if word not in sub:
            return False
        group = sub[word]
    return True


def test_every_action_has_a_command():
    assert set(ACTIONS) == set(COMMANDS) | set(PENDING)
    assert not set(COMMANDS) & set(PENDING)


@pytest.mark.parametrize(("action", "role"), [(a, r) for a in ACTIONS for r in ROLES])
def test_matrix(world, tmp_path, action, role):
    if action in PENDING:
        pytest.skip(PENDING[action])
    user = USER_OF[role]
    if action == "key.rotate":
        root, argv = _key_rotate(world, tmp_path)
    else:
        root, argv = world.root, COMMANDS[action](world, user)
        if not _has_command(argv):
            pytest.skip(f"`faceledger {' '.join(argv)}` is not built yet")
    result = cli(root, *argv, user=user)
    if role in PERMISSIONS[action]:
        assert result.exit_code == 0, (argv, result.stdout, result.stderr)
    else:
        assert result.exit_code != 0, (argv, result.stdout)
        if action not in HIDDEN or role not in PERMISSIONS["show"]:
            assert result.exit_code == 3, (argv, result.stdout, result.stderr)
            assert f"role {role!r} may not" in result.stderr


def test_custodian_without_attestation_cannot_read_the_vault(world):
    owner_lib = Library.open(__import__("conftest").make_settings(world.root))
    try:
        users.add_user(owner_lib, owner_lib.actor(None), "newcust", "custodian")
    finally:
        owner_lib.close()
    # Without an attestation a blocked face is 'not there', exactly as a missing id ...
    hidden = cli(world.root, "show", "face", str(world.blocked_face), user="newcust")
    missing = cli(world.root, "show", "face", "999999", user="newcust")
    assert hidden.exit_code == missing.exit_code == 4
    assert hidden.stderr.replace(str(world.blocked_face), "N") == missing.stderr.replace(
        "999999", "N"
    )
    # ... while what needs the vault says to sign an attestation first.
    refused = cli(world.root, "discovery", "count", "--blocked", user="newcust")
    assert refused.exit_code == 3 and "attestation" in refused.stderr
    ok = cli(
        world.root,
        "attest",
        "newcust",
        "--statement-file",
        str(world.files / "statement.txt"),
        user="newcust",
    )
    assert ok.exit_code == 0
    assert cli(world.root, "show", "face", str(world.blocked_face), user="newcust").exit_code == 0


# -- the property: without vault access, the library answers as if its blocked photos had never
# been ingested ----------------------------------------------------------------------------------
#: Roles without vault access, by user: an unattested custodian is one of them.
NO_VAULT = {"admin": "owner", "searcher": "sam", "auditor": "audrey", "custodian": "cus2"}
_DATA = ("faces", "deepface", "tests", "unit", "dataset")
_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)?")


@dataclass
class Twins:
    """Two libraries from the same real photos: ``full`` also holds a photo that the policy
    blocks (uploaded from Illinois); ``never`` never ingested it."""

    base: Path
    roots: dict[str, Path]  # "full" | "never" -> library
    files: Path
    hidden_photo: int  # the blocked photo's id in "full" (an id "never" does not have)
    vault_face: int
    vault_sha256: str


def _twin(base: Path, kind: str, files: Path) -> Path:
    from faceledger.app.ingest import ingest

    data = shared_path(*_DATA)
    home = base / kind
    src = home / "src"
    src.mkdir(parents=True)
    for name in ("img8.jpg", "img1.jpg", "img3.jpg"):  # person03, person01, person04
        shutil.copy(data / name, src / name)
    (src / "m1.csv").write_text(
        "path,source_url\nimg8.jpg,https://example.org/8\nimg1.jpg,https://example.org/1\n"
    )
    blocked_row = "img3.jpg,https://example.org/3,US-IL\n" if kind == "full" else ""
    (src / "m2.csv").write_text("path,source_url,uploader_region\n" + blocked_row)
    root = home / "library"
    # One worker: photo and face ids in manifest order, the same in both twins.
    lib = Library.create(dataclasses.replace(make_settings(root), workers=1))
    try:
        owner = lib.actor(None)
        for manifest in ("m1.csv", "m2.csv"):
            assert not ingest(lib, owner, manifests=[src / manifest]).errors
        for name, role in (("sam", "searcher"), ("audrey", "auditor"), ("cara", "custodian"),
                           ("cus2", "custodian")):  # fmt: skip
            users.add_user(lib, owner, name, role)
        attestations.attest(lib, lib.actor("cara"), "cara", files / "statement.txt")
    finally:
        lib.close()
    return root


@pytest.fixture(scope="module")
def twins(tmp_path_factory) -> Twins:
    base = tmp_path_factory.mktemp("twins")
    files = base / "files"
    files.mkdir()
    (files / "statement.txt").write_text("I will use vault access only for legal obligations.\n")
    (files / "sites.csv").write_text("domain,publisher,publisher_region\nexample.org,Ex,US-NY\n")
    selfie = files / "selfie.jpg"  # the blocked person, mirrored: a sure vault match
    ImageOps.mirror(Image.open(shared_path(*_DATA) / "img3.jpg")).save(selfie)
    roots = {kind: _twin(base, kind, files) for kind in ("full", "never")}
    libs = {k: Library.open(make_settings(r)) for k, r in roots.items()}
    try:
        with libs["full"].catalog.engine.connect() as conn:
            vault = conn.execute(
                select(t.faces.c.id, t.photos.c.id, t.photos.c.sha256)
                .select_from(t.faces.join(t.photos)).where(t.faces.c.blocked.is_(True))
            ).all()  # fmt: skip
        photos = {}
        for kind, lib in libs.items():
            with lib.catalog.engine.connect() as conn:
                photos[kind] = conn.execute(
                    select(t.photos.c.id, t.photos.c.sha256).order_by(t.photos.c.id)
                ).all()
    finally:
        for lib in libs.values():
            lib.close()
    assert len(vault) == 1, vault
    face_id, photo_id, sha = vault[0]
    # The same photos have the same ids in both; the blocked one's id is missing from "never".
    assert photos["never"] == [p for p in photos["full"] if p[0] != photo_id]
    assert photo_id > max(p[0] for p in photos["never"])
    twins = Twins(base, roots, files, photo_id, face_id, sha)
    # Keys issued now, hashed with cheap argon2 parameters (verify reads them from the hash):
    # the real ones cost about 0.3 s a command line, which adds up over this module.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024))
        for root in roots.values():
            for name in ("sam", "audrey", "cara", "cus2"):
                api_key(root, name)
    # The same changes in both, as the users would make them (each output compared too).
    for argv, user in _changes(twins):
        assert _same(twins, argv, user) == 0, (argv, user)
    return twins


def _changes(w: Twins) -> list[tuple[list[str], str]]:
    return [
        (["sites", "import", str(w.files / "sites.csv")], "owner"),
        (["hold", "create", "--matter", "M-1", "--scope", "jurisdiction=US-IL"], "owner"),
        (["hold", "create", "--matter", "M-2", "--scope", "all"], "cus2"),
        # An opt-out matching only the vault answers as one matching nothing.
        (["optout", "submit", "--photo", str(w.files / "selfie.jpg"), "--region", "US-IL",
          "--name", "P. Four"], "owner"),  # fmt: skip
        (["optout", "submit", "--photo", str(w.files / "selfie.jpg"), "--region", "US-IL",
          "--name", "P. Four again"], "cus2"),  # fmt: skip
        (["retention", "satisfied", "--face", str(w.vault_face), "--reason", "closed"],
         "owner"),  # fmt: skip
        (["policy", "apply"], "owner"),
    ]


def _reads(w: Twins) -> list[list[str]]:
    n = w.hidden_photo
    return [
        ["stats"],
        *(["show", "photo", str(i)] for i in range(1, n + 2)),
        *(["show", "face", str(i)] for i in range(1, w.vault_face + 2)),
        ["sites", "list"],
        ["hold", "list"],
        ["optout", "list"],
        ["optout", "show", "1"],
        ["optout", "show", "2"],
        # The blocked person as the probe (the service's test searches a searchable one).
        ["search", str(w.files / "selfie.jpg")],
        ["discovery", "count"],
        ["discovery", "count", "--blocked"],
        ["discovery", "sources"],
        ["discovery", "vector-dates"],
        ["discovery", "people"],
        ["policy", "show"],
        ["users", "list"],
        ["consent", "list"],
        ["retention", "run", "--dry-run"],
    ]


def _normalised(w: Twins, kind: str, text: str) -> str:
    """Text with what legitimately differs between the twins made equal: their folders, times."""
    text = text.replace(str(w.base / kind), "<HOME>")
    return _ISO.sub("<TIME>", text)


def _run_both(w: Twins, argv: list[str], user: str) -> dict[str, tuple[int, str]]:
    out = {}
    for kind, root in w.roots.items():
        result = cli(root, *argv, "--json", user=user)
        out[kind] = (result.exit_code, _normalised(w, kind, result.stdout))
    return out


def _same(w: Twins, argv: list[str], user: str) -> int:
    both = _run_both(w, argv, user)
    assert both["full"] == both["never"], (user, argv)
    # A malformed command would be refused alike by both, and so prove nothing.
    assert both["full"][0] != 2, (argv, both["full"])
    return both["full"][0]


@pytest.mark.parametrize("role", list(NO_VAULT))
def test_without_vault_access_the_cli_answers_as_if_blocked_photos_were_never_ingested(
    twins, role
):
    user = NO_VAULT[role]
    for argv in _reads(twins):
        _same(twins, argv, user)


def test_the_twins_differ_for_an_attested_custodian(twins):
    """The check above can fail: with vault access the same commands tell the twins apart."""
    differ = [argv for argv in _reads(twins)
              if len(set(_run_both(twins, argv, "cara").values())) > 1]  # fmt: skip
    assert ["stats"] in differ and ["show", "photo", str(twins.hidden_photo)] in differ
    assert ["show", "face", str(twins.vault_face)] in differ and ["optout", "list"] in differ
    assert ["hold", "list"] in differ and ["sites", "list"] in differ


def _http_keys(root: Path) -> dict[str, str]:
    # The keys the CLI calls use (issued once), and one for the owner, who needs none there.
    keys = {u: api_key(root, u) for u in (*NO_VAULT.values(), "cara") if u != "owner"}
    lib = Library.open(make_settings(root))
    try:
        keys["owner"] = users.new_api_key(lib, lib.actor(None), "owner")["api_key"]
    finally:
        lib.close()
    return keys


def test_without_vault_access_the_service_answers_as_if_blocked_photos_were_never_ingested(
    twins,
):
    from fastapi.testclient import TestClient

    from faceledger.service import create_app

    probe = shared_path(*_DATA, "img2.jpg").read_bytes()
    n, face = twins.hidden_photo, twins.vault_face
    gets = ["/stats", "/discovery/count", "/discovery/count?blocked=true",
            *(f"/photos/{i}" for i in range(1, n + 2)),
            *(f"/faces/{i}" for i in range(1, face + 2))]  # fmt: skip
    answers: dict[str, dict[str, list]] = {}
    for kind, root in twins.roots.items():
        keys = _http_keys(root)
        with TestClient(create_app(make_settings(root))) as client:
            for user, key in keys.items():
                auth = {"Authorization": f"Bearer {key}"}
                got = [(r.status_code, _normalised(twins, kind, r.text))
                       for r in (client.get(path, headers=auth) for path in gets)]  # fmt: skip
                found = client.post("/search", headers=auth,
                                    files=[("images", ("p.jpg", probe, "image/jpeg"))])  # fmt: skip
                got.append((found.status_code, _normalised(twins, kind, found.text)))
                answers.setdefault(user, {})[kind] = got
    for user in NO_VAULT.values():
        assert answers[user]["full"] == answers[user]["never"], user
    differ = [g for g, a, b in zip(gets, *answers["cara"].values(), strict=False) if a != b]
    assert f"/photos/{n}" in differ and f"/faces/{face}" in differ and "/stats" in differ


@pytest.mark.parametrize("user", ["audrey", "cus2"])
def test_audit_export_pseudonymises_the_vault_without_vault_access(twins, user):
    result = cli(twins.roots["full"], "audit", "export", "--json", user=user)
    assert result.exit_code == 0, result.stderr
    entries = json.loads(result.stdout)
    marked = [e for e in entries if e.get("pseudonymised")]
    assert marked, "the vault's ingest and opt-out entries are there, pseudonymised"
    assert twins.vault_sha256 not in result.stdout
    assert "faces_blocked" not in result.stdout and "blocked_faces" not in result.stdout
    for entry in entries:
        for key, ids in entry["object_ids"].items():
            if key in ("faces", "blocked", "unblocked"):
                assert twins.vault_face not in ids, entry
            if key == "photos":
                assert twins.hidden_photo not in ids, entry
    # The same face gets the same pseudonym everywhere, so its entries can still be followed.
    names = {i for e in marked for i in e["object_ids"].get("faces", []) if isinstance(i, str)}
    assert len(names) == 1
    # The stored log is untouched: verify still checks every entry.
    assert json.loads(cli(twins.roots["full"], "audit", "verify", "--json", user=user).stdout)[
        "ok"
    ]
    seen = cli(twins.roots["full"], "audit", "export", "--json", user="cara")
    assert twins.vault_sha256 in seen.stdout and "pseudonymised" not in seen.stdout
