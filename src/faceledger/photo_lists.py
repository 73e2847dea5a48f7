"""Lists of photo ids that people hand to commands (holds, productions, retention)."""

from __future__ import annotations

import json
from pathlib import Path

from faceledger.errors import InputError

__all__ = ["read_photo_ids"]


def read_photo_ids(path: Path) -> list[int]:
    """Photo ids from a file: one per line, or the JSON that `discovery locate --json` prints."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    stripped = text.strip()
    if stripped.startswith(("{", "[")):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path} is not valid JSON: {exc}") from exc
        items = data.get("photos", []) if isinstance(data, dict) else data
        ids = [int(i["photo_id"]) if isinstance(i, dict) else int(i) for i in items]
    else:
        ids = []
        for number, line in enumerate(stripped.splitlines(), start=1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            try:
                ids.append(int(line))
            except ValueError as exc:
                raise InputError(f"{path} line {number}: {line!r} is not a photo id") from exc
    return list(dict.fromkeys(ids))  # order kept, duplicates dropped
