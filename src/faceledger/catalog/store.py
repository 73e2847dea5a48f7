"""The catalog: the one source of truth for photos, provenance, faces and vectors."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Connection, and_, func, insert, or_, select, update

from faceledger.catalog import schema as t
from faceledger.catalog.database import SCHEMA_HEAD, current_revision, make_engine, migrate
from faceledger.catalog.photos import url_digest
from faceledger.catalog.placement import PLACE_WHERE, Place
from faceledger.catalog.vectors import DIM, PlainSealer, VectorSealer, from_blob
from faceledger.clock import as_utc, iso, utcnow
from faceledger.errors import LibraryError, NotFoundError
from faceledger.ingest.names import storable_text
from faceledger.records import Jurisdiction, PhotoFacts, Provenance

__all__ = ["Catalog", "SEARCHABLE", "VAULT", "current_consent"]

ACTIVE = t.faces.c.status == "active"
#: Faces that may be in the searchable index.
SEARCHABLE = PLACE_WHERE[Place.SEARCHABLE]
#: Faces kept only in the vault index.
VAULT = PLACE_WHERE[Place.VAULT]


def current_consent(now: datetime) -> ColumnElement[bool]:
    """Consent rows in force at ``now``: not revoked, not expired."""
    c = t.consents.c
    return and_(c.revoked_at.is_(None), or_(c.expires_at.is_(None), c.expires_at > now))


class Catalog:
    """Typed reads and writes over the catalog database."""

    def __init__(self, url: str, sealer: VectorSealer | None = None):
        """Connect to the catalog at ``url`` (nothing is created until :meth:`create`)."""
        self.url = url
        self.engine = make_engine(url)
        self.sealer: VectorSealer = sealer or PlainSealer()

    # -- lifecycle -------------------------------------------------------------------------
    def create(self) -> None:
        """Create or upgrade the schema."""
        migrate(self.engine)

    def check_schema(self) -> None:
        """Raise LibraryError unless the schema is at this version's revision."""
        rev = current_revision(self.engine)
        if rev is None:
            raise LibraryError("the catalog is empty: run `faceledger init` first")
        if rev != SCHEMA_HEAD:
            raise LibraryError(
                f"catalog schema is at {rev}, this faceledger expects {SCHEMA_HEAD}: "
                "run `faceledger init` to upgrade it"
            )

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection inside one transaction (committed on success, rolled back on error)."""
        with self.engine.begin() as conn:
            yield conn

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()

    # -- library metadata ------------------------------------------------------------------
    def get_meta(self, key: str, conn: Connection | None = None) -> str | None:
        """A value from library_meta (read inside ``conn``'s transaction when given)."""
        query = select(t.library_meta.c.value).where(t.library_meta.c.key == key)
        if conn is not None:
            return conn.scalar(query)
        with self.engine.connect() as own:
            return own.scalar(query)

    def set_meta(self, conn: Connection, key: str, value: str) -> None:
        """Insert or replace a value in library_meta."""
        if conn.scalar(select(t.library_meta.c.key).where(t.library_meta.c.key == key)):
            conn.execute(
                update(t.library_meta).where(t.library_meta.c.key == key).values(value=value)
            )
        else:
            conn.execute(insert(t.library_meta).values(key=key, value=value))

    # -- ingest runs -----------------------------------------------------------------------
    def start_run(self, inputs: list[str], actor: str) -> int:
        """Record the start of an ingest run."""
        with self.begin() as conn:
            return conn.execute(
                insert(t.ingest_runs).values(
                    started_at=utcnow(), status="running", actor=actor, inputs=inputs
                )
            ).inserted_primary_key[0]

    def interrupt_running_runs(self) -> int:
        """Mark runs still 'running' (killed before they finished) as interrupted."""
        with self.begin() as conn:
            return conn.execute(
                update(t.ingest_runs)
                .where(t.ingest_runs.c.status == "running")
                .values(status="interrupted")
            ).rowcount

    def finish_run(self, run_id: int, counters: dict[str, int], status: str = "finished") -> None:
        """Record the end of an ingest run and its counters."""
        with self.begin() as conn:
            conn.execute(
                update(t.ingest_runs)
                .where(t.ingest_runs.c.id == run_id)
                .values(finished_at=utcnow(), status=status, counters=counters)
            )

    def record_error(self, run_id: int, item: str, error: BaseException) -> None:
        """Record one failed input item (its own transaction, so nothing else is lost)."""
        with self.begin() as conn:
            conn.execute(
                insert(t.ingest_errors).values(
                    run_id=run_id,
                    item=storable_text(item),
                    error_type=type(error).__name__,
                    message=storable_text(str(error)),
                    at=utcnow(),
                    level="error",
                )
            )

    def record_warnings(self, run_id: int, item: str, messages: Iterable[str]) -> None:
        """Record what a decoder or reader warned about one item, one row a message."""
        rows = [
            {
                "run_id": run_id,
                "item": storable_text(item),
                "error_type": "DecoderWarning",
                "message": storable_text(message),
                "at": utcnow(),
                "level": "warning",
            }
            for message in messages
        ]
        if rows:
            with self.begin() as conn:
                conn.execute(insert(t.ingest_errors), rows)

    def photo_id_by_sha256(self, conn: Connection, sha256: str) -> int | None:
        """The id of the photo with this content hash, if stored."""
        return conn.scalar(select(t.photos.c.id).where(t.photos.c.sha256 == sha256))

    def known_sha256(self) -> set[str]:
        """Content hashes of every stored photo (for skipping work on reruns)."""
        with self.engine.connect() as conn:
            return set(conn.scalars(select(t.photos.c.sha256)))

    def known_sha256_among(self, hashes: Iterable[str]) -> set[str]:
        """Which of ``hashes`` are stored photos' (one query per 500: ingest asks per batch)."""
        wanted = sorted(set(hashes))
        found: set[str] = set()
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), 500):
                part = wanted[start : start + 500]
                found.update(conn.scalars(select(t.photos.c.sha256).where(
                    t.photos.c.sha256.in_(part))))  # fmt: skip
        return found

    def add_photo(
        self,
        conn: Connection,
        facts: PhotoFacts,
        md5: str,
        sha1: str,
        stored_path: str | None,
        run_id: int | None,
    ) -> int:
        """Insert a photo row and return its id."""
        return conn.execute(
            insert(t.photos).values(
                sha256=facts.sha256,
                md5=md5,
                sha1=sha1,
                byte_size=facts.byte_size,
                width=facts.width,
                height=facts.height,
                format=facts.format,
                taken_at=as_utc(facts.taken_at),
                gps_lat=facts.gps.lat if facts.gps else None,
                gps_lon=facts.gps.lon if facts.gps else None,
                gps_note=storable_text(facts.gps_note) if facts.gps_note else None,
                stored_path=stored_path,
                first_run_id=run_id,
                added_at=utcnow(),
            )
        ).inserted_primary_key[0]

    def website_id(self, conn: Connection, domain: str | None) -> int | None:
        """The id of a website row for ``domain``, created if new."""
        if not domain:
            return None
        found = conn.scalar(select(t.websites.c.id).where(t.websites.c.domain == domain))
        if found is not None:
            return found
        return conn.execute(
            insert(t.websites).values(domain=domain, updated_at=utcnow())
        ).inserted_primary_key[0]

    def add_source(
        self, conn: Connection, photo_id: int, prov: Provenance, run_id: int | None
    ) -> bool:
        """Record one provenance row for a photo; False if that exact row is already there."""
        exists = conn.scalar(
            select(t.photo_sources.c.id).where(
                t.photo_sources.c.photo_id == photo_id,
                t.photo_sources.c.kind == prov.kind,
                t.photo_sources.c.locator == prov.locator,
            )
        )
        if exists is not None:
            return False
        conn.execute(
            insert(t.photo_sources).values(
                photo_id=photo_id,
                kind=prov.kind,
                locator=prov.locator,
                source_url=prov.source_url,
                source_url_digest=url_digest(prov.source_url),
                page_url=prov.page_url,
                website_id=self.website_id(conn, prov.website),
                retrieved_at=as_utc(prov.retrieved_at),
                uploader_region=prov.uploader_region,
                caption=prov.caption,
                subject_ref=prov.subject_ref,
                run_id=run_id,
                added_at=utcnow(),
            )
        )
        return True

    def add_jurisdictions(
        self,
        conn: Connection,
        photo_id: int,
        found: Iterable[Jurisdiction],
        face_id: int = 0,
        ref: str | None = None,
    ) -> None:
        """Record a photo's (or one face's) jurisdictions, skipping ones already recorded."""
        for j in found:
            key = (
                t.jurisdictions.c.photo_id == photo_id,
                t.jurisdictions.c.face_id == face_id,
                t.jurisdictions.c.region == j.region,
                t.jurisdictions.c.signal == j.signal,
            )
            if conn.scalar(select(func.count()).select_from(t.jurisdictions).where(*key)):
                continue
            conn.execute(
                insert(t.jurisdictions).values(
                    photo_id=photo_id, face_id=face_id, region=j.region, signal=j.signal, ref=ref
                )
            )

    # -- vectors ---------------------------------------------------------------------------
    def vectors(self, where: Any = SEARCHABLE) -> tuple[np.ndarray, np.ndarray]:
        """Face ids (int64) and vectors (float32, n x 128) of the faces matching ``where``."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.faces.c.id, t.faces.c.vector, t.faces.c.vector_key_id)
                .where(where)
                .order_by(t.faces.c.id)
            ).all()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        matrix = np.empty((len(rows), DIM), dtype=np.float32)
        for i, (_, blob, key_id) in enumerate(rows):
            matrix[i] = from_blob(blob, key_id, self.sealer)
        return ids, matrix

    def face_ids(self, where: Any = SEARCHABLE) -> np.ndarray:
        """Ids of the faces matching ``where``, sorted."""
        with self.engine.connect() as conn:
            ids = conn.scalars(select(t.faces.c.id).where(where).order_by(t.faces.c.id)).all()
        return np.asarray(ids, dtype=np.int64)

    # -- reads for people ------------------------------------------------------------------
    def sources(self, conn: Connection, photo_ids: Iterable[int]) -> dict[int, list[dict]]:
        """Provenance rows (with website facts) per photo id."""
        ids = list(set(photo_ids))
        out: dict[int, list[dict]] = {i: [] for i in ids}
        if not ids:
            return out
        rows = conn.execute(
            select(
                t.photo_sources.c.photo_id,
                t.photo_sources.c.kind,
                t.photo_sources.c.locator,
                t.photo_sources.c.source_url,
                t.photo_sources.c.page_url,
                t.websites.c.domain.label("website"),
                t.websites.c.publisher,
                t.websites.c.publisher_region,
                t.websites.c.terms_url,
                t.photo_sources.c.retrieved_at,
                t.photo_sources.c.uploader_region,
                t.photo_sources.c.caption,
            )
            .select_from(t.photo_sources.outerjoin(t.websites))
            .where(t.photo_sources.c.photo_id.in_(ids))
            .order_by(t.photo_sources.c.id)
        ).mappings()
        for row in rows:
            item = dict(row)
            item["retrieved_at"] = iso(item["retrieved_at"])
            out[item.pop("photo_id")].append(item)
        return out

    def photo(self, photo_id: int) -> dict[str, Any]:
        """One photo with its provenance, jurisdictions and (non-destroyed) faces."""
        with self.engine.connect() as conn:
            row = conn.execute(select(t.photos).where(t.photos.c.id == photo_id)).mappings().first()
            if row is None:
                raise NotFoundError(f"no photo with id {photo_id}; `faceledger stats` shows counts")
            photo = _photo_dict(row)
            photo["sources"] = self.sources(conn, [photo_id])[photo_id]
            photo["jurisdictions"] = [
                dict(r)
                for r in conn.execute(
                    select(
                        t.jurisdictions.c.region,
                        t.jurisdictions.c.signal,
                        t.jurisdictions.c.face_id,
                        t.jurisdictions.c.ref,
                    ).where(t.jurisdictions.c.photo_id == photo_id)
                ).mappings()
            ]
            photo["faces"] = [
                _face_dict(r)
                for r in conn.execute(
                    select(t.faces)
                    .where(t.faces.c.photo_id == photo_id, ACTIVE)
                    .order_by(t.faces.c.ordinal)
                ).mappings()
            ]
        return photo

    def face(self, face_id: int) -> dict[str, Any]:
        """One face (without its vector) and the id of its photo."""
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(t.faces).where(t.faces.c.id == face_id, ACTIVE))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFoundError(f"no face with id {face_id}")
        return _face_dict(row)

    def match_details(self, face_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """For search hits: each searchable face's photo id, box, vector date and provenance."""
        ids = [int(i) for i in face_ids]
        if not ids:
            return {}
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    select(
                        t.faces,
                        t.photos.c.sha256,
                        t.photos.c.taken_at,
                        t.photos.c.gps_lat,
                        t.photos.c.gps_lon,
                        t.photos.c.width,
                        t.photos.c.height,
                    )
                    .select_from(t.faces.join(t.photos))
                    .where(t.faces.c.id.in_(ids), SEARCHABLE)
                )
                .mappings()
                .all()
            )
            sources = self.sources(conn, [r["photo_id"] for r in rows])
        out = {}
        for row in rows:
            face = _face_dict(row)
            srcs = sources.get(row["photo_id"], [])
            face["photo"] = {
                "sha256": row["sha256"],
                "taken_at": iso(row["taken_at"]),
                "gps": [row["gps_lat"], row["gps_lon"]] if row["gps_lat"] is not None else None,
                "width": row["width"],
                "height": row["height"],
            }
            face["source"] = _primary_source(srcs)
            face["provenance"] = srcs
            out[face["face_id"]] = face
        return out

    def stats(self, include_blocked: bool) -> dict[str, Any]:
        """Counts of photos, sources, faces, websites, runs and errors.

        Without ``include_blocked`` a photo whose only faces are blocked is not counted at all
        (nor its provenance or websites): counting it would disclose that a blocked face exists.
        """
        p, f, ps = t.photos, t.faces, t.photo_sources
        visible = p.c.status == "active"
        if not include_blocked:
            has = select(f.c.id).where(f.c.photo_id == p.c.id)
            visible = and_(visible, or_(~has.where(VAULT).exists(), has.where(SEARCHABLE).exists()))
        with self.engine.connect() as conn:

            def count(table, *where) -> int:
                return conn.scalar(select(func.count()).select_from(table).where(*where)) or 0

            shown = select(p.c.id).where(visible)
            out = {
                "photos": count(p, visible),
                "photo_sources": count(ps, ps.c.photo_id.in_(shown)),
                "websites": conn.scalar(
                    select(func.count(func.distinct(ps.c.website_id))).where(
                        ps.c.photo_id.in_(shown)
                    )
                )
                or 0,
                "searchable_faces": count(t.faces, SEARCHABLE),
                "ingest_runs": count(t.ingest_runs),
                "ingest_errors": count(t.ingest_errors, t.ingest_errors.c.level == "error"),
                "ingest_warnings": count(t.ingest_errors, t.ingest_errors.c.level == "warning"),
            }
            if include_blocked:
                out["blocked_faces"] = count(t.faces, VAULT)
            out["photos_without_faces"] = conn.scalar(
                select(func.count())
                .select_from(t.photos)
                .where(visible, ~select(f.c.id).where(f.c.photo_id == p.c.id).exists())
            )
        return out


