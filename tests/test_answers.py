"""Discovery answers (nexus, usage, compliance) and faithful history, on real photos and a real
library whose history is built with known answers:

- the policy starts without blocking US-IL and allowing private customers, then the default
  policy is applied after some searches (the US-IL photo's faces go to the vault);
- a private customer searches before that;
- a face past retention is held, then released (and so destroyed); another is left due.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from conftest import make_settings, shared_path
from cryptography.hazmat.primitives import serialization
from helpers import cli
from pypdf import PdfReader
from sqlalchemy import text

from faceledger.app.compliance import answer_bytes
from faceledger.app.governance import attestations, holds, retention, users
from faceledger.app.ingest import ingest
from faceledger.app.library import Library
from faceledger.app.policy import apply_policy
from faceledger.app.search import Probe, search_faces
from faceledger.catalog.history import placement_hash, verify_placement_chain
from faceledger.clock import iso
from faceledger.policy import default_policy_text

DATA = ("faces", "deepface", "tests", "unit", "dataset")
OPEN_POLICY = "blocking: []\ncustomers:\n  deny_types: []\n"


@dataclass
class Story:
    root: Path
    files: Path
    photos: dict[str, int]
    faces: dict[str, list[int]]
    searches: dict[str, list[int]]  # user -> their search entry ids
    times: dict[str, datetime]
    entries: dict[str, int]


def _tick() -> None:
    time.sleep(0.02)  # distinct timestamps on either side of a boundary


def _last_entry(lib: Library) -> int:
    from faceledger import audit

    with lib.catalog.engine.connect() as conn:
        return audit.head(conn).id


def _build(root: Path, files: Path, engine) -> Story:
    data = shared_path(*DATA)
    src = files / "src"
    src.mkdir(parents=True)
    lines = ["path,source_url,uploader_region"]
    for name, region in (("img1.jpg", ""), ("img3.jpg", ""), ("img5.jpg", "US-IL")):
        shutil.copy(data / name, src / name)
        lines.append(f"{name},https://example.org/{name},{region}")
    (src / "manifest.csv").write_text("\n".join(lines) + "\n")
    (files / "statement.txt").write_text("I use vault access for legal obligations only.\n")
    probe = Probe("img2.jpg", (data / "img2.jpg").read_bytes())

    lib = Library.create(make_settings(root))
    owner = lib.actor(None)
    times: dict[str, datetime] = {}
    entries: dict[str, int] = {}
    try:
        lib.policy_path.write_text(OPEN_POLICY)
        apply_policy(lib, owner)
        users.add_user(lib, owner, "gov", "searcher", "government", "US-NY")
        users.add_user(lib, owner, "priv", "searcher", "private", "US-CA")
        users.add_user(lib, owner, "staff", "searcher")
        users.add_user(lib, owner, "cara", "custodian")
        users.add_user(lib, owner, "audrey", "auditor")
        attestations.attest(lib, lib.actor("cara"), "cara", files / "statement.txt")
        summary = ingest(lib, owner, manifests=[src / "manifest.csv"])
        assert not summary.errors and summary.faces_blocked == 0
        searches: dict[str, list[int]] = {}
        for who in ("priv", "gov", "staff"):
            search_faces(lib, lib.actor(who), [probe], engine=engine)
            searches.setdefault(who, []).append(_last_entry(lib))
        _tick()
        lib.policy_path.write_text(default_policy_text())
        times["blocked"] = _now()
        moved = apply_policy(lib, owner)
        assert moved["blocked"] >= 1
        entries["policy"] = _last_entry(lib)
        _tick()
        times["after_block"] = _now()
        search_faces(lib, lib.actor("gov"), [probe], engine=engine)
        searches["gov"].append(_last_entry(lib))
        cara = lib.actor("cara")
        (files / "held.txt").write_text("")
        story_photos, story_faces = _ids(lib)
        (files / "held.txt").write_text(f"{story_photos['img3.jpg']}\n")
        hold = holds.create_hold(lib, cara, "Doe v. Acme", f"photos={files / 'held.txt'}")
        retention.mark_purpose_satisfied(lib, owner, "account closed",
                                         face_ids=story_faces["img3.jpg"])  # fmt: skip
        entries["img3_due"] = _last_entry(lib)
        run = retention.run_retention(lib, cara)
        assert run["deferred"] and not run["destroyed_faces"]
        _tick()
        times["held_due"] = _now()
        _tick()
        holds.release_hold(lib, cara, hold["hold"])
        _tick()
        times["released"] = _now()
        _tick()
        retention.mark_purpose_satisfied(lib, owner, "verification finished",
                                         face_ids=story_faces["img1.jpg"])  # fmt: skip
        entries["img1_due"] = _last_entry(lib)
    finally:
        lib.close()
    return Story(root, files, story_photos, story_faces, searches, times, entries)


def _now() -> datetime:
    from faceledger.clock import utcnow

    return utcnow()


def _ids(lib: Library) -> tuple[dict[str, int], dict[str, list[int]]]:
    from faceledger.catalog import schema as t

    with lib.catalog.engine.connect() as conn:
        rows = conn.execute(
            t.photos.join(t.photo_sources).join(t.faces).select()
            .with_only_columns(t.photos.c.id, t.photo_sources.c.locator, t.faces.c.id)
            .order_by(t.faces.c.id)
        ).all()  # fmt: skip
    photos: dict[str, int] = {}
    faces: dict[str, list[int]] = {}
    for photo_id, locator, face_id in rows:
        name = Path(locator.rsplit(":", 1)[-1]).name
        photos[name] = photo_id
        faces.setdefault(name, []).append(face_id)
    return photos, faces


@pytest.fixture(scope="module")
def story_template(tmp_path_factory, engine) -> Story:
    base = tmp_path_factory.mktemp("answers")
    return _build(base / "library", base / "files", engine)


@pytest.fixture
def story(story_template, tmp_path) -> Story:
    """A copy of the story's library (some tests append entries or tamper with it)."""
    root = tmp_path / "library"
    shutil.copytree(story_template.root, root)
    return Story(root, story_template.files, story_template.photos, story_template.faces,
                 story_template.searches, story_template.times, story_template.entries)  # fmt: skip


