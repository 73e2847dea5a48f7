"""The sites registry the operator keeps: who publishes each website, where, under what terms."""

from __future__ import annotations

import csv
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from faceledger import audit
from faceledger.app.governance import vault
from faceledger.app.library import Actor, Library
from faceledger.catalog import sites as catalog_sites
from faceledger.clock import as_utc, iso, utcnow
from faceledger.errors import ManifestError

__all__ = ["SITE_FIELDS", "import_sites", "list_sites", "parse_sites"]

SITE_FIELDS = ("domain", "publisher", "publisher_region", "terms_url", "terms_retrieved_at",
               "sensitivity")  # fmt: skip
_REGION = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")


def parse_sites(path: Path) -> list[dict[str, Any]]:
    """Validated rows of a CSV or JSONL sites file; raises ManifestError naming the bad row."""
    if not path.is_file():
        raise ManifestError(f"{path}: no such file")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        if path.suffix.lower() in (".jsonl", ".ndjson"):
            raw = []
            for n, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        raw.append((n, json.loads(line)))
                    except json.JSONDecodeError as exc:
                        raise ManifestError(f"{path}:{n}: not valid JSON ({exc.msg})") from exc
        else:
            reader = csv.DictReader(handle)
            raw = [(reader.line_num, row) for row in reader]
    rows = []
    for n, row in raw:
        where = f"{path}:{n}"
        if not isinstance(row, dict):
            raise ManifestError(f"{where}: a row must be an object")
        unknown = set(row) - set(SITE_FIELDS)
        if unknown:
            raise ManifestError(
                f"{where}: unknown field(s) {sorted(unknown)}; allowed: {', '.join(SITE_FIELDS)}"
            )
        clean = {k: (str(row.get(k) or "").strip() or None) for k in SITE_FIELDS}
        if not clean["domain"]:
            raise ManifestError(f"{where}: domain is required")
        clean["domain"] = clean["domain"].lower().removeprefix("www.")
        region = clean["publisher_region"]
        if region:
            clean["publisher_region"] = region = region.upper()
            if not _REGION.match(region):
                raise ManifestError(f"{where}: publisher_region {region!r} is not like US-IL")
        try:
            clean["sensitivity"] = catalog_sites.check_sensitivity(clean["sensitivity"])
        except ValueError as exc:
            raise ManifestError(f"{where}: {exc}") from None
        when = clean["terms_retrieved_at"]
        if when:
            try:
                parsed = datetime.fromisoformat(when.replace("Z", "+00:00"))
            except ValueError as exc:
                raise ManifestError(
                    f"{where}: terms_retrieved_at {when!r} is not ISO 8601"
                ) from exc
            clean["terms_retrieved_at"] = (
                as_utc(parsed) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
            )
        rows.append(clean)
    return rows


def import_sites(lib: Library, actor: Actor, path: Path) -> dict[str, int]:
    """Insert or update websites from a file (all rows or none). Run `policy apply` after."""
    lib.authorize(actor, "sites.import")
    rows = parse_sites(path)
    added = updated = 0
    with lib.writing() as conn:
        for row in rows:
            values = {**row, "updated_at": utcnow()}
            if catalog_sites.upsert_site(conn, values):
                added += 1
            else:
                updated += 1
        audit.append(
            conn,
            actor.name,
            "sites.import",
            details={"file": str(path), "added": added, "updated": updated},
        )
    return {"added": added, "updated": updated}


def list_sites(lib: Library, actor: Actor) -> list[dict[str, Any]]:
    """Every website in the registry, with how many provenance rows cite it (rows of photos
    hidden in the vault counted only for those with vault access)."""
    lib.authorize(actor, "sites.list")
    hide = not vault.may_read_vault(lib, actor)
    with lib.catalog.engine.connect() as conn:
        rows = catalog_sites.sites(conn, hide_vault=hide)
    return [
        {
            **{k: getattr(row, k) for k in SITE_FIELDS},
            "sources": row.sources,
            "terms_retrieved_at": iso(row.terms_retrieved_at),
        }
        for row in rows
    ]
