"""JSON endpoints for every console action, under ``/v1``: one call into ``app/`` each.

Keyed like the rest of the service, by ``Authorization: Bearer <key>`` or ``x-api-key: <key>``;
the library checks each role. Every answer is a typed model of
:mod:`faceledger.app.answers_models`, so ``/openapi.json`` describes it. Documents a call
needs as a file (a statement, a sites registry) arrive in the body and are put in a private
temporary folder for the call's length; probe photos are held in memory only.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import Response, StreamingResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from faceledger.app import answers_models as m
from faceledger.app import discovery, runs, sites
from faceledger.app.answers import answer, stream_vector_dates
from faceledger.app.governance import attestations, auditing, holds, users
from faceledger.app.library import Actor
from faceledger.app.optout import list_optouts
from faceledger.app.policy import apply_policy
from faceledger.app.probes import Probe
from faceledger.errors import InputError
from faceledger.policy import ROLES, SIGNALS
from faceledger.records import AuditFilter
from faceledger.service.auth import actor_for_credentials
from faceledger.service.bounds import check_pixel_budget
from faceledger.service.uploads import read_multipart

__all__ = ["router", "api_actor", "ERRORS", "include_routers"]

#: Largest document (statement, sites file) one request may carry.
DOCUMENT_MAX_BYTES = 1 << 20

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="API key",
    description="An API key from `faceledger users key NAME`, sent as `Bearer <key>`.",
)
_x_api_key = APIKeyHeader(
    name="x-api-key",
    auto_error=False,
    scheme_name="x-api-key",
    description="The same API key, in CompreFace's header.",
)


def api_actor(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    x_api_key: Annotated[str | None, Depends(_x_api_key)],
) -> Actor:
    """The user whose key came as a Bearer token or in ``x-api-key``; 401 otherwise."""
    svc = request.app.state.faceledger
    if bearer is None and x_api_key:
        bearer = HTTPAuthorizationCredentials(scheme="Bearer", credentials=x_api_key)
    address = request.client.host if request.client else ""
    return actor_for_credentials(svc.lib, bearer, svc.auth, address)


def include_routers(app: FastAPI, *routers: APIRouter) -> None:
    """Include ``routers`` in ``app``, their routes built now rather than on first use.

    FastAPI builds an included router's routes when a request first reaches them, inside the
    event loop (about a second for these): every request then in flight would wait for it.
    Matching a throwaway scope against each route builds them here instead.
    """
    for router_ in routers:
        app.include_router(router_)
    scope = {"type": "http", "method": "GET", "path": "/", "root_path": "", "headers": [],
             "query_string": b""}  # fmt: skip
    for route in app.router.routes:
        route.matches(scope)


def _svc(request: Request) -> Any:
    return request.app.state.faceledger


ActorDep = Annotated[Actor, Depends(api_actor)]
SvcDep = Annotated[Any, Depends(_svc)]


class ErrorBody(BaseModel):
    """Every error answer of the native API: the error's type and a message to act on."""

    error: str
    message: str


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No API key, or one that is not valid"},
    403: {"model": ErrorBody, "description": "The user's role or the policy refuses this"},
    404: {"model": ErrorBody, "description": "No such id (or hidden from this user)"},
    422: {"model": ErrorBody, "description": "A malformed request"},
}

router = APIRouter(prefix="/v1", responses=ERRORS)

Signal = Enum("Signal", {s: s for s in SIGNALS}, type=str)  # type: ignore[misc]
Blocked = Annotated[
    bool | None, Query(description="true: blocked faces only (custodians); false: searchable only")
]
Region = Annotated[
    str | None, Query(max_length=16, description="Region code such as US-IL (a country covers "
                      "its states)")
]  # fmt: skip


async def _heavy(request: Request) -> AsyncIterator[None]:
    """One of the service's heavy slots, from before the body is read until the answer."""
    heavy = _svc(request).heavy
    heavy.take()
    try:
        yield
    finally:
        heavy.give_back()