def _json(story: Story, *args: str, user: str = "cara", code: int = 0, env=None) -> dict:
    result = cli(story.root, *args, "--json", user=user, env=env)
    assert result.exit_code == code, (args, result.stdout, result.stderr)
    return json.loads(result.stdout)


# -- compliance --------------------------------------------------------------------------------
def test_jurisdiction_blocked_names_the_searchable_stretch_and_the_searches_meanwhile(story):
    answer = _json(story, "discovery", "compliance", "--rule", "jurisdiction-blocked=US-IL",
                   code=1)  # fmt: skip
    assert answer["rule"] == "jurisdiction-blocked=US-IL" and answer["held"] is False
    assert sorted(v["face_id"] for v in answer["violations"]) == story.faces["img5.jpg"]
    history = _json(story, "show", "face", str(story.faces["img5.jpg"][0]), "--history")
    periods = history["periods"]
    assert [p["place"] for p in periods] == ["searchable", "vault"]
    for v in answer["violations"]:
        # Searchable from its ingest until the policy apply moved it: exactly the log's times.
        assert (v["from"], v["until"]) == (periods[0]["from"], periods[1]["from"])
        assert story.times["blocked"] <= datetime.fromisoformat(v["until"])
        assert datetime.fromisoformat(v["until"]) < story.times["after_block"]
        # priv, gov and staff searched meanwhile; gov's later search came after.
        meanwhile = sorted(story.searches[u][0] for u in ("priv", "gov", "staff"))
        assert v["searches"] == 3 and v["search_entries"] == meanwhile
        assert v["signals"] == ["uploader"] and v["seconds"] > 0
    assert answer["audit_head"]["id"] > max(story.searches["gov"])
    later = _json(story, "discovery", "compliance", "--rule", "jurisdiction-blocked=US-IL",
                  "--since", story.times["after_block"].isoformat())  # fmt: skip
    assert later["held"] is True and later["violations"] == []


