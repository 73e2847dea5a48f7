"""The CompreFace-compatible API under ``/api/v1/``: CompreFace's clients work unchanged.

``x-api-key`` carries a faceledger user's API key, and that user's role decides what each call
may do (the README lists them). Each route is one call into :mod:`faceledger.app.compreface`.
Errors take CompreFace's shape, ``{"message": text, "code": number}``, here only; the native
API keeps its own.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from faceledger.app import answers_models as m
from faceledger.app import compreface as cf
from faceledger.app.library import Actor
from faceledger.app.probes import Probe
from faceledger.errors import (
    BadOptionError,
    ConflictError,
    FaceledgerError,
    ImageTooLargeError,
    InputError,
    NoFaceError,
    NotFoundError,
    PermissionDenied,
)
from faceledger.service.auth import actor_for_credentials
from faceledger.service.bounds import check_pixel_budget
from faceledger.service.uploads import read_multipart

__all__ = ["router", "error_code"]

#: (error class, CompreFace code); the first class an error is an instance of gives its code.
#: 28 is CompreFace's own "no face"; the others are faceledger's, listed in the README.
_CODES: tuple[tuple[type[FaceledgerError], int], ...] = (
    (NoFaceError, 28),
    (ImageTooLargeError, 9),
    (BadOptionError, 20),
    (InputError, 26),
    (NotFoundError, 30),
    (ConflictError, 29),
    (PermissionDenied, 3),
)
_HTTP_CODES = {401: 5, 413: 9, 429: 11, 503: 10}


def error_code(exc: FaceledgerError) -> int:
    """The CompreFace ``code`` of a library error (0: none more precise)."""
    return next((code for cls, code in _CODES if isinstance(exc, cls)), 0)


def _status(exc: FaceledgerError) -> int:
    # CompreFace answers 400 to anything wrong with the request or its image.
    return 400 if isinstance(exc, InputError | BadOptionError) and exc.http_status != 413 else (
        exc.http_status
    )


def _error(status: int, code: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"message": message, "code": code}, status_code=status, headers=headers)


class CompreFaceRoute(APIRoute):
    """A route whose errors, whatever raised them, answer in CompreFace's shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The usual handler, with every error turned into ``{"message", "code"}``."""
        handler = super().get_route_handler()

        async def compreface_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except FaceledgerError as exc:
                return _error(_status(exc), error_code(exc), str(exc))
            except RequestValidationError as exc:
                parts = [f"{'.'.join(str(x) for x in e['loc'][1:]) or e['loc'][0]}: {e['msg']}"
                         for e in exc.errors()]  # fmt: skip
                return _error(400, 26, "; ".join(parts))
            except HTTPException as exc:
                return _error(exc.status_code, _HTTP_CODES.get(exc.status_code, 0),
                              str(exc.detail), getattr(exc, "headers", None))  # fmt: skip

        return compreface_handler


_ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": m.CfError, "description": d}
    for s, d in {400: "A bad request or image (code 28: no face found)",
                 401: "No x-api-key, or one that is not valid",
                 403: "The key's user may not do this", 404: "No such subject or example"}.items()
}  # fmt: skip

router = APIRouter(
    prefix="/api/v1", tags=["compreface"], route_class=CompreFaceRoute, responses=_ERRORS
)

_x_api_key = APIKeyHeader(
    name="x-api-key", auto_error=False, scheme_name="x-api-key",
    description="A faceledger API key (`faceledger users key NAME`), as CompreFace sends it.",
)  # fmt: skip


def _actor(request: Request, key: Annotated[str | None, Depends(_x_api_key)]) -> Actor:
    svc = request.app.state.faceledger
    creds = HTTPAuthorizationCredentials(scheme="Bearer", credentials=key) if key else None
    if creds is None:
        raise HTTPException(401, "send a faceledger API key in the x-api-key header")
    address = request.client.host if request.client else ""
    return actor_for_credentials(svc.lib, creds, svc.auth, address)


ActorDep = Annotated[Actor, Depends(_actor)]


def _lib(request: Request) -> Any:
    return request.app.state.faceledger.lib


async def _heavy(request: Request):
    """One of the service's heavy slots for the length of a request that embeds a probe."""
    heavy = request.app.state.faceledger.heavy
    heavy.take()
    try:
        yield
    finally:
        heavy.give_back()


HeavyDep = Annotated[None, Depends(_heavy)]


