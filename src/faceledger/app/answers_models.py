"""Typed answers: one pydantic model for each thing the library answers a user.

The web service declares them as its response models (so ``/openapi.json`` types every answer)
and the CLI can dump the same models with ``--json``. The use cases in ``app/`` still build
plain dicts; :func:`typed` validates one into its model at the edge. Unknown keys are dropped
there (``extra="ignore"``): what leaves the service is what the model names, so a key added
inside ``app/`` reaches users only once it is declared here.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from faceledger.policy import Policy

__all__ = [
    "Answer",
    "typed",
    "Health",
    "Box",
    "Source",
    "Jurisdiction",
    "Face",
    "Photo",
    "MatchPhoto",
    "Match",
    "SearchFace",
    "SearchEntry",
    "IndexInfo",
    "Stats",
    "Tally",
    "CountAnswer",
    "SourceRow",
    "VectorDateRow",
    "PeopleEstimate",
    "LocatedFace",
    "LocatedPhoto",
    "Reference",
    "LocatedSite",
    "Located",
    "Hold",
    "HoldPlaced",
    "Deferred",
    "HoldReleased",
    "Attestation",
    "AnchorCheck",
    "AuditVerify",
    "AuditHead",
    "AuditEntry",
    "User",
    "UserAdded",
    "ApiKeyIssued",
    "Site",
    "SitesImported",
    "PolicyShown",
    "PolicyApplied",
    "OptoutReceipt",
    "Optout",
    "IngestRun",
    "IngestProblem",
    "IngestSummary",
    "CfBox",
    "CfSubject",
    "CfFace",
    "CfRecognizedFace",
    "CfRecognize",
    "CfDetect",
    "CfMatch",
    "CfVerifyResult",
    "CfVerify",
    "CfVerifyExample",
    "CfExample",
    "CfExamples",
    "CfDeleted",
    "CfSubjects",
    "CfSubjectName",
    "CfUpdated",
    "CfError",
]


class Answer(BaseModel):
    """Base of every answer: keys the model does not name are dropped, never passed on."""

    model_config = ConfigDict(extra="ignore")


def typed(model: Any, value: Any) -> Any:
    """``value`` (a dict, or a list of dicts) validated into ``model`` (e.g. ``list[Hold]``)."""
    return TypeAdapter(model).validate_python(value)


class Health(Answer):
    """Whether the service and its catalog answer."""

    status: str
    version: str


# -- photos, faces, provenance ----------------------------------------------------------------
class Box(Answer):
    """A face rectangle in original-image pixels."""

    top: int
    right: int
    bottom: int
    left: int


class Source(Answer):
    """One provenance row: where a copy of a photo came from (``locator``: admins only)."""

    kind: str
    locator: str | None = None
    source_url: str | None = None
    page_url: str | None = None
    website: str | None = None
    publisher: str | None = None
    publisher_region: str | None = None
    terms_url: str | None = None
    retrieved_at: str | None = None
    uploader_region: str | None = None
    caption: str | None = None
    redactions: list[str] | None = Field(
        None, description="What a protective order withheld from this row (field:category)"
    )


class Jurisdiction(Answer):
    """A region a photo (or one of its faces) is tied to, and the signal that tied it."""

    region: str
    signal: str
    face_id: int | None = None
    ref: str | None = None


class Face(Answer):
    """One stored face: box, landmarks, model and when its vector was collected (no vector)."""

    face_id: int
    photo_id: int
    box: Box
    landmarks: list[tuple[int, int]] | None = None
    detector: str | None = None
    detector_score: float | None = None
    model: str
    model_version: str
    vector_collected_at: str | None = None
    last_interaction_at: str | None = None
    blocked: bool


class Photo(Answer):
    """A stored photo: hashes, size, EXIF time and GPS, provenance, jurisdictions, faces."""

    id: int
    sha256: str
    md5: str | None = None
    sha1: str | None = None
    byte_size: int
    width: int
    height: int
    format: str
    stored_path: str | None = None
    status: str
    taken_at: str | None = None
    added_at: str | None = None
    gps: tuple[float, float] | None = Field(None, description="(latitude, longitude)")
    gps_note: str | None = None
    sources: list[Source] = []
    jurisdictions: list[Jurisdiction] = []
    faces: list[Face] = []


class MatchPhoto(Answer):
    """The photo a matched face is in."""

    sha256: str
    taken_at: str | None = None
    gps: tuple[float, float] | None = None
    width: int
    height: int


class Match(Face):
    """A stored face that matched a probe face, with its photo, provenance and distance."""

    photo: MatchPhoto
    source: str | None = Field(None, description="The photo's first source URL")
    provenance: list[Source] = []
    distance: float = Field(description="Euclidean distance of the 128-d vectors (0.6: match)")


class SearchFace(Answer):
    """One face found in a probe, and its matches nearest first."""

    box: Box
    matches: list[Match]


class SearchEntry(Answer):
    """One probe photo of a search: the faces found in it, or why it could not be read."""

    probe: str
    faces: list[SearchFace]
    error: str | None = None


class IndexInfo(Answer):
    """The searchable index's backend and structure."""

    backend: str
    searchable: str