@contextmanager
def _document(name: str, data: bytes) -> Iterator[Path]:
    """An uploaded document as a file in a private temporary folder, for one call."""
    folder = Path(tempfile.mkdtemp(prefix="faceledger-doc-"))
    try:
        suffix = "".join(c for c in Path(name).suffix.lower() if c.isalnum() or c == ".")
        path = folder / f"upload{suffix[:8]}"
        path.write_bytes(data)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def _one_document(request: Request, fields: tuple[str, ...] = ()) -> tuple[str, bytes, dict]:
    upload = await read_multipart(
        request.headers.get("content-type"),
        request.stream(),
        file_field="file",
        text_fields=fields,
        max_file_bytes=DOCUMENT_MAX_BYTES,
        max_files=1,
        max_body_bytes=DOCUMENT_MAX_BYTES + 64 * 1024,
        content_length=request.headers.get("content-length"),
    )
    if not upload.files:
        raise InputError("send the document as a file in the form field 'file'")
    name, data = upload.files[0]
    return name, data, upload.fields


def _file_body(description: str, **extra: Any) -> dict[str, Any]:
    props = {"file": {"type": "string", "format": "binary", "description": description}}
    props.update(extra)
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"], "properties": props}}}}}  # fmt: skip


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


# -- discovery --
@router.get(
    "/discovery/count",
    response_model=m.CountAnswer,
    tags=["discovery"],
    summary="How many photos, faces and source URLs, in total and per signal",
)
def discovery_count(
    svc: SvcDep, actor: ActorDep, blocked: Blocked = None, jurisdiction: Region = None,
    signal: Annotated[Signal | None, Query(description="Count only this signal")] = None,
    verify: Annotated[bool, Query(
        description="Also count the ties themselves; 503 if the vault's kept counts differ"
    )] = False,
) -> Any:  # fmt: skip
    """Custodians and auditors; blocked faces are in scope for custodians only."""
    return answer(
        svc.lib,
        actor,
        "count",
        blocked=blocked,
        jurisdiction=jurisdiction,
        signal=signal.value if signal else None,
        verify=verify,
    )


@router.get(
    "/discovery/sources",
    response_model=list[m.SourceRow],
    tags=["discovery"],
    summary="Source URLs, sites, publishers and terms of the selected photos",
)
def discovery_sources(
    svc: SvcDep, actor: ActorDep, blocked: Blocked = None, jurisdiction: Region = None,
    signal: Annotated[Signal | None, Query(description="Only photos tied by this signal")] = None,
) -> Any:  # fmt: skip
    """Custodians and auditors; blocked faces are in scope for custodians only."""
    return answer(
        svc.lib,
        actor,
        "sources",
        blocked=blocked,
        jurisdiction=jurisdiction,
        signal=signal.value if signal else None,
    )


@router.get(
    "/discovery/vector-dates",
    response_model=list[m.VectorDateRow],
    tags=["discovery"],
    summary="When each selected face's vector was collected, and by which model",
)
def discovery_vector_dates(
    svc: SvcDep, actor: ActorDep, blocked: Blocked = None, jurisdiction: Region = None,
    signal: Annotated[Signal | None, Query(description="Only photos tied by this signal")] = None,
) -> Any:  # fmt: skip
    """Custodians and auditors; blocked faces are in scope for custodians only. Streamed: a
    JSON array written row by row as the catalog yields them (10^7 faces never in memory)."""
    rows = stream_vector_dates(
        svc.lib, actor, blocked=blocked, jurisdiction=jurisdiction,
        signal=signal.value if signal else None,
    )  # fmt: skip

    def body() -> Iterator[bytes]:
        yield b"["
        for n, row in enumerate(rows):
            yield (b"," if n else b"") + json.dumps(row, default=str).encode()
        yield b"]"

    return StreamingResponse(body(), media_type="application/json")


@router.get(
    "/discovery/people",
    response_model=m.PeopleEstimate,
    tags=["discovery"],
    summary="How many distinct people the selected faces show (estimate, low-high)",
)
def discovery_people(
    svc: SvcDep, actor: ActorDep, blocked: Blocked = None, jurisdiction: Region = None,
    threshold: Annotated[float, Query(gt=0, le=2)] = 0.6,
) -> Any:  # fmt: skip
    """Custodians with a current attestation."""
    return discovery.people(
        svc.lib, actor, blocked=blocked, jurisdiction=jurisdiction, threshold=threshold
    )