async def _images(request: Request, *fields: str) -> list[Probe]:
    """The images of a multipart body (or CompreFace's JSON of base64 strings), in memory."""
    settings = request.app.state.faceledger.settings
    kind = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if kind == "application/json":
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > settings.request_max_bytes:
                raise ImageTooLargeError("the request body is over the limit for all images")
        try:
            data = json.loads(body or b"{}")
            files = [(f, base64.b64decode(data[f], validate=True)) for f in fields if f in data]
        except (ValueError, TypeError, binascii.Error):
            raise InputError("send JSON with each image as a base64 string") from None
        for _, image in files:
            if len(image) > settings.max_file_bytes:
                raise ImageTooLargeError("an image is over the limit of max_file_bytes")
        named = files
    else:
        # One image: CompreFace's field 'file'; two (verify): each a field of its own.
        single = fields == ("file",)
        upload = await read_multipart(
            request.headers.get("content-type"), request.stream(), file_field="file",
            text_fields=(), max_file_bytes=settings.max_file_bytes, max_files=1,
            max_body_bytes=settings.request_max_bytes,
            content_length=request.headers.get("content-length"),
            document_fields=None if single else dict.fromkeys(fields, settings.max_file_bytes),
        )  # fmt: skip
        by_field = {"file": upload.files[0]} if single and upload.files else upload.documents
        named = [(f, by_field[f][1]) for f in fields if f in by_field]
        names = {f: by_field[f][0] for f in by_field}
    missing = [f for f in fields if f not in dict(named)]
    if missing:
        raise InputError(f"send the image in the field {missing[0]!r}")
    check_pixel_budget(named, settings.request_max_pixels)
    if kind == "application/json":
        return [Probe(f, data) for f, data in named]
    return [Probe(names[f], data) for f, data in named]


_IMAGE_BODY = {
    "requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
            "file": {"type": "string", "format": "binary"}}}},
        "application/json": {"schema": {"type": "object", "required": ["file"], "properties": {
            "file": {"type": "string", "description": "The image, base64"}}}},
    }}
}  # fmt: skip
_TWO_IMAGES = {
    "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["source_image", "target_image"], "properties": {
            "source_image": {"type": "string", "format": "binary"},
            "target_image": {"type": "string", "format": "binary"}}}}}}
}  # fmt: skip

DetProb = Annotated[float | None, Query(ge=0, le=1, description="Least detection probability")]
Limit = Annotated[int, Query(ge=0, description="Most faces answered, largest first; 0: all")]
Plugins = Annotated[
    str | None,
    Query(description="calculator and landmarks; age, gender, emotion, race and mask are refused"),
]
Status = Annotated[bool, Query(description="Accepted for compatibility")]


def _options(
    limit: int = 0, det: float | None = None, plugins: str | None = None, count: int = 1
) -> cf.Options:
    return cf.Options(limit, det, count, cf.parse_plugins(plugins))


# -- face collection --
@router.post("/recognition/faces", response_model=m.CfExample, openapi_extra=_IMAGE_BODY,
             summary="Add an example of a subject (ingested like any photo)")  # fmt: skip
async def add_example(
    request: Request, actor: ActorDep, _slot: HeavyDep,
    subject: Annotated[str, Query(description="The subject (faceledger's subject_ref)")],
    det_prob_threshold: DetProb = None,
    uploader_region: Annotated[str | None, Query(description="e.g. US-IL")] = None,
) -> Any:  # fmt: skip
    """Admins. Provenance: source ``api:USER``, retrieved now, the uploader region given."""
    (probe,) = await _images(request, "file")
    return await run_in_threadpool(
        cf.add_example, _lib(request), actor, subject, probe,
        uploader_region=uploader_region, det_prob_threshold=det_prob_threshold,
    )  # fmt: skip


@router.get("/recognition/faces", response_model=m.CfExamples,
            summary="The examples the caller may see")  # fmt: skip