def _primary_source(sources: list[dict]) -> str | None:
    """What a person calls the photo's source: its first URL, else its first path."""
    for src in sources:
        if src.get("source_url"):
            return src["source_url"]
    return sources[0]["locator"] if sources else None


def _photo_dict(row: Any) -> dict[str, Any]:
    photo = {
        k: row[k]
        for k in (
            "id",
            "sha256",
            "md5",
            "sha1",
            "byte_size",
            "width",
            "height",
            "format",
            "stored_path",
            "status",
        )
    }
    photo["taken_at"] = iso(row["taken_at"])
    photo["added_at"] = iso(row["added_at"])
    photo["gps"] = [row["gps_lat"], row["gps_lon"]] if row["gps_lat"] is not None else None
    if row["gps_note"]:
        photo["gps_note"] = row["gps_note"]
    return photo


def _face_dict(row: Any) -> dict[str, Any]:
    return {
        "face_id": row["id"],
        "photo_id": row["photo_id"],
        "box": {k: row[f"box_{k}"] for k in ("top", "right", "bottom", "left")},
        "landmarks": row["landmarks"],
        "detector": row["detector"],
        "detector_score": row["det_score"],
        "model": row["model"],
        "model_version": row["model_version"],
        "vector_collected_at": iso(row["vector_collected_at"]),
        "last_interaction_at": iso(as_utc(row["last_interaction_at"])),
        "blocked": bool(row["blocked"]),
    }