class Stats(Answer):
    """Counts; ``blocked_faces`` only for custodians."""

    photos: int
    photo_sources: int
    websites: int
    searchable_faces: int
    ingest_runs: int
    ingest_errors: int
    ingest_warnings: int
    blocked_faces: int | None = None
    photos_without_faces: int
    index: IndexInfo | None = None


# -- discovery ----------------------------------------------------------------------------------
class Tally(Answer):
    """Photos, faces and distinct source URLs."""

    photos: int
    faces: int
    source_urls: int


class CountAnswer(Answer):
    """Discovery count: in total and per signal."""

    blocked: bool | None = None
    jurisdiction: str | None = None
    total: Tally
    by_signal: dict[str, Tally]


class SourceRow(Answer):
    """Discovery sources: one provenance row with its site's publisher and terms."""

    photo_id: int
    kind: str
    source_url: str | None = None
    page_url: str | None = None
    retrieved_at: str | None = None
    website: str | None = None
    publisher: str | None = None
    publisher_region: str | None = None
    terms_url: str | None = None
    terms_retrieved_at: str | None = None


class VectorDateRow(Answer):
    """Discovery vector dates: when one face's vector was collected, and by which model."""

    face_id: int
    photo_id: int
    source_url: str | None = None
    retrieved_at: str | None = None
    vector_collected_at: str | None = None
    model: str
    model_version: str


class Thresholds(Answer):
    """Distances the class-size estimate clustered at."""

    strict: float
    threshold: float
    loose: float


class ThresholdCounts(Answer):
    """People counted at each threshold."""

    strict: int
    threshold: int
    loose: int


class PeopleEstimate(Answer):
    """Discovery people: how many distinct people the selected faces show."""

    blocked: bool | None = None
    jurisdiction: str | None = None
    faces: int
    estimate: int
    low: int
    high: int
    thresholds: Thresholds
    counts: ThresholdCounts
    singletons: int
    cluster_sizes: list[int]
    method: str


class LocatedFace(Answer):
    """A face of the person located."""

    face_id: int
    ordinal: int
    box: Box
    blocked: bool
    distance: float
    vector_collected_at: str | None = None
    model: str
    model_version: str


class LocatedPhoto(Answer):
    """A photo of the person located, with its matched faces and provenance."""

    photo_id: int
    sha256: str
    taken_at: str | None = None
    stored: bool
    blocked: bool
    best_distance: float | None = None
    faces: list[LocatedFace]
    provenance: list[Source] = []


class Reference(Answer):
    """One reference (photo or stored face) a locate searched with."""

    probe: str | None = None
    face_id: int | None = None
    faces: int
    error: str | None = None
    note: str | None = None


class LocatedSite(Answer):
    """A website the located person's photos came from."""

    website: str | None = None
    photos: list[int]