def list_examples(
    request: Request, actor: ActorDep, subject: str | None = None,
    page: Annotated[int, Query(ge=0)] = 0, size: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> Any:  # fmt: skip
    """Admins, searchers and custodians; a blocked example only to attested custodians."""
    return cf.list_examples(_lib(request), actor, subject, page, size)


@router.delete("/recognition/faces", response_model=m.CfDeleted,
               summary="Erase every example of a subject, completely")  # fmt: skip
def delete_examples(request: Request, actor: ActorDep, subject: str) -> Any:
    """Custodians (erasure): rows, vectors, both indexes and stored files."""
    return cf.delete_examples(_lib(request), actor, subject=subject)


@router.post("/recognition/faces/delete", response_model=list[m.CfExample],
             summary="Erase several examples by image id")  # fmt: skip
def delete_many(
    request: Request, actor: ActorDep, image_ids: Annotated[list[str], Body()]
) -> Any:
    """Custodians. Ids that are not examples are skipped."""
    out = []
    for image_id in image_ids:
        try:
            out.append(cf.delete_examples(_lib(request), actor, image_id=image_id))
        except NotFoundError:
            continue
    return out


@router.delete("/recognition/faces/{image_id}", response_model=m.CfExample,
               summary="Erase one example, completely")  # fmt: skip
def delete_example(request: Request, actor: ActorDep, image_id: str) -> Any:
    """Custodians (erasure)."""
    return cf.delete_examples(_lib(request), actor, image_id=image_id)


@router.post("/recognition/faces/{image_id}/verify", response_model=m.CfVerifyExample,
             response_model_exclude_none=True, openapi_extra=_IMAGE_BODY,
             summary="How similar the probe's faces are to one example")  # fmt: skip
async def verify_example(
    request: Request, actor: ActorDep, _slot: HeavyDep, image_id: str,
    limit: Limit = 0, det_prob_threshold: DetProb = None, face_plugins: Plugins = None,
    status: Status = False,
) -> Any:  # fmt: skip
    """Admins and searchers. The probe is held in memory only."""
    opts = _options(limit, det_prob_threshold, face_plugins)
    (probe,) = await _images(request, "file")
    return await run_in_threadpool(cf.verify_example, _lib(request), actor, image_id, probe, opts)


# -- subjects --
class _Subject(BaseModel):
    subject: str


@router.get("/recognition/subjects", response_model=m.CfSubjects,
            summary="Every subject the caller may see")  # fmt: skip
def list_subjects(request: Request, actor: ActorDep) -> Any:
    """Admins, searchers and custodians."""
    return cf.list_subjects(_lib(request), actor)


@router.post("/recognition/subjects", response_model=m.CfSubjectName,
             summary="Add a subject with no example yet")  # fmt: skip
def add_subject(request: Request, actor: ActorDep, body: _Subject) -> Any:
    """Admins."""
    return cf.add_subject(_lib(request), actor, body.subject)


@router.put("/recognition/subjects/{subject}", response_model=m.CfUpdated,
            summary="Rename a subject (into an existing one: they merge)")  # fmt: skip
def rename_subject(request: Request, actor: ActorDep, subject: str, body: _Subject) -> Any:
    """Admins. The renamed subject's photos are re-decided under the policy."""
    return cf.rename_subject(_lib(request), actor, subject, body.subject)


@router.delete("/recognition/subjects/{subject}", response_model=m.CfSubjectName,
               summary="Delete a subject, erasing its examples completely")  # fmt: skip
def delete_subject(request: Request, actor: ActorDep, subject: str) -> Any:
    """Custodians (erasure)."""
    return cf.delete_subjects(_lib(request), actor, subject)


@router.delete("/recognition/subjects", response_model=m.CfDeleted,
               summary="Delete every subject, erasing their examples completely")  # fmt: skip
def delete_all_subjects(request: Request, actor: ActorDep) -> Any:
    """Custodians (erasure)."""
    return cf.delete_subjects(_lib(request), actor)


# -- recognize, detect, verify --
@router.post("/recognition/recognize", response_model=m.CfRecognize,
             response_model_exclude_none=True, openapi_extra=_IMAGE_BODY,
             summary="The most similar subjects of each face in the probe")  # fmt: skip
async def recognize(
    request: Request, actor: ActorDep, _slot: HeavyDep, limit: Limit = 0,
    det_prob_threshold: DetProb = None,
    prediction_count: Annotated[int, Query(ge=1, le=100)] = 1,
    face_plugins: Plugins = None, status: Status = False,
) -> Any:  # fmt: skip
    """Admins and searchers. Searchable faces only; the probe is held in memory only."""
    opts = _options(limit, det_prob_threshold, face_plugins, prediction_count)
    (probe,) = await _images(request, "file")
    return await run_in_threadpool(cf.recognize, _lib(request), actor, probe, opts)


@router.post("/detection/detect", response_model=m.CfDetect, response_model_exclude_none=True,
             openapi_extra=_IMAGE_BODY, summary="The faces in the probe")  # fmt: skip
async def detect(
    request: Request, actor: ActorDep, _slot: HeavyDep, limit: Limit = 0,
    det_prob_threshold: DetProb = None, face_plugins: Plugins = None, status: Status = False,
) -> Any:  # fmt: skip
    """Admins and searchers."""
    opts = _options(limit, det_prob_threshold, face_plugins)
    (probe,) = await _images(request, "file")
    return await run_in_threadpool(cf.detect, _lib(request), actor, probe, opts)


@router.post("/verification/verify", response_model=m.CfVerify, response_model_exclude_none=True,
             openapi_extra=_TWO_IMAGES, summary="How similar two images' faces are")  # fmt: skip
async def verify(
    request: Request, actor: ActorDep, _slot: HeavyDep, limit: Limit = 0,
    det_prob_threshold: DetProb = None, face_plugins: Plugins = None, status: Status = False,
) -> Any:  # fmt: skip
    """Admins and searchers. Both images are held in memory only."""
    opts = _options(limit, det_prob_threshold, face_plugins)
    source, target = await _images(request, "source_image", "target_image")
    return await run_in_threadpool(cf.verify, _lib(request), actor, source, target, opts)
