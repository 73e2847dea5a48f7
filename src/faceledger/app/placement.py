"""How a face is placed: searchable, in the vault (blocked), or destroyed.

This is the one module that changes where a face is. :func:`place_faces` is the only code that
writes a face's place (``faces.blocked`` / ``faces.status``, through ``catalog.placement``), always
in the caller's transaction; database triggers log every move to the index change log, which
the vector indexes apply after the commit. Its callers: ingest (new faces, new provenance),
policy apply, opt-out, consent, retention, erasure and hold releases (through destruction).

The rules themselves are pure (``faceledger.policy``); the :class:`Decider` here gathers their
inputs: GPS from the photo, uploader regions from provenance, publisher regions from the sites
registry, and ``subject`` regions from opt-outs whose faces match. Where the policy requires
consent, a face whose photo names no subject with a current consent record is kept out of
search too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Connection

from faceledger import audit
from faceledger.catalog import consents as catalog_consents
from faceledger.catalog import faces as catalog_faces
from faceledger.catalog import optouts as catalog_optouts
from faceledger.catalog import photos as catalog_photos
from faceledger.catalog import placement as catalog_placement
from faceledger.catalog import policy_versions as catalog_policy
from faceledger.catalog import sites as catalog_sites
from faceledger.catalog import vault_counts
from faceledger.catalog.placement import Place
from faceledger.catalog.vectors import from_blob
from faceledger.clock import utcnow
from faceledger.index import VectorIndex, in_memory
from faceledger.policy import (
    Policy,
    block_reasons,
    blocking_changes,
    default_policy_text,
    jurisdictions_for_gps,
    load_policy,
)
from faceledger.records import DetectedFace, GeoPoint, Jurisdiction, PhotoFacts, Provenance

if TYPE_CHECKING:
    from faceledger.app.library import Actor, Library
    from faceledger.catalog import Catalog

__all__ = [
    "Place",
    "NewFaces",
    "place_faces",
    "reevaluate_photos",
    "changed_photos",
    "APPLIED_VERSION_KEY",
    "Decider",
    "Decision",
    "Reevaluation",
    "DERIVED_SIGNALS",
]


@dataclass(frozen=True)
class NewFaces:
    """Faces found in a photo being stored, each with the place decided for it."""

    photo_id: int
    found: Sequence[DetectedFace]
    detector: str
    places: Sequence[Place]  # SEARCHABLE or VAULT, one per face


def place_faces(
    conn: Connection,
    catalog: Catalog,
    *,
    new: NewFaces | None = None,
    to_vault: Sequence[int] = (),
    to_searchable: Sequence[int] = (),
    destroy: Sequence[int] = (),
    now: datetime | None = None,
) -> list[int]:
    """The one way a face changes place, inside the caller's transaction.

    ``new`` stores a photo's faces in their decided places (returns their ids); the others move
    existing active faces: into the vault (blocked), back to search, or to destruction (vector,
    box and landmarks wiped). Every move is logged by the database in the same transaction, and
    the vector indexes follow the log after the commit (``Library.writing`` catches them up).
    """
    new_ids: list[int] = []
    if new is not None:
        blocked = []
        for place in new.places:
            if place not in (Place.SEARCHABLE, Place.VAULT):
                raise ValueError(f"a new face goes to search or the vault, not {place}")
            blocked.append(place is Place.VAULT)
        new_ids = catalog_placement.insert_faces(
            conn, catalog.sealer, new.photo_id, new.found, new.detector, blocked
        )
    if to_vault:
        catalog_placement.set_blocked(conn, to_vault, True)
    if to_searchable:
        catalog_placement.set_blocked(conn, to_searchable, False)
    if destroy:
        catalog_placement.mark_destroyed(conn, destroy, now or utcnow())
    return new_ids


#: library_meta key: the policy version the last `policy apply` decided with, and after which
#: ``websites.applied_region`` holds the regions it decided with (the incremental basis).
APPLIED_VERSION_KEY = "policy_applied_version"
#: Photos re-decided per statement batch (bounded IN lists: PostgreSQL takes 65,535 binds).
REDECIDE_BATCH = 5_000


def reevaluate_photos(
    lib: Library, actor: Actor, action: str, photo_ids: Sequence[int] | None = None,
    apply_file: bool = False, full: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Re-decide the faces of these photos (all if None) and move them; audited as ``action``.

    With ``apply_file`` the policy file is first validated and put in force as a new version,
    and (unless ``full``) only the photos the change can affect are re-decided (see
    :func:`changed_photos`); the result says how many (``photos_redecided``) and whether it was
    a full re-decision (``full``).
    """
    with lib.writing() as conn:
        basis = None
        if apply_file:
            basis = _incremental_basis(lib, conn) if not full else None
            version, policy = lib.record_policy(conn, actor.name)
            if basis is not None:
                photo_ids = changed_photos(conn, basis, policy)
        else:
            version, policy = lib.policy_version(), lib.policy
        decider = Decider.for_library(lib, policy)
        if photo_ids is None:
            moved = decider.reevaluate(conn, lib.catalog, None)
        else:
            ids = sorted(set(photo_ids))
            moved = Reevaluation([], [])
            for start in range(0, len(ids), REDECIDE_BATCH):
                part = decider.reevaluate(conn, lib.catalog, ids[start:start + REDECIDE_BATCH])
                moved.blocked.extend(part.blocked)
                moved.unblocked.extend(part.unblocked)
        result = {
            "policy_version": version,
            "blocked": len(moved.blocked),
            "unblocked": len(moved.unblocked),
        }
        if apply_file:
            # From here on the next apply can compare with what this one decided with.
            catalog_sites.mark_applied(conn)
            lib.catalog.set_meta(conn, APPLIED_VERSION_KEY, str(version))
            redecided = None if photo_ids is None else len(photo_ids)
            result |= {"full": photo_ids is None, "photos_redecided": redecided}
        audit.append(
            conn, actor.name, action, {"blocked": moved.blocked, "unblocked": moved.unblocked},
            result,
        )  # fmt: skip
    if apply_file or moved.blocked or moved.unblocked:  # an apply re-derives ties too
        vault_counts.catch_up(lib.catalog.engine)
    return result


