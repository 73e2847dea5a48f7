"""`discovery usage`: who searched, acting for which customer type and region, per day or
month, from the audit log.

Each ``search`` entry (CLI and web service alike) is one search; its ``probes`` and
``probe_faces`` details and the faces it names (``object_ids.faces``: the matches returned) give
the other counts. A user's customer type and region are the ones in force when the entry was
written (``user_history``), so a user moved from ``private`` to ``government`` is counted as
each in turn. Users fall in three classes, the line a government-contractor exemption turns on:
``government``, ``private`` and ``operator staff`` (no customer type). Every row lists the audit
entry ids it counts.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from faceledger import audit
from faceledger.app.compliance import audit_entries
from faceledger.app.history import user_at
from faceledger.catalog import history as catalog_history
from faceledger.clock import as_utc, iso
from faceledger.errors import BadOptionError
from faceledger.policy import CUSTOMER_TYPES

if TYPE_CHECKING:
    from faceledger.app.library import Actor, Library

__all__ = ["PERIODS", "STAFF", "customer_class", "usage"]

PERIODS = ("day", "month")
#: The class of users without a customer type: the operator's own staff.
STAFF = "operator staff"
_COUNTS = ("searches", "probes", "probe_faces", "matches")


def customer_class(customer_type: str | None) -> str:
    """``government``, ``private`` or ``operator staff``."""
    return customer_type or STAFF


def _period(at: datetime, period: str) -> str:
    return at.strftime("%Y-%m-%d" if period == "day" else "%Y-%m")


def usage(
    lib: Library, actor: Actor, since: datetime | None = None, until: datetime | None = None,
    period: str = "month", customer_type: str | None = None, user: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Searches, probes and matches per period, user, customer type and region, with totals
    per class; every figure traceable to the audit entries listed with it."""
    lib.authorize(actor, "discovery.usage")
    if period not in PERIODS:
        raise BadOptionError(f"period must be one of {', '.join(PERIODS)}, not {period!r}")
    wanted = customer_type.strip().lower() if customer_type else None
    if wanted is not None and wanted not in (*CUSTOMER_TYPES, "staff"):
        raise BadOptionError(f"customer type must be one of {', '.join(CUSTOMER_TYPES)} or "
                             f"staff, not {customer_type!r}")  # fmt: skip
    since, until = as_utc(since), as_utc(until)
    with lib.catalog.engine.connect() as conn:
        history = catalog_history.user_history(conn)
    rows: dict[tuple, dict[str, Any]] = {}
    for e in audit_entries(lib):
        if e["action"] != "search" or (since and e["at"] < since) or (until and e["at"] > until):
            continue
        if user is not None and e["actor"] != user:
            continue
        who = user_at(history, e["actor"], e["at"]) or {}
        ctype, region = who.get("customer_type"), who.get("region")
        if wanted is not None and (ctype or "staff") != wanted:
            continue
        key = (_period(e["at"], period), e["actor"], ctype, region)
        row = rows.setdefault(key, {
            "period": key[0], "user": e["actor"], "customer_type": ctype,
            "class": customer_class(ctype), "region": region, "role": who.get("role"),
            "basis": who.get("basis", "unknown user"), **dict.fromkeys(_COUNTS, 0),
            "entries": [],
        })  # fmt: skip
        row["searches"] += 1
        row["probes"] += int(e["details"].get("probes") or 0)
        row["probe_faces"] += int(e["details"].get("probe_faces") or 0)
        row["matches"] += len(e["object_ids"].get("faces") or [])
        row["entries"].append(e["id"])
        if who.get("basis") == "backfill":
            row["basis"] = "backfill"
    ordered = sorted(rows.values(), key=lambda r: (r["period"], r["class"], r["user"]))
    totals: dict[str, dict[str, int]] = {}
    for row in ordered:
        total = totals.setdefault(row["class"], dict.fromkeys(_COUNTS, 0))
        for k in _COUNTS:
            total[k] += row[k]
    result = {"since": iso(since), "until": iso(until), "period": period, "rows": ordered,
              "totals": totals}  # fmt: skip
    with lib.writing() as conn:
        audit.append(conn, actor.name, "discovery.usage", {},
                     {"since": result["since"], "until": result["until"], "period": period,
                      "customer_type": wanted, "user": user, "rows": len(ordered)})  # fmt: skip
        head = audit.head(conn)
    result["audit_head"] = head.to_json() if head else None
    return result