def test_no_private_search_names_the_entry_even_after_the_user_changes(story):
    answer = _json(story, "discovery", "compliance", "--rule", "no-private-search",
                   user="audrey", code=1)  # fmt: skip
    assert [v["entry_id"] for v in answer["violations"]] == story.searches["priv"]
    assert answer["violations"][0]["basis"] == "recorded"
    # The customer becomes a government one later: the search stays a private customer's.
    lib = Library.open(make_settings(story.root))
    with lib.catalog.begin() as conn:
        conn.execute(text("UPDATE users SET customer_type = 'government' WHERE name = 'priv'"))
    lib.close()
    again = _json(story, "discovery", "compliance", "--rule", "no-private-search",
                  user="audrey", code=1)  # fmt: skip
    assert [v["entry_id"] for v in again["violations"]] == story.searches["priv"]
    later = _json(story, "discovery", "compliance", "--rule", "no-private-search",
                  "--since", story.times["after_block"].isoformat(), user="audrey")  # fmt: skip
    assert later["held"] is True


def test_retention_met_while_held_then_not_when_a_due_face_has_no_hold(story):
    while_held = _json(story, "discovery", "compliance", "--rule", "retention-met",
                       "--until", story.times["held_due"].isoformat())  # fmt: skip
    assert while_held["held"] is True
    after_release = _json(story, "discovery", "compliance", "--rule", "retention-met",
                          "--until", story.times["released"].isoformat())  # fmt: skip
    assert after_release["held"] is True
    history = _json(story, "show", "face", str(story.faces["img3.jpg"][0]), "--history")
    assert [p["place"] for p in history["periods"]] == ["searchable", "destroyed"]
    assert history["periods"][1]["from"] <= story.times["released"].isoformat()
    now = _json(story, "discovery", "compliance", "--rule", "retention-met", code=1)
    assert [v["face_id"] for v in now["violations"]] == story.faces["img1.jpg"]
    assert now["violations"][0]["entries"] == [story.entries["img1_due"]]
    assert now["violations"][0]["rule"] == "retention.destroy_when_purpose_satisfied"


def test_compliance_signs_with_the_audit_head_key(story, tmp_path):
    key = tmp_path / "keys" / "audit.key"
    key.parent.mkdir()
    assert cli(story.root, "key", "generate", "--ed25519", "--key-file", str(key),
               user="audrey").exit_code == 0  # fmt: skip
    answer = _json(story, "discovery", "compliance", "--rule", "no-private-search",
                   "--sign-key", str(key), user="audrey", code=1)  # fmt: skip
    public = serialization.load_pem_public_key(Path(f"{key}.pub").read_bytes())
    public.verify(base64.b64decode(answer["signature"]), answer_bytes(answer))
    forged = {**answer, "held": True}
    from cryptography.exceptions import InvalidSignature

    with pytest.raises(InvalidSignature):
        public.verify(base64.b64decode(answer["signature"]), answer_bytes(forged))
    # The answer's head is the entry that records it, with the answer's digest.
    export = _json(story, "audit", "export", user="audrey")
    last = export[-1]
    assert last["id"] == answer["audit_head"]["id"] and last["action"] == "discovery.compliance"


def _attacker(root: Path) -> sqlite3.Connection:
    raw = sqlite3.connect(root / "catalog.sqlite", isolation_level=None)
    for name in ("audit_log_no_update", "audit_log_no_delete", "placement_log_no_update",
                 "placement_log_no_delete"):  # fmt: skip
        raw.execute(f"DROP TRIGGER IF EXISTS {name}")
    return raw