def _incremental_basis(lib: Library, conn: Connection) -> Policy | None:
    """The policy the last apply decided with, if an incremental apply may start from it:
    that apply recorded it (and the websites' regions), and it is still the version in force
    (so every face since was decided under it). None: re-decide every photo."""
    applied = lib.catalog.get_meta(APPLIED_VERSION_KEY, conn)
    in_force = catalog_policy.latest_id(conn)
    if applied is None or in_force is None or int(applied) != in_force:
        return None
    return load_policy(catalog_policy.body(conn, in_force) or default_policy_text())


def changed_photos(conn: Connection, old: Policy, new: Policy) -> list[int] | None:
    """The photos whose faces' placement may differ between the policy last applied ``old``
    (with the registry it was applied with) and ``new`` with the registry now, sorted; None when
    only a full re-decision can tell.

    - tied by a (region, signal) whose blocking changed between the two policies;
    - with a copy from a website whose publisher region changed since (``sites import``);
    - every photo when consent rules are in force in either policy: a consent's term ends with
      time, not with an event the catalog records, so no query can name the faces it frees.

    Uploader regions, GPS and opt-out (``subject``) ties change only with ingest and opt-outs,
    which re-decide their photos themselves.
    """
    if any(p.consent.required or p.consent.collections for p in (old, new)):
        return None
    ids = catalog_photos.tied_by(conn, blocking_changes(old, new))
    ids |= catalog_sites.photos_of_changed_sites(conn)
    return sorted(ids)


#: Signals recomputed from provenance and the sites registry whenever policy is applied.
DERIVED_SIGNALS = ("uploader", "publisher")


@dataclass(frozen=True)
class Decision:
    """The outcome for one new photo."""

    photo_jurisdictions: list[Jurisdiction]
    blocked: list[bool]  # one per face
    subject: list[list[tuple[Jurisdiction, int, float]]]  # per face: (region, opt-out id, distance)


@dataclass(frozen=True)
class Reevaluation:
    """Faces whose placement changed after re-evaluating policy."""

    blocked: list[int]
    unblocked: list[int]


