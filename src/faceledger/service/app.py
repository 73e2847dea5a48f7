"""The FastAPI app: API-key auth, JSON endpoints over the library, and a small search page.

Every endpoint is a thin call into the library, which authorizes by role and writes the audit log.
Endpoints are plain ``def`` functions, so FastAPI runs the synchronous library calls in its thread
pool; the one library opened by :func:`create_app` is shared by those threads (its SQLAlchemy
engine pools connections: one thread uses a connection at a time). What one request may cost is
bounded in ``bounds`` (concurrent searches, bytes, decoded pixels) and ``auth`` (argon2 checks of
API keys).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import Enum
from http import HTTPStatus
from importlib.resources import files
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from faceledger import __version__
from faceledger.app import answers_models as m
from faceledger.app.answers import answer
from faceledger.app.library import Actor, Library
from faceledger.app.limits import THRESHOLD_MAX, TOP_K_MAX
from faceledger.app.search import Probe, search_faces
from faceledger.catalog.maintenance import ping
from faceledger.config import Settings
from faceledger.errors import (
    FaceledgerError,
    InputError,
)
from faceledger.index import set_search_threads
from faceledger.policy import SIGNALS
from faceledger.service import api, compreface
from faceledger.service.auth import KeyAuthenticator, actor_for_credentials
from faceledger.service.bounds import HeavySlots, check_pixel_budget
from faceledger.service.console import make_console_limits
from faceledger.service.console import router as console_router
from faceledger.service.docs import add_docs
from faceledger.service.uploads import read_multipart

__all__ = ["create_app", "status_for", "MAX_PROBES"]

#: Most probe images one search request may carry.
MAX_PROBES = 16
#: The CLI's bounds for the same options.

def status_for(exc: FaceledgerError) -> int:
    """The HTTP status of a library error (each class in errors.py names its own)."""
    return exc.http_status


class ErrorBody(BaseModel):
    """Every error answer: the error's type and a message a user can act on."""

    error: str
    message: str


Signal = Enum("Signal", {s: s for s in SIGNALS}, type=str)  # type: ignore[misc]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No API key, or one that is not valid"},
    403: {"model": ErrorBody, "description": "The user's role or the policy refuses this"},
    429: {
        "model": ErrorBody,
        "description": "Too many failed API key checks from this address or for this key "
        "(see Retry-After)",
    },
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such id (or hidden from this user)"}
}

_SEARCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["images"],
                    "properties": {
                        "images": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": f"One to {MAX_PROBES} probe photos (kept in memory "
                            "only; each at most the configured max_file_bytes, all together at "
                            "most request_max_bytes and request_max_pixels decoded pixels).",
                        },
                        "top_k": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": TOP_K_MAX,
                            "default": 10,
                            "description": "Matches to return per face.",
                        },
                        "threshold": {
                            "type": "number",
                            "minimum": 0,
                            "maximum": THRESHOLD_MAX,
                            "description": "Largest distance reported as a match "
                            "(default: the library's match_threshold).",
                        },
                    },
                }
            }
        },
    }
}


class _Service:
    """What one app holds: the opened library (with its face engine), key checks, request slots."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.lib = Library.open(settings)
        self.auth = KeyAuthenticator(settings)
        self.heavy = HeavySlots(settings.service_max_concurrent)
        # The web console's sessions: failed sign-ins and public opt-outs are rate-limited.
        self.console_sign_ins, self.public_optouts = make_console_limits(settings)
        # Chosen once for the process: request threads search concurrently, each on 1 thread.
        set_search_threads(settings.search_threads)

    def load_searchable_index(self) -> None:
        """Open and catch up the searchable index (it never writes its file from here)."""
        self.lib.index("searchable").catch_up()


def _service(request: Request) -> _Service:
    return request.app.state.faceledger


_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="API key",
    description="An API key from `faceledger users key NAME`, sent as `Bearer <key>`.",
)


def _current_actor(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    svc = _service(request)
    address = request.client.host if request.client else ""
    return actor_for_credentials(svc.lib, credentials, svc.auth, address)


async def _heavy_slot(request: Request) -> AsyncIterator[None]:
    """Hold one of the service's heavy slots from before the body is read until the answer."""
    heavy = _service(request).heavy
    heavy.take()
    try:
        yield
    finally:
        heavy.give_back()