_LOCATE_FIELDS = ("matter", "face_id", "include_vault", "threshold")


@router.post(
    "/discovery/locate",
    response_model=m.Located,
    tags=["discovery"],
    summary="Every photo of the person in reference photos (or of a stored face)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["matter"],
                        "properties": {
                            "images": {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                                "description": "Reference photos (held in memory only)",
                            },
                            "authority": {
                                "type": "string",
                                "format": "binary",
                                "description": "The consent or court order relied on (UTF-8 "
                                "text; its SHA-256 is recorded)",
                            },
                            **{k: {"type": "string"} for k in _LOCATE_FIELDS},
                        },
                    }
                }
            },
        }
    },
)
async def discovery_locate(
    request: Request, actor: ActorDep, _slot: Annotated[None, Depends(_heavy)]
) -> Any:
    """Custodians with a current attestation; the matter and authority are recorded."""
    svc = _svc(request)
    settings = svc.settings
    upload = await read_multipart(
        request.headers.get("content-type"),
        request.stream(),
        file_field="images",
        text_fields=_LOCATE_FIELDS,
        max_file_bytes=settings.max_file_bytes,
        max_files=16,
        max_body_bytes=settings.request_max_bytes,
        content_length=request.headers.get("content-length"),
        document_fields={"authority": DOCUMENT_MAX_BYTES},
    )
    images = upload.files
    authority = upload.documents.get("authority")
    authority_text = None
    if authority is not None:
        try:
            authority_text = authority[1].decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("the authority file must be UTF-8 text") from None
    check_pixel_budget(images, settings.request_max_pixels)
    f = upload.fields
    face_id = f.get("face_id", "").strip()
    if face_id and not face_id.isdigit():
        raise InputError(f"face_id must be a whole number, not {face_id!r}")
    try:
        threshold = float(f["threshold"]) if f.get("threshold", "").strip() else None
    except ValueError:
        raise InputError(f"threshold must be a number, not {f['threshold']!r}") from None
    probes = [Probe(name, data) for name, data in images]
    return await _in_thread(
        discovery.locate,
        svc.lib,
        actor,
        f.get("matter", ""),
        probes=probes,
        face_id=int(face_id) if face_id else None,
        include_vault=f.get("include_vault", "").strip().lower() in ("1", "true", "yes", "on"),
        authority_text=authority_text,
        authority_name=authority[0] if authority is not None else None,
        threshold=threshold,
    )


async def _in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args, **kwargs)


class ProduceRequest(BaseModel):
    """What to produce: listed photos, or a selection by jurisdiction and place."""

    matter: str
    prefix: str = Field(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9_-]+$")
    photo_ids: list[int] | None = None
    jurisdiction: str | None = Field(None, max_length=16)
    blocked: bool | None = None
    width: int = Field(8, ge=1, le=12)


_ZIP = {200: {"description": "The production (documents, DAT and OPT load files, manifest) "
              "as a zip", "content": {"application/zip": {"schema": {
                  "type": "string", "format": "binary"}}}}}  # fmt: skip


@router.post(
    "/discovery/produce",
    tags=["discovery"],
    response_class=Response,
    responses=_ZIP,
    summary="A Bates-numbered production, downloaded as a zip",
)
def discovery_produce(svc: SvcDep, actor: ActorDep, body: ProduceRequest) -> Response:
    """Custodians with a current attestation. The production is recorded in the catalog and
    the audit log; its files are made in a temporary folder, zipped, and removed."""
    folder = Path(tempfile.mkdtemp(prefix="faceledger-production-"))
    try:
        out = folder / "production"
        result = discovery.produce(
            svc.lib,
            actor,
            body.matter,
            body.prefix,
            out,
            photo_ids=body.photo_ids,
            jurisdiction=body.jurisdiction,
            blocked=body.blocked,
            width=body.width,
        )
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(Path(result["out_dir"]).rglob("*")):
                if path.is_file():
                    archive.write(path, f"{result['volume']}/{path.relative_to(result['out_dir'])}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return Response(
        buffer.getvalue(),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{result["volume"]}.zip"',
            "X-Production-Id": str(result["production_id"]),
            "X-Bates-Range": f"{result['first_bates']}-{result['last_bates']}",
        },
    )


