"""Test helpers: a canonical dump of a catalog, WARC writing, the CLI runner."""

from __future__ import annotations

import io
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from faceledger.catalog import schema as t
from faceledger.cli import app
from faceledger.clock import iso

runner = CliRunner()


#: (library, user) -> the API key the owner issued that user for these tests.
_KEYS: dict[tuple[str, str], str] = {}


def api_key(library: Path, user: str, env: dict | None = None) -> str | None:
    """The API key of ``user`` (issued by the owner once, as an admin would), None for the owner.

    Acting as a user on the command line takes their key: tests pass it the way a user would,
    in FACELEDGER_API_KEY.
    """
    import os

    from faceledger.app.governance.users import new_api_key
    from faceledger.app.library import Library
    from faceledger.config import Settings
    from faceledger.errors import FaceledgerError

    environ = {**os.environ, **(env or {})}
    settings = Settings.from_env(environ=environ, library=Path(library))
    cache = (settings.catalog_url, user)
    if cache in _KEYS:
        return _KEYS[cache]
    lib = Library.open(settings)
    try:
        if user == lib.owner():
            return None
        _KEYS[cache] = new_api_key(lib, lib.actor(None), user)["api_key"]
    except FaceledgerError:
        return None  # an unknown or disabled user: the CLI says so itself
    finally:
        lib.close()
    return _KEYS[cache]


def cli(library: Path, *args: str, user: str | None = None, env: dict | None = None):
    """Run the CLI in-process against ``library`` (as ``user``, with their API key)."""
    prefix = ["--library", str(library)] + (["--as", user] if user else [])
    if user and "FACELEDGER_API_KEY" not in (env or {}):
        key = api_key(library, user, env)
        if key:
            env = {**(env or {}), "FACELEDGER_API_KEY": key}
    return runner.invoke(app, [*prefix, *args], catch_exceptions=False, env=env)


def vault_face_count(library: Path) -> int:
    """Faces in the vault of the library at ``library``, read from its catalog (the owner's
    ingest summary leaves them uncounted: the owner has no vault access)."""
    from faceledger.app.library import Library
    from faceledger.config import Settings

    lib = Library.open(Settings.from_env(library=library))
    try:
        return lib.catalog.stats(True)["blocked_faces"]
    finally:
        lib.close()


def canonical_catalog(lib) -> dict:
    """Everything a catalog holds about photos, provenance and faces, minus ids and clocks."""
    with lib.catalog.engine.connect() as conn:
        sha_of = dict(conn.execute(select(t.photos.c.id, t.photos.c.sha256)).all())
        photos = sorted(
            (
                r.sha256,
                r.md5,
                r.byte_size,
                r.width,
                r.height,
                r.format,
                iso(r.taken_at),
                r.gps_lat,
                r.gps_lon,
                r.stored_path,
                r.status,
            )
            for r in conn.execute(select(t.photos))
        )
        sources = sorted(
            (
                sha_of[r.photo_id],
                r.kind,
                r.locator,
                r.source_url,
                r.page_url,
                iso(r.retrieved_at),
                r.uploader_region,
                r.caption,
            )
            for r in conn.execute(select(t.photo_sources))
        )
        faces = sorted(
            (
                sha_of[r.photo_id],
                r.ordinal,
                r.box_top,
                r.box_right,
                r.box_bottom,
                r.box_left,
                round(r.det_score, 6),
                r.vector,
                r.model,
                r.model_version,
                r.blocked,
                r.status,
            )
            for r in conn.execute(select(t.faces))
        )
        jurisdictions = sorted(
            (sha_of[r.photo_id], r.region, r.signal) for r in conn.execute(select(t.jurisdictions))
        )
    return {"photos": photos, "sources": sources, "faces": faces, "jurisdictions": jurisdictions}


def write_warc(path: Path, records: list[tuple[str, str, bytes, str]]) -> None:
    """A WARC of HTTP responses: (target URI, content type, body, WARC-Date) each."""
    with path.open("wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        for uri, content_type, body, date in records:
            headers = StatusAndHeaders(
                "200 OK", [("Content-Type", content_type)], protocol="HTTP/1.1"
            )
            record = writer.create_warc_record(
                uri,
                "response",
                payload=io.BytesIO(body),
                http_headers=headers,
                warc_headers_dict={"WARC-Date": date},
            )
            writer.write_record(record)


def count_plan(conn, selection) -> str:
    """The PostgreSQL plan of ``discovery.count``'s statement (``tie_counts``: what answers a
    selection the vault's kept counts do not) for ``selection``, run on ``conn`` with
    sequential and bitmap scans off (a tiny table is read sequentially by choice; this shows
    what the indexes allow), in ``conn``'s transaction."""
    from sqlalchemy import text

    from faceledger.catalog.discovery import tie_counts
    from faceledger.policy import SIGNALS

    conn.execute(text("SET LOCAL enable_seqscan = off"))
    conn.execute(text("SET LOCAL enable_bitmapscan = off"))
    plans: list[str] = []
    original = conn.execute

    def explain(statement, *args, **kwargs):
        if "per_face" in str(statement):
            compiled = statement.compile(dialect=conn.dialect,
                                         compile_kwargs={"literal_binds": True})  # fmt: skip
            plans.extend(r[0] for r in original(text(f"EXPLAIN {compiled}")))
        return original(statement, *args, **kwargs)

    conn.execute = explain
    try:
        tie_counts(conn, selection, [selection.signal] if selection.signal else list(SIGNALS))
    finally:
        conn.execute = original
    return "\n".join(plans)