def test_an_edited_audit_entry_makes_compliance_refuse_naming_it(story):
    target = story.searches["priv"][0]
    raw = _attacker(story.root)
    raw.execute("UPDATE audit_log SET actor = 'gov' WHERE id = ?", (target,))
    raw.close()
    result = cli(story.root, "discovery", "compliance", "--rule", "no-private-search",
                 user="audrey")  # fmt: skip
    assert result.exit_code == 4, result.stdout
    assert f"audit log is broken at entry {target}" in result.stderr


def test_an_edited_change_log_entry_makes_compliance_refuse_naming_it(story):
    raw = _attacker(story.root)
    first = story.faces["img5.jpg"][0]
    query = "SELECT min(seq) FROM placement_log WHERE face_id = ?"
    seq = raw.execute(query, (first,)).fetchone()[0]
    raw.execute("UPDATE placement_log SET to_place = 'vault' WHERE seq = ?", (seq,))
    raw.close()
    result = cli(story.root, "discovery", "compliance", "--rule", "jurisdiction-blocked=US-IL",
                 user="cara")
    assert result.exit_code == 4, result.stdout
    assert f"change log is broken at entry {seq}" in result.stderr
    assert "does not match its hash" in result.stderr


def test_a_rehashed_change_log_fails_against_the_head_the_audit_log_recorded(story):
    _json(story, "audit", "head", user="audrey")  # records the change log's head
    raw = _attacker(story.root)
    rows = raw.execute("SELECT seq, face_id, from_place, to_place, at, prev_hash FROM "
                       "placement_log ORDER BY seq").fetchall()  # fmt: skip
    first = story.faces["img5.jpg"][0]
    target = min(r[0] for r in rows if r[1] == first)
    prev = None
    for seq, face_id, before, after, at, prev_hash in rows:
        if seq < target:
            continue
        prev = prev or prev_hash
        after = "vault" if seq == target else after
        digest = placement_hash(seq, face_id, before, after, datetime.fromisoformat(at), prev)
        raw.execute("UPDATE placement_log SET to_place = ?, prev_hash = ?, hash = ? "
                    "WHERE seq = ?", (after, prev, digest, seq))  # fmt: skip
        prev = digest
    raw.close()
    lib = Library.open(make_settings(story.root))
    with lib.catalog.engine.connect() as conn:
        assert verify_placement_chain(conn).ok  # re-hashed: the chain alone cannot tell
    lib.close()
    result = cli(story.root, "discovery", "compliance", "--rule", "jurisdiction-blocked=US-IL",
                 user="cara")
    assert result.exit_code == 4, result.stdout
    assert "recorded as the change log's head" in result.stderr


# -- usage -------------------------------------------------------------------------------------
def test_usage_separates_government_private_and_staff_with_entry_ids(story):
    data = _json(story, "discovery", "usage", "--period", "day", user="audrey")
    assert {c: t["searches"] for c, t in data["totals"].items()} == {
        "government": 2, "private": 1, "operator staff": 1}  # fmt: skip
    by_user = {r["user"]: r for r in data["rows"]}
    assert by_user["gov"]["entries"] == story.searches["gov"]
    assert by_user["priv"]["entries"] == story.searches["priv"]
    assert by_user["priv"]["region"] == "US-CA" and by_user["gov"]["region"] == "US-NY"
    assert all(r["probes"] == r["searches"] for r in data["rows"])  # one probe a search
    only = _json(story, "discovery", "usage", "--customer-type", "private", user="audrey")
    assert [r["user"] for r in only["rows"]] == ["priv"]
    since = _json(story, "discovery", "usage", "--since", story.times["after_block"].isoformat(),
                  "--user", "gov", user="audrey")  # fmt: skip
    assert [r["entries"] for r in since["rows"]] == [story.searches["gov"][1:]]