# -- holds and attestations --
@router.get(
    "/holds",
    response_model=list[m.Hold],
    tags=["governance"],
    summary="Every legal hold, newest first",
)
def holds_list(svc: SvcDep, actor: ActorDep, include_released: bool = True) -> Any:
    """Admins, custodians and auditors."""
    return holds.list_holds(svc.lib, actor, include_released)


class HoldRequest(BaseModel):
    """A hold to place: the matter and its scope, e.g. ``jurisdiction=US-IL``."""

    matter: str
    scope: str = Field(description="jurisdiction=REGION, photo=ID, subject=REF, optout=ID, ...")


@router.post(
    "/holds", response_model=m.HoldPlaced, tags=["governance"], summary="Place a legal hold"
)
def holds_place(svc: SvcDep, actor: ActorDep, body: HoldRequest) -> Any:
    """Admins and custodians."""
    return holds.create_hold(svc.lib, actor, body.matter, body.scope)


@router.post(
    "/holds/{hold_id}/release",
    response_model=m.HoldReleased,
    tags=["governance"],
    summary="Release a hold and carry out what waited for it",
)
def holds_release(svc: SvcDep, actor: ActorDep, hold_id: int) -> Any:
    """Admins and custodians."""
    return holds.release_hold(svc.lib, actor, hold_id)


@router.post(
    "/attestations",
    response_model=m.Attestation,
    tags=["governance"],
    summary="Record a signed attestation (custodians need a current one for the vault)",
    openapi_extra=_file_body(
        "The signed statement (text)", user={"type": "string"}, valid_days={"type": "integer"}
    ),
)
async def attest(request: Request, actor: ActorDep) -> Any:
    """Users sign as themselves; an admin may record a statement signed on paper by another."""
    name, data, fields = await _one_document(request, ("user", "valid_days"))
    days = fields.get("valid_days", "").strip()
    if days and not days.isdigit():
        raise InputError(f"valid_days must be a whole number, not {days!r}")
    user = fields.get("user", "").strip() or actor.name

    def run() -> Any:
        with _document(name, data) as path:
            return attestations.attest(
                _svc(request).lib,
                actor,
                user,
                path,
                int(days) if days else attestations.DEFAULT_VALID_DAYS,
            )

    return await _in_thread(run)


# -- audit --
@router.get(
    "/audit/verify",
    response_model=m.AuditVerify,
    tags=["audit"],
    summary="Check the audit log's hash chain",
)
def audit_verify(svc: SvcDep, actor: ActorDep) -> Any:
    """Admins, custodians and auditors. Names the first edited, deleted or reordered entry."""
    return auditing.verify_log(svc.lib, actor)


@router.post(
    "/audit/head",
    response_model=m.AuditHead,
    tags=["audit"],
    summary="Witness the audit log's head (appends an audit.head entry)",
)
def audit_head(svc: SvcDep, actor: ActorDep) -> Any:
    """Admins, custodians and auditors. Keep the answer outside the library."""
    return auditing.witness_head(svc.lib, actor)


@router.get(
    "/audit/export",
    response_model=list[m.AuditEntry],
    tags=["audit"],
    summary="Audit entries, filtered by time, actor and action",
)
def audit_export(
    svc: SvcDep, actor: ActorDep,
    since: Annotated[datetime | None, Query(description="From this time on (UTC if no zone)")]
    = None,
    until: Annotated[datetime | None, Query(description="Up to this time (inclusive)")] = None,
    by: Annotated[str | None, Query(alias="actor", description="Only this user's entries")]
    = None,
    action: Annotated[str | None, Query(description="Only this action (e.g. discovery.locate)")]
    = None,
) -> Any:  # fmt: skip
    """Custodians and auditors; the export itself is an audit entry."""
    where = AuditFilter(_utc(since), _utc(until), by, action)
    return list(auditing.export_log(svc.lib, actor, where))


