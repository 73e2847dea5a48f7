"""The catalog's SQL for consent records (a subject's written release, its text and hash)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select

from faceledger.catalog import schema as t
from faceledger.catalog.store import current_consent

__all__ = ["Consent", "insert_consent", "consents", "consented_subjects"]


@dataclass(frozen=True)
class Consent:
    """A consents row without its release text."""

    id: int
    subject_ref: str
    purpose: str
    term: str
    release_sha256: str
    recorded_by: str
    recorded_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


def insert_consent(
    conn: Connection, subject: str, purpose: str, term: str, release_sha256: str,
    release_text: str, recorded_by: str, recorded_at: datetime, expires_at: datetime | None,
) -> int:  # fmt: skip
    """Insert a consent record; returns its id."""
    return conn.execute(insert(t.consents).values(
        subject_ref=subject, purpose=purpose, term=term, release_sha256=release_sha256,
        release_text=release_text, recorded_by=recorded_by, recorded_at=recorded_at,
        expires_at=expires_at,
    )).inserted_primary_key[0]  # fmt: skip


def consents(conn: Connection, subject: str | None = None) -> list[Consent]:
    """Consent records (of ``subject``, or all), newest first."""
    c = t.consents
    stmt = select(c.c.id, c.c.subject_ref, c.c.purpose, c.c.term, c.c.release_sha256,
                  c.c.recorded_by, c.c.recorded_at, c.c.expires_at, c.c.revoked_at
                  ).order_by(c.c.id.desc())  # fmt: skip
    if subject:
        stmt = stmt.where(c.c.subject_ref == subject)
    return [Consent(*r) for r in conn.execute(stmt)]


def consented_subjects(conn: Connection, now: datetime) -> frozenset[str]:
    """Subjects with a consent record in force at ``now``."""
    return frozenset(conn.scalars(select(t.consents.c.subject_ref).where(current_consent(now))))