def test_usage_and_compliance_are_refused_to_searchers(story):
    for argv in (["discovery", "usage"], ["discovery", "compliance", "--rule", "retention-met"],
                 ["discovery", "nexus"]):  # fmt: skip
        result = cli(story.root, *argv, user="gov")
        assert result.exit_code == 3 and "may not" in result.stderr


# -- nexus -------------------------------------------------------------------------------------
def test_nexus_counts_photos_by_signals_with_the_operator_site(story):
    ids = story.files / "all.txt"
    ids.write_text("".join(f"{i}\n" for i in story.photos.values()))
    plain = _json(story, "discovery", "nexus", "-j", "US-IL", "--photos", str(ids))
    assert plain["summary"]["by_signal_count"] == {"0": 2, "1": 1, "2": 0, "3+": 0}
    row = next(r for r in plain["photos"] if r["photo_id"] == story.photos["img5.jpg"])
    assert row["signals"] == ["uploader"] and row["uploader_regions"] == ["US-IL"]
    assert row["ingest_runs"] and row["faces"]["vault"] >= 1
    env = {"FACELEDGER_OPERATOR_REGION": "US-IL"}
    there = _json(story, "discovery", "nexus", "-j", "US-IL", "--photos", str(ids), env=env)
    assert there["summary"]["by_signal_count"] == {"0": 0, "1": 2, "2": 1, "3+": 0}
    assert there["summary"]["by_signal"]["operator"] == 3
    tied = _json(story, "discovery", "nexus", "-j", "US-IL")  # the photos a signal ties
    assert [r["photo_id"] for r in tied["photos"]] == [story.photos["img5.jpg"]]
    out = story.files / "nexus.csv"
    assert cli(story.root, "discovery", "nexus", "--photos", str(ids), "--csv", str(out),
               user="cara").exit_code == 0  # fmt: skip
    lines = out.read_text().splitlines()
    assert lines[0].startswith("photo_id,signal_count,signals") and len(lines) == 4


def test_the_matter_report_has_a_nexus_section(story):
    face = story.faces["img1.jpg"][0]
    assert cli(story.root, "discovery", "locate", "--face", str(face), "--matter", "Doe",
               user="cara").exit_code == 0  # fmt: skip
    report = story.files / "report.html"
    pdf = story.files / "report.pdf"
    assert cli(story.root, "discovery", "report", "--matter", "Doe", "--out", str(report),
               "--pdf", str(pdf), user="cara").exit_code == 0  # fmt: skip
    page = report.read_text()
    assert "Nexus: what ties the located photos" in page
    assert page.index("Nexus") < page.index("<footer>")
    # The usage and compliance answers are sections too, in the HTML and in the PDF.
    usage = page[page.index("<section id='usage'>"):page.index("<section id='compliance'>")]
    assert "<td>private</td>" in usage  # the story's private user's searches, by class
    checks = page[page.index("<section id='compliance'>"):]
    checks = checks[:checks.index("</section>")]
    # The story's private user searched, so that rule did not hold; its row says so.
    assert re.search(r"<td>no-private-search</td><td>no</td><td>[1-9]", checks), checks
    assert "jurisdiction-blocked=US-IL" in checks
    text = "".join(p.extract_text() for p in PdfReader(str(pdf)).pages)
    for title in ("Nexus", "Searches by customer class", "Compliance with the rules"):
        assert title in text
    located = _json(story, "discovery", "nexus", "--matter", "Doe")
    assert story.photos["img1.jpg"] in [r["photo_id"] for r in located["photos"]]


# -- user history ------------------------------------------------------------------------------
def test_user_history_records_every_change_in_sqlite(story):
    lib = Library.open(make_settings(story.root))
    try:
        _user_history_is_faithful(lib)
    finally:
        lib.close()


