"""Helpers of the governance tests: one small ingested library, copied per test.

Ingesting costs about 0.2 s a photo plus the worker start-up, so it happens once a session;
each test gets its own copy of the library directory.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from conftest import make_settings, shared_path
from sqlalchemy import select

from faceledger.app.library import Library
from faceledger.catalog import schema as t

#: (file in the deepface dataset, uploader region): the US-IL photo's faces are blocked.
PHOTOS = [("img1.jpg", ""), ("img3.jpg", ""), ("img5.jpg", "US-IL")]


@dataclass
class Seeded:
    """A library copy and what it holds."""

    lib: Library
    root: Path
    photos: dict[str, int]  # file name -> photo id
    faces: dict[str, list[int]]  # file name -> face ids

    @property
    def blocked_photo(self) -> str:
        return "img5.jpg"


def _build(root: Path, key_file: str = "") -> None:
    from faceledger.app.ingest import ingest

    data = shared_path("faces", "deepface", "tests", "unit", "dataset")
    src = root.parent / f"{root.name}-src"
    src.mkdir()
    lines = ["path,source_url,uploader_region"]
    for name, region in PHOTOS:
        shutil.copy(data / name, src / name)
        lines.append(f"{name},https://example.org/{name},{region}")
    (src / "manifest.csv").write_text("\n".join(lines) + "\n")
    lib = Library.create(make_settings(root, key_file=key_file))
    try:
        summary = ingest(lib, lib.actor(None), manifests=[src / "manifest.csv"])
        assert not summary.errors, summary.errors
        assert summary.faces_blocked >= 1
    finally:
        lib.close()


def open_copy(template: Path, dest: Path, **overrides) -> Seeded:
    """A copy of the template library at ``dest``, opened."""
    shutil.copytree(template, dest)
    lib = Library.open(make_settings(dest, **overrides))
    with lib.catalog.engine.connect() as conn:
        rows = conn.execute(
            select(t.photos.c.id, t.photo_sources.c.locator, t.faces.c.id)
            .select_from(t.photos.join(t.photo_sources).outerjoin(t.faces))
            .order_by(t.faces.c.id)
        ).all()  # fmt: skip
    photos: dict[str, int] = {}
    faces: dict[str, list[int]] = {}
    for photo_id, locator, face_id in rows:
        name = Path(locator.rsplit(":", 1)[-1]).name
        photos[name] = photo_id
        if face_id is not None:
            faces.setdefault(name, []).append(face_id)
    return Seeded(lib, dest, photos, faces)


def all_bytes(root: Path) -> bytes:
    """Every file under ``root`` concatenated (to look for leftover bytes)."""
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())