ServiceDep = Annotated[_Service, Depends(_service)]
ActorDep = Annotated[Actor, Depends(_current_actor)]


@dataclass(frozen=True)
class _SearchRequest:
    """The probes and options of one search, read from a multipart body into memory."""

    probes: list[Probe]
    top_k: int
    threshold: float | None


async def _read_search(
    request: Request, _slot: Annotated[None, Depends(_heavy_slot)]
) -> _SearchRequest:
    settings = _service(request).settings
    upload = await read_multipart(
        request.headers.get("content-type"),
        request.stream(),
        file_field="images",
        text_fields=("top_k", "threshold"),
        max_file_bytes=settings.max_file_bytes,
        max_files=MAX_PROBES,
        max_body_bytes=settings.request_max_bytes,
        content_length=request.headers.get("content-length"),
    )
    if not upload.files:
        raise InputError("send at least one probe photo in the form field 'images'")
    # Before any probe is decoded: the headers say what decoding them all would cost.
    check_pixel_budget(upload.files, settings.request_max_pixels)
    top_k = _number(upload.fields.get("top_k"), int, "top_k", 1, TOP_K_MAX)
    threshold = _number(upload.fields.get("threshold"), float, "threshold", 0.0, THRESHOLD_MAX)
    probes = [Probe(name, data) for name, data in upload.files]
    return _SearchRequest(probes, 10 if top_k is None else int(top_k), threshold)


def _number(raw: str | None, kind: type, name: str, low: float, high: float) -> Any:
    if raw is None or not raw.strip():
        return None
    try:
        value = kind(raw.strip())
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        what = "a whole number" if kind is int else "a number"
        raise InputError(f"{name} must be {what} from {low:g} to {high:g}, not {raw!r}")
    return value


def _error(status: int, error: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "message": message}, status_code=status, headers=headers)


def _page() -> tuple[str, str]:
    """The search page and a Content-Security-Policy that allows only its own inline script."""
    html = (files("faceledger.service") / "templates" / "index.html").read_text(encoding="utf-8")
    script = re.search(r"<script>(.*?)</script>", html, re.S)
    digest = base64.b64encode(hashlib.sha256(script.group(1).encode()).digest()).decode()
    csp = (
        f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; "
        "connect-src 'self'; img-src 'self'; form-action 'none'; base-uri 'none'; "
        "frame-ancestors 'none'"
    )
    return html, csp