class Located(Answer):
    """Discovery locate: every photo of the person in the references, and their sites."""

    matter: str
    authority_sha256: str | None = None
    include_vault: bool
    threshold: float
    references: list[Reference]
    photos: list[LocatedPhoto]
    sites: list[LocatedSite] = []


# -- governance ---------------------------------------------------------------------------------
class Hold(Answer):
    """A legal hold and how many photos it covers now."""

    hold: int
    matter: str
    scope: str
    value: str | int | None = None
    created_by: str | None = None
    created_at: str | None = None
    released_by: str | None = None
    released_at: str | None = None
    active: bool
    photos_held: int


class HoldPlaced(Answer):
    """A hold just placed."""

    hold: int
    matter: str
    scope: str
    value: str | int | None = None
    photos_held_now: int
    created_at: str | None = None


class Deferred(Answer):
    """Destruction that waited for a hold, carried out now."""

    carried_out: int
    still_held: int
    destroyed_faces: list[int]
    destroyed_photos: list[int]


class HoldReleased(Answer):
    """A hold just released."""

    hold: int
    matter: str
    released: bool
    deferred: Deferred


class Attestation(Answer):
    """A signed statement recorded for a user (its text is kept, its hash shown)."""

    attestation: int
    user: str
    sha256: str
    signed_at: str | None = None
    expires_at: str | None = None
    recorded_by: str


class AnchorCheck(Answer):
    """What a heads file said about the log."""

    file: str
    heads: int
    newest_id: int | None = None
    signatures: str
    signature_problems: list[str]


class AuditVerify(Answer):
    """Audit verify: whether the chain holds, and the first entry that breaks it."""

    ok: bool
    checked: int
    first_bad_id: int | None = None
    reason: str | None = None
    last_id: int | None = None
    last_hash: str | None = None
    anchor: AnchorCheck | None = None


class AuditHead(Answer):
    """Audit head: the newest entry (the witnessing itself), signed when asked."""

    id: int
    hash: str
    at: str
    key_id: str | None = None
    signature: str | None = None


class AuditEntry(Answer):
    """One audit log entry. ``details`` is the free-form record of that action."""

    id: int
    at: str
    actor: str
    action: str
    #: Ids by kind; without vault access a vault face's or hidden photo's id is a keyed
    #: pseudonym (``vault-face:…``), and the entry is marked ``pseudonymised``.
    object_ids: dict[str, list[int | str]]
    details: dict[str, Any] = Field(
        default_factory=dict, description="What the action recorded; its keys depend on it"
    )
    prev_hash: str
    hash: str
    pseudonymised: bool = Field(
        default=False, description="Vault ids in this entry were replaced by keyed pseudonyms"
    )


class User(Answer):
    """A user: role, customer type and region, state, active keys, attestation."""

    id: int
    name: str
    role: str
    customer_type: str | None = None
    region: str | None = None
    disabled: bool
    created_at: str | None = None
    api_keys: int
    attested: bool


class UserAdded(Answer):
    """A user just added."""

    id: int
    name: str
    role: str
    customer_type: str | None = None
    region: str | None = None


class ApiKeyIssued(Answer):
    """A new API key: shown once, stored only as its hash."""

    name: str
    prefix: str
    api_key: str
    keys_revoked: int
    note: str | None = None


class Site(Answer):
    """A website in the registry and how many provenance rows cite it."""

    domain: str
    publisher: str | None = None
    publisher_region: str | None = None
    terms_url: str | None = None
    terms_retrieved_at: str | None = None
    sources: int


class SitesImported(Answer):
    """Sites import: rows added and updated."""

    added: int
    updated: int


class PolicyVersion(Answer):
    """The policy version in force."""

    version_id: int
    applied_by: str | None = None
    applied_at: str | None = None


class PolicyShown(Policy):
    """Policy show: the rules in force, their version, and whether the file has edits."""

    in_force: PolicyVersion | None = None
    file: str | None = None
    file_has_unapplied_edits: bool


