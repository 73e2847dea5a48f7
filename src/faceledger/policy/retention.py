"""When the retention schedule makes a face vector due for destruction (pure; holds are checked
by the caller, since nothing under a legal hold is destroyed whatever this says).

Naive datetimes (SQLite returns them) are taken as UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime

from faceledger.policy.rules import Policy

__all__ = ["RULE_PURPOSE", "RULE_MAX_AGE", "destruction_deadline", "destruction_due"]

#: Rule names returned by :func:`destruction_due`: the policy keys that made a vector due.
RULE_PURPOSE = "retention.destroy_when_purpose_satisfied"
RULE_MAX_AGE = "retention.max_years_since_last_interaction"


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _add_years(value: datetime, years: int) -> datetime:
    """``value`` plus whole calendar years; 29 February becomes 28 February."""
    try:
        return value.replace(year=value.year + years)
    except ValueError:
        # 28 February rather than 1 March: the earlier day never keeps a vector past the limit.
        return value.replace(year=value.year + years, day=28)


def destruction_deadline(policy: Policy, last_interaction_at: datetime) -> datetime | None:
    """When the time limit falls due for a vector last used then (UTC), or None if no limit."""
    years = policy.retention.max_years_since_last_interaction
    if years is None:
        return None
    return _add_years(_utc(last_interaction_at), years)


def destruction_due(
    policy: Policy, last_interaction_at: datetime, purpose_satisfied: bool, now: datetime
) -> str | None:
    """The retention rule that makes a vector due for destruction at ``now``, or None."""
    if purpose_satisfied and policy.retention.destroy_when_purpose_satisfied:
        return RULE_PURPOSE
    deadline = destruction_deadline(policy, last_interaction_at)
    if deadline is not None and _utc(now) >= deadline:
        return RULE_MAX_AGE
    return None