# -- users, sites, policy, ingest runs --
@router.get("/users", response_model=list[m.User], tags=["admin"], summary="Every user")
def users_list(svc: SvcDep, actor: ActorDep) -> Any:
    """Admins and auditors."""
    return users.list_users(svc.lib, actor)


class UserRequest(BaseModel):
    """A user to add."""

    name: str = Field(min_length=1, max_length=64)
    role: Literal[ROLES]  # type: ignore[valid-type]
    customer_type: str | None = None
    region: str | None = Field(None, max_length=16)


@router.post("/users", response_model=m.UserAdded, tags=["admin"], summary="Add a user")
def users_add(svc: SvcDep, actor: ActorDep, body: UserRequest) -> Any:
    """Admins."""
    return users.add_user(svc.lib, actor, body.name, body.role, body.customer_type, body.region)


@router.post(
    "/users/{name}/key",
    response_model=m.ApiKeyIssued,
    tags=["admin"],
    summary="Issue a new API key for a user (earlier keys are revoked)",
)
def users_key(svc: SvcDep, actor: ActorDep, name: str) -> Any:
    """Admins. The key is in this answer only; faceledger keeps its hash."""
    return users.new_api_key(svc.lib, actor, name)


@router.get(
    "/sites", response_model=list[m.Site], tags=["admin"], summary="Every website in the registry"
)
def sites_list(svc: SvcDep, actor: ActorDep) -> Any:
    """Every role."""
    return sites.list_sites(svc.lib, actor)


@router.post(
    "/sites/import",
    response_model=m.SitesImported,
    tags=["admin"],
    summary="Import websites (CSV or JSONL: domain, publisher, publisher_region, ...)",
    openapi_extra=_file_body("The sites file (.csv or .jsonl)"),
)
async def sites_import(request: Request, actor: ActorDep) -> Any:
    """Admins. All rows or none; apply the policy afterwards to re-decide faces."""
    name, data, _ = await _one_document(request)

    def run() -> Any:
        with _document(name or "sites.csv", data) as path:
            return sites.import_sites(_svc(request).lib, actor, path)

    return await _in_thread(run)


@router.get(
    "/policy",
    response_model=m.PolicyShown,
    tags=["admin"],
    summary="The policy in force, its version, and whether the file has edits",
)
def policy_show(svc: SvcDep, actor: ActorDep) -> Any:
    """Every role."""
    return svc.lib.policy_summary(actor)


@router.post(
    "/policy/apply",
    response_model=m.PolicyApplied,
    tags=["admin"],
    summary="Validate the policy file, put it in force, re-decide every face",
)
def policy_apply(svc: SvcDep, actor: ActorDep, full: bool = False) -> Any:
    """Admins. ``full``: re-decide every photo, not only those the changes can affect."""
    return apply_policy(svc.lib, actor, full=full)


@router.get(
    "/ingest/runs",
    response_model=list[m.IngestRun],
    tags=["admin"],
    summary="The newest ingest runs",
)
def ingest_runs(
    svc: SvcDep, actor: ActorDep, limit: Annotated[int, Query(ge=1, le=1000)] = 50
) -> Any:
    """Admins."""
    return runs.list_runs(svc.lib, actor, limit)


@router.get(
    "/ingest/runs/{run_id}/errors",
    response_model=list[m.IngestProblem],
    tags=["admin"],
    summary="The items one ingest run could not store, or warned about",
)
def ingest_errors(
    svc: SvcDep, actor: ActorDep, run_id: int,
    level: Annotated[Literal["error", "warning"] | None, Query()] = None,
) -> Any:  # fmt: skip
    """Admins."""
    rows = runs.run_problems(svc.lib, actor, run_id)
    return [r for r in rows if level is None or r["level"] == level]


@router.get(
    "/optouts", response_model=list[m.Optout], tags=["governance"], summary="Every opt-out request"
)
def optouts(svc: SvcDep, actor: ActorDep) -> Any:
    """Admins, custodians and auditors."""
    return list_optouts(svc.lib, actor)