class PolicyApplied(Answer):
    """Policy apply: the version now in force and the faces it moved."""

    policy_version: int | None = None
    blocked: int
    unblocked: int
    full: bool | None = None  # every photo re-decided (no earlier apply to compare with, or asked)
    photos_redecided: int | None = None  # when not full: the photos the changes could affect


class OptoutReceipt(Answer):
    """An opt-out filed: its id, status and the matched faces the caller may see."""

    optout_id: int
    status: str
    matched_faces: list[int]
    newly_blocked: int


class Optout(Answer):
    """An opt-out request."""

    id: int
    name: str
    email: str | None = None
    region: str
    status: str
    submitted_by: str | None = None
    submitted_at: str | None = None
    matched_faces: int | None = None


class IngestRun(Answer):
    """One ingest run: when, by whom, from what, its counters, and its failed and warned items."""

    id: int
    started_at: str | None = None
    finished_at: str | None = None
    status: str
    actor: str | None = None
    inputs: list[str]
    counters: dict[str, int] | None = None
    errors: int | None = None
    warnings: int | None = None


class IngestProblem(Answer):
    """One item an ingest run could not store (an error) or warned about (a warning)."""

    item: str
    level: str
    error_type: str
    message: str
    at: str | None = None


class IngestItemError(Answer):
    """An item of this run that failed."""

    item: str
    error: str
    message: str


class IngestItemWarning(Answer):
    """What a decoder said about an item of this run."""

    item: str
    message: str


class IngestSummary(Answer):
    """What one ingest run did."""

    run_id: int
    photos_new: int
    photos_already_stored: int
    sources_added: int
    faces: int
    faces_searchable: int
    faces_blocked: int
    errors: list[IngestItemError]
    warnings: list[IngestItemWarning]


# -- the CompreFace-compatible API -------------------------------------------------------------
class CfBox(Answer):
    """A face box in CompreFace's terms: detection probability and pixel corners."""

    probability: float = Field(description="Logistic of dlib's detection score")
    x_min: int
    y_min: int
    x_max: int
    y_max: int


class CfSubject(Answer):
    """A subject and how similar its nearest searchable face is (0.5: the match threshold)."""

    subject: str
    similarity: float


class CfFace(Answer):
    """A face found in a probe; landmarks and embedding only when their plugin was asked."""

    box: CfBox
    landmarks: list[tuple[int, int]] | None = None
    embedding: list[float] | None = Field(
        None, description="calculator plugin: the probe's own 128-d vector, never stored"
    )


class CfRecognizedFace(CfFace):
    """A probe face and its most similar subjects."""

    subjects: list[CfSubject]


class CfRecognize(Answer):
    """Recognize: each face found, with its subjects."""

    result: list[CfRecognizedFace]
    plugins_versions: dict[str, str]


class CfDetect(Answer):
    """Detect: each face found."""

    result: list[CfFace]
    plugins_versions: dict[str, str]


class CfMatch(CfFace):
    """A face of the target image and its similarity to the source face or example."""

    similarity: float


class CfVerifyResult(Answer):
    """Verify: the source image's face and each target face's similarity to it."""

    source_image_face: CfFace
    face_matches: list[CfMatch]
    plugins_versions: dict[str, str]


class CfVerify(Answer):
    """Verify two images."""

    result: list[CfVerifyResult]


class CfVerifyExample(Answer):
    """Verify a probe against a stored example."""

    result: list[CfMatch]


class CfExample(Answer):
    """An example: a photo (``image_id``) collected under a subject."""

    image_id: str
    subject: str


class CfExamples(Answer):
    """A page of the examples the caller may see."""

    faces: list[CfExample]
    page_number: int
    page_size: int
    total_pages: int
    total_elements: int


class CfDeleted(Answer):
    """How many examples or subjects were deleted."""

    deleted: int


class CfSubjects(Answer):
    """Every subject the caller may see."""

    subjects: list[str]


class CfSubjectName(Answer):
    """One subject."""

    subject: str


class CfUpdated(Answer):
    """A subject renamed."""

    updated: bool


class CfError(Answer):
    """An error in CompreFace's shape."""

    message: str
    code: int