class Decider:
    """Decides jurisdictions and blocking with the policy and registry as they are now."""

    def __init__(
        self,
        policy: Policy,
        publisher_regions: dict[str, str],
        optout_index: VectorIndex,
        optout_of_face: dict[int, tuple[int, str]],
        optout_threshold: float,
        consented: frozenset[str] = frozenset(),
    ):
        """Use :meth:`for_library` rather than building one by hand."""
        self.consented = consented
        self.policy = policy
        self.publisher_regions = publisher_regions
        self.optout_index = optout_index
        self.optout_of_face = optout_of_face
        self.optout_threshold = optout_threshold

    @classmethod
    def for_library(cls, lib, policy: Policy | None = None) -> Decider:
        """A decider over ``lib``'s policy (or ``policy``), sites registry and opt-outs."""
        catalog = lib.catalog
        with catalog.engine.connect() as conn:
            publisher_regions = catalog_sites.publisher_regions(conn)
            consented = catalog_consents.consented_subjects(conn, utcnow())
            rows = catalog_optouts.matched_vectors(conn)
        optout_of_face = {r[0]: (r[3], r[4]) for r in rows}
        ids = np.array([r[0] for r in rows], np.int64)
        vectors = np.array([from_blob(r[1], r[2], catalog.sealer) for r in rows], np.float32)
        index = in_memory(ids, vectors)
        return cls(
            policy or lib.policy,
            publisher_regions,
            index,
            optout_of_face,
            lib.settings.optout_threshold,
            consented,
        )

    # -- pure decisions ------------------------------------------------------------------
    def photo_jurisdictions(
        self, gps: GeoPoint | None, provenances: Iterable[Provenance]
    ) -> list[Jurisdiction]:
        """A photo's jurisdictions from its GPS and every provenance row."""
        found = list(jurisdictions_for_gps(gps))
        for prov in provenances:
            if prov.uploader_region:
                found.append(Jurisdiction(prov.uploader_region, "uploader"))
            region = self.publisher_regions.get(prov.website or "")
            if region:
                found.append(Jurisdiction(region, "publisher"))
        return sorted(set(found), key=lambda j: (j.signal, j.region))

    def subject_matches(self, vector: np.ndarray) -> list[tuple[Jurisdiction, int, float]]:
        """Opt-outs whose matched faces this vector matches under the strict threshold."""
        if len(self.optout_index) == 0:
            return []
        distances, ids = self.optout_index.search(vector[None, :], 10)
        out = {}
        for distance, face_id in zip(distances[0], ids[0], strict=True):
            if face_id < 0 or distance > self.optout_threshold:
                continue
            optout_id, region = self.optout_of_face[int(face_id)]
            out.setdefault(optout_id, (Jurisdiction(region, "subject"), optout_id, float(distance)))
        return list(out.values())

    @property
    def consent_rules_active(self) -> bool:
        """Whether the policy asks for consent anywhere."""
        return self.policy.consent.required or bool(self.policy.consent.collections)

    def consent_missing(self, copies: Iterable[tuple[str | None, str | None]]) -> bool:
        """For a photo's (website, subject_ref) copies: consent is needed and none is on file."""
        copies = list(copies)
        rules = self.policy.consent
        needed = rules.required or any(site in rules.collections for site, _ in copies)
        return needed and not any(ref in self.consented for _, ref in copies if ref)

    def decide(
        self, facts: PhotoFacts, provenances: Sequence[Provenance], faces: Sequence[DetectedFace]
    ) -> Decision:
        """Jurisdictions of a new photo and whether each of its faces is blocked."""
        photo_j = self.photo_jurisdictions(facts.gps, provenances)
        no_consent = self.consent_missing((p.website, p.subject_ref) for p in provenances)
        subject = [self.subject_matches(face.vector) for face in faces]
        blocked = [
            no_consent or bool(block_reasons(self.policy, photo_j + [s[0] for s in subj]))
            for subj in subject
        ]
        return Decision(photo_j, blocked, subject)

    # -- catalog updates -------------------------------------------------------------------
    def link_optout(self, conn: Connection, optout_id: int, face_id: int, distance: float) -> None:
        """Record that a face matched an opt-out (so its vector blocks later arrivals too)."""
        catalog_optouts.link_face(conn, optout_id, face_id, distance)

    def reevaluate(
        self, conn: Connection, catalog: Catalog, photo_ids: Sequence[int] | None = None
    ) -> Reevaluation:
        """Recompute derived jurisdictions, then every face's block flag (all photos or some).

        Idempotent: a second call with nothing changed moves no face.
        """
        scope = catalog_photos.scope(photo_ids)
        self._refresh_derived(conn, photo_ids)
        by_photo: dict[int, list[tuple[int, str, str]]] = defaultdict(list)
        rows = catalog_photos.jurisdiction_rows(conn, scope)
        for photo_id, face_id, region, signal in rows:
            by_photo[photo_id].append((face_id, region, signal))
        copies: dict[int, list[tuple[str | None, str | None]]] = defaultdict(list)
        if self.consent_rules_active:  # read provenance only when a rule needs it
            for photo_id, site, ref in catalog_photos.copies(conn, scope):
                copies[photo_id].append((site, ref))
        to_block, to_unblock = [], []
        faces = catalog_faces.blocks_of_photos(conn, scope)
        for face_id, photo_id, blocked in faces:
            mine = [
                Jurisdiction(r, s) for f, r, s in by_photo.get(photo_id, ()) if f in (0, face_id)
            ]
            # Most faces have no jurisdiction at all: no rule to evaluate for them.
            should = (bool(mine) and bool(block_reasons(self.policy, mine))) or (
                self.consent_rules_active and self.consent_missing(copies[photo_id])
            )
            if should and not blocked:
                to_block.append(face_id)
            elif blocked and not should:
                to_unblock.append(face_id)
        if to_block or to_unblock:
            place_faces(conn, catalog, to_vault=to_block, to_searchable=to_unblock)
        return Reevaluation(to_block, to_unblock)

    def _refresh_derived(self, conn: Connection, photo_ids: Sequence[int] | None) -> None:
        """Rebuild uploader and publisher jurisdictions from provenance and the registry."""
        catalog_photos.refresh_derived(conn, photo_ids, DERIVED_SIGNALS)