def test_user_history_and_the_change_log_chain_on_postgresql(pg_database, tmp_path, engine):
    lib = Library.create(make_settings(tmp_path / "library", database_url=pg_database))
    try:
        owner = lib.actor(None)
        src = tmp_path / "src"
        src.mkdir()
        shutil.copy(shared_path(*DATA, "img5.jpg"), src / "img5.jpg")
        (src / "m.csv").write_text("path,uploader_region\nimg5.jpg,US-IL\n")
        assert not ingest(lib, owner, manifests=[src / "m.csv"]).errors
        with lib.catalog.begin() as conn:
            conn.execute(text("UPDATE faces SET blocked = false"))  # raw SQL: still chained
        with lib.catalog.engine.connect() as conn:
            check = verify_placement_chain(conn)
        assert check.ok and check.checked >= 2, check.reason
        users.add_user(lib, owner, "priv", "searcher", "private", "US-CA")
        _user_history_is_faithful(lib)
    finally:
        lib.close()


def _user_history_is_faithful(lib: Library) -> None:
    from faceledger.catalog.history import user_history

    with lib.catalog.begin() as conn:
        conn.execute(text("UPDATE users SET customer_type = 'government', region = 'US-NY' "
                          "WHERE name = 'priv'"))  # fmt: skip
        conn.execute(text("UPDATE users SET region = 'US-NY' WHERE name = 'priv'"))  # no change
    with lib.catalog.engine.connect() as conn:
        rows = [r for r in user_history(conn) if r["name"] == "priv"]
    assert [(r["change"], r["customer_type"], r["region"]) for r in rows] == [
        ("insert", "private", "US-CA"), ("update", "government", "US-NY")]  # fmt: skip
    assert rows[0]["at"] <= rows[1]["at"]
    with pytest.raises(Exception, match="append-only"), lib.catalog.begin() as conn:  # noqa: B017
        conn.execute(text("DELETE FROM user_history"))


def test_the_migration_backfills_users_and_chains_the_existing_log(tmp_path):
    from alembic import command

    from faceledger.catalog.database import _alembic_config, make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite'}")
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0006")
        conn.execute(text("INSERT INTO users (name, role, customer_type, created_at) VALUES "
                          "('old', 'searcher', 'private', '2025-01-02 03:04:05.000000')"))
        for face in (1, 2):
            conn.execute(text("INSERT INTO placement_log (face_id, from_place, to_place, at) "
                              "VALUES (:f, 'new', 'searchable', '2025-01-02 03:04:05.123456')"),
                         {"f": face})  # fmt: skip
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    from faceledger.catalog.history import user_history

    with engine.connect() as conn:
        rows = user_history(conn)
        check = verify_placement_chain(conn)
    assert [(r["name"], r["change"], r["customer_type"]) for r in rows] == [
        ("old", "backfill", "private")]  # fmt: skip
    assert iso(rows[0]["at"]) == "2025-01-02T03:04:05+00:00"
    assert check.ok and check.checked == 2 and check.head_seq == 2


def test_searchable_stretches_are_clipped_to_the_period():
    from datetime import UTC

    from faceledger.app.compliance import searchable_stretches

    def at(hour: int) -> datetime:
        return datetime(2026, 1, 1, hour, tzinfo=UTC)

    moves = [(1, at(1), "new", "searchable"), (5, at(3), "searchable", "vault"),
             (9, at(5), "vault", "searchable"), (12, at(7), "searchable", "destroyed")]  # fmt: skip
    assert searchable_stretches(moves, None, at(8)) == [(at(1), at(3), [1, 5]),
                                                        (at(5), at(7), [9, 12])]  # fmt: skip
    assert searchable_stretches(moves, at(2), at(6)) == [(at(2), at(3), [1, 5]),
                                                         (at(5), at(6), [9, 12])]  # fmt: skip
    assert searchable_stretches(moves, at(3), at(5)) == []  # in the vault the whole period