def create_app(settings: Settings) -> FastAPI:
    """The web service over the library in ``settings`` (opened now, closed at shutdown)."""
    service = _Service(settings)
    page, page_csp = _page()

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        service.lib.close()

    app = FastAPI(
        title="faceledger",
        version=__version__,
        summary="Face search with provenance, blocking and an audit log.",
        description="Authenticate with `Authorization: Bearer <api key>` (an admin issues keys "
        "with `faceledger users key NAME`). What each user may do follows their role; every "
        "search and every read of a face or photo is written to the audit log. Errors are "
        '`{"error": type, "message": text}`.',
        lifespan=lifespan,
        docs_url=None,  # served from packaged assets by add_docs, not from a CDN
        redoc_url=None,
    )
    app.state.faceledger = service
    add_docs(app)
    api.include_routers(app, api.router, compreface.router)

    @app.exception_handler(FaceledgerError)
    async def _library_error(_request: Request, exc: FaceledgerError) -> JSONResponse:
        return _error(status_for(exc), type(exc).__name__, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [
            f"{'.'.join(str(x) for x in e['loc'][1:]) or e['loc'][0]}: {e['msg']}"
            for e in exc.errors()
        ]
        return _error(422, "InputError", "; ".join(parts))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        error = HTTPStatus(exc.status_code).phrase.replace(" ", "")
        return _error(exc.status_code, error, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, _exc: Exception) -> JSONResponse:
        # The traceback goes to the server log; the client learns nothing of the internals.
        return _error(500, "InternalError", "an unexpected error; the server log has details")

    # The web console (session cookies, CSRF-checked forms) and the public opt-out page.
    api.include_routers(app, console_router)

    @app.get("/", include_in_schema=False, response_class=HTMLResponse)
    def index_page() -> HTMLResponse:
        return HTMLResponse(
            page,
            headers={"Content-Security-Policy": page_csp, "X-Content-Type-Options": "nosniff"},
        )

    @app.get(
        "/healthz",
        summary="Is the service up and its catalog reachable",
        tags=["service"],
        response_model=m.Health,
    )
    def healthz(svc: ServiceDep) -> Any:
        """No authentication and no counts: only whether the catalog answers."""
        ping(svc.lib.catalog.engine)
        return {"status": "ok", "version": __version__}

    @app.post(
        "/search",
        summary="Find stored faces that match the faces in probe photos",
        tags=["search"],
        openapi_extra=_SEARCH_BODY,
        response_model=list[m.SearchEntry],
        response_model_exclude_unset=True,
        responses={
            **_ERRORS,
            413: {
                "model": ErrorBody,
                "description": "A probe is over max_file_bytes, the body over "
                "request_max_bytes, or the probes' pixels over request_max_pixels",
            },
            503: {
                "model": ErrorBody,
                "description": "service_max_concurrent searches are running (see Retry-After)",
            },
            422: {"model": ErrorBody, "description": "A malformed request"},
        },
    )
    def search(
        svc: ServiceDep,
        actor: ActorDep,
        body: Annotated[_SearchRequest, Depends(_read_search)],
    ) -> Any:
        """For each probe photo, each face found and its matches with their provenance.

        Probes are held in memory only, never written to disk or the catalog; only the
        searchable index is consulted (blocked faces are not in it). Each search is an entry in
        the audit log. A probe that cannot be decoded gets an `error` in its entry.
        """
        svc.load_searchable_index()
        return search_faces(
            svc.lib, actor, body.probes, body.top_k, body.threshold, engine=svc.lib.face_engine()
        )

    @app.get(
        "/photos/{photo_id}",
        summary="A photo with its provenance, jurisdictions and faces",
        tags=["catalog"],
        response_model=m.Photo,
        response_model_exclude_unset=True,
        responses={**_ERRORS, **_NOT_FOUND},
    )
    def show_photo(svc: ServiceDep, actor: ActorDep, photo_id: int) -> Any:
        """Blocked faces are shown to custodians only (with a current attestation)."""
        return svc.lib.show_photo(actor, photo_id)

    @app.get(
        "/faces/{face_id}",
        summary="One face: box, landmarks, model and when its vector was collected",
        tags=["catalog"],
        response_model=m.Face,
        response_model_exclude_unset=True,
        responses={**_ERRORS, **_NOT_FOUND},
    )
    def show_face(svc: ServiceDep, actor: ActorDep, face_id: int) -> Any:
        """The vector itself is never returned; a blocked face is 'not found' for non-custodians."""
        return svc.lib.show_face(actor, face_id)

    @app.get(
        "/stats",
        summary="Counts of photos, sources, websites, faces and ingest runs",
        tags=["catalog"],
        response_model=m.Stats,
        response_model_exclude_unset=True,
        responses=_ERRORS,
    )
    def stats(svc: ServiceDep, actor: ActorDep) -> Any:
        """Blocked faces are counted for custodians only."""
        svc.load_searchable_index()
        return svc.lib.stats(actor)

    @app.get(
        "/discovery/count",
        summary="How many photos, faces and source URLs, in total and per signal",
        tags=["discovery"],
        response_model=m.CountAnswer,
        response_model_exclude_unset=True,
        responses=_ERRORS,
    )
    def discovery_count(
        svc: ServiceDep,
        actor: ActorDep,
        blocked: Annotated[
            bool | None,
            Query(description="true: blocked faces only (custodians); false: searchable only"),
        ] = None,
        jurisdiction: Annotated[
            str | None,
            Query(
                max_length=16, description="Region code such as US-IL (a country covers its states)"
            ),
        ] = None,
        signal: Annotated[Signal | None, Query(description="Count only this signal")] = None,
    ) -> Any:
        """Custodians and auditors; blocked faces are in scope for custodians only."""
        return answer(
            svc.lib,
            actor,
            "count",
            blocked=blocked,
            jurisdiction=jurisdiction,
            signal=signal.value if signal is not None else None,
        )

    return app
