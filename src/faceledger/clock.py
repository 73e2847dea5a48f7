"""Time in one place: aware UTC datetimes, ISO 8601 text."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["utcnow", "as_utc", "iso"]


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """Treat a naive datetime (as SQLite returns them) as UTC; convert aware ones to UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso(value: datetime | None) -> str | None:
    """ISO 8601 text of a datetime, in UTC."""
    value = as_utc(value)
    return value.isoformat() if value else None
