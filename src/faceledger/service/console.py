"""The web console: sign-in, a page per role, and the public opt-out page; server-rendered.

Every page is a thin call into the same ``app`` functions the CLI uses, acting as the signed-in
user; what a role may do is decided there, never here. Pages are Jinja2 templates and one CSS
file shipped in the package, with no script at all (boxes on a probe are inline SVG), under a
Content-Security-Policy that allows only the service's own style sheet and images.

Sessions: an HttpOnly, SameSite=Strict cookie (Secure when the request came over TLS) holding a
random token; the catalog keeps its hash (``app.sessions``). Every POST carries a CSRF token:
the session's own one once signed in, a double-submit cookie before (sign-in, the opt-out page).
Uploads are read into memory only, within the same bounds as the search API.
"""

from __future__ import annotations

import asyncio
import hmac
import io
import json
import re
import secrets
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable, Coroutine
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from faceledger.app import images, runs, sessions
from faceledger.app.answers import answer
from faceledger.app.discovery import locate, people, produce, report
from faceledger.app.governance import attestations, auditing, holds, users
from faceledger.app.library import Actor
from faceledger.app.optout import submit_optout
from faceledger.app.policy import apply_policy
from faceledger.app.probes import Probe
from faceledger.app.publish import publish_policy
from faceledger.app.search import search_faces
from faceledger.app.sessions import ConsoleSession
from faceledger.app.sites import import_sites, list_sites
from faceledger.errors import (
    FaceledgerError,
    ImageTooLargeError,
    InputError,
    PermissionDenied,
)
from faceledger.ids import checked_id
from faceledger.policy import PERMISSIONS, PUBLIC_ROLE, ROLES, SIGNALS
from faceledger.records import AuditFilter
from faceledger.service.bounds import check_pixel_budget
from faceledger.service.ratelimit import TokenBuckets, retry_after
from faceledger.service.uploads import MemoryUpload, read_multipart

__all__ = [
    "router",
    "SESSION_COOKIE",
    "CSRF_COOKIE",
    "PUBLIC_ACTOR",
    "console_session",
    "explain_distance",
    "make_console_limits",
]

SESSION_COOKIE = "fl_session"
#: The double-submit CSRF cookie of the forms shown before sign-in.
CSRF_COOKIE = "fl_csrf"
#: The built-in actor of the public opt-out page.
PUBLIC_ACTOR = Actor("public", PUBLIC_ROLE)
#: Largest authority file, sites file or statement accepted from a form (bytes).
DOCUMENT_MAX_BYTES = 2 * 1024 * 1024
#: Audit entries shown on the auditor's page (the JSON download has them all).
AUDIT_ROWS_SHOWN = 500

_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

_templates = Environment(
    loader=PackageLoader("faceledger.service", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def explain_distance(distance: float, threshold: float) -> str:
    """A distance between two face vectors in plain words, against the match threshold."""
    if distance < threshold * 0.6:
        return f"far under the match threshold of {threshold}: very likely the same person"
    if distance < threshold * 0.85:
        return f"under the match threshold of {threshold}: probably the same person"
    if distance <= threshold:
        return (f"just under the match threshold of {threshold}: possibly the same person; "
                "look closely, look-alikes land here")  # fmt: skip
    return f"over the match threshold of {threshold}: probably a different person"


_templates.globals["explain"] = explain_distance

#: Console pages: (path, title, the action whose roles see it in the menu).
PAGES = [
    ("/console/search", "Search", "search"),
    ("/console/discovery", "Discovery", "discovery.count"),
    ("/console/locate", "Locate", "discovery.locate"),
    ("/console/holds", "Holds", "hold.list"),
    ("/console/audit", "Audit", "audit.verify"),
    ("/console/admin/users", "Users", "users.manage"),
    ("/console/admin/sites", "Sites", "sites.import"),
    ("/console/admin/policy", "Policy", "policy.apply"),
    ("/console/admin/runs", "Ingest runs", "ingest"),
    ("/console/attest", "Attestation", "attest"),
]


class _SignInNeeded(Exception):
    """No open session: the browser is sent to the sign-in page."""


class _ConsoleRoute(APIRoute):
    """Console routes answer library errors with an HTML page, not the API's JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except _SignInNeeded:
                return RedirectResponse("/console/sign-in", status_code=303)
            except FaceledgerError as exc:
                session = getattr(request.state, "console_session", None)
                return _render(request, "error.html", session, status=exc.http_status,
                               title="Not done", message=str(exc))  # fmt: skip

        return route


router = APIRouter(route_class=_ConsoleRoute, include_in_schema=False)


# -- plumbing ---------------------------------------------------------------------------------
def _svc(request: Request) -> Any:
    return request.app.state.faceledger


def _menu(actor: Actor) -> list[tuple[str, str]]:
    return [(path, title) for path, title, action in PAGES if actor.role in PERMISSIONS[action]]


def _render(
    request: Request, template: str, session: ConsoleSession | None, status: int = 200,
    **context: Any,
) -> HTMLResponse:  # fmt: skip
    page = _templates.get_template(template).render(
        session=session,
        actor=session.actor if session else None,
        menu=_menu(session.actor) if session else [],
        csrf=session.csrf_token if session else context.pop("csrf", ""),
        path=request.url.path,
        **context,
    )
    return HTMLResponse(page, status_code=status, headers=_HEADERS)


def console_session(request: Request) -> ConsoleSession:
    """The signed-in session of this request (the session auth dependency of console pages)."""
    svc = _svc(request)
    found = sessions.session_for(svc.lib, request.cookies.get(SESSION_COOKIE))
    if found is None:
        raise _SignInNeeded()
    request.state.console_session = found
    return found


SessionDep = Annotated[ConsoleSession, Depends(console_session)]


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _csrf_refused() -> PermissionDenied:
    return PermissionDenied(
        "the form's security token is missing or stale: reload the page and send it again"
    )


async def _posted(request: Request, session: SessionDep) -> dict[str, str]:
    """A URL-encoded form whose CSRF token is the session's (every console POST is checked)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind != "application/x-www-form-urlencoded":
        raise InputError("send the form as the page does (application/x-www-form-urlencoded)")
    form = await request.form(max_files=0, max_fields=100)
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    if not sessions.csrf_matches(session, values.get("csrf")):
        raise _csrf_refused()
    return values


FormDep = Annotated[dict[str, str], Depends(_posted)]


async def _upload(
    request: Request, file_field: str, text_fields: tuple[str, ...], max_files: int = 1,
    documents: tuple[str, ...] = (),
) -> MemoryUpload:  # fmt: skip
    """A multipart form read into memory within the search API's bounds (never to disk)."""
    settings = _svc(request).settings
    upload = await read_multipart(
        request.headers.get("content-type"),
        request.stream(),
        file_field=file_field,
        text_fields=("csrf", *text_fields),
        max_file_bytes=settings.max_file_bytes,
        max_files=max_files,
        max_body_bytes=settings.request_max_bytes,
        content_length=request.headers.get("content-length"),
        document_fields={name: DOCUMENT_MAX_BYTES for name in documents},
    )
    upload.files = [(n, d) for n, d in upload.files if d]  # an empty file input sends b""
    check_pixel_budget(upload.files, settings.request_max_pixels)
    return upload


def _session_upload_checked(session: ConsoleSession, upload: MemoryUpload) -> None:
    if not sessions.csrf_matches(session, upload.fields.get("csrf")):
        raise _csrf_refused()


def _heavy(request: Request):
    heavy = _svc(request).heavy
    heavy.take()
    return heavy


def _optional(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _scope(blocked: str | None) -> bool | None:
    return {"blocked": True, "searchable": False}.get((blocked or "").strip())


def _int(value: str | None, name: str, low: int, high: int, default: int) -> int:
    text = (value or "").strip()
    if not text:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise InputError(f"{name} must be a whole number from {low} to {high}, not {text!r}")
    return int(text)


def _photo_ids(text: str | None) -> list[int]:
    ids = [checked_id("photo", int(x)) for x in re.findall(r"\d+", text or "")]
    if not ids:
        raise InputError("list the photo ids to produce (or choose a jurisdiction)")
    return ids


def _done(request: Request, session: ConsoleSession, title: str, result: Any,
          back: str) -> HTMLResponse:  # fmt: skip
    return _render(request, "result.html", session, title=title, result=result, back=back)


# -- sign-in and sign-out ---------------------------------------------------------------------
def _pre_csrf(request: Request) -> str:
    token = request.cookies.get(CSRF_COOKIE)
    return token if token and len(token) <= 64 else secrets.token_urlsafe(24)


def _with_pre_csrf(request: Request, response: HTMLResponse, token: str) -> HTMLResponse:
    response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict",
                        secure=_secure(request), path="/")  # fmt: skip
    return response


def _pre_csrf_ok(request: Request, sent: str | None) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE)
    return bool(cookie and sent) and hmac.compare_digest(cookie.encode(), str(sent).encode())


@router.get("/console/sign-in")
def sign_in_page(request: Request) -> HTMLResponse:
    """The sign-in form (name and API key or password)."""
    token = _pre_csrf(request)
    page = _render(request, "sign_in.html", None, csrf=token, title="Sign in")
    return _with_pre_csrf(request, page, token)


@router.post("/console/sign-in")
async def sign_in(request: Request) -> Response:
    """Check the name and secret, open a session, set its cookie; failures audited, limited."""
    svc = _svc(request)
    form = await request.form(max_files=0, max_fields=10)
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    token = _pre_csrf(request)
    if not _pre_csrf_ok(request, values.get("csrf")):
        page = _render(request, "sign_in.html", None, status=403, csrf=token, title="Sign in",
                       message="The form had expired: sign in again.")  # fmt: skip
        return _with_pre_csrf(request, page, token)
    name = values.get("name", "")
    address = request.client.host if request.client else ""
    buckets = [("address", address), ("name", name[:64]), ("service", "")]
    wait = svc.console_sign_ins.take(buckets)
    if wait:
        page = _render(request, "sign_in.html", None, status=429, csrf=token, title="Sign in",
                       message=f"Too many failed sign-ins: wait {retry_after(wait)} s.")
        page.headers["Retry-After"] = retry_after(wait)
        return _with_pre_csrf(request, page, token)
    try:
        signed = await run_in_threadpool(
            sessions.sign_in, svc.lib, name, values.get("secret", ""), address
        )
    except FaceledgerError as exc:
        page = _render(request, "sign_in.html", None, status=exc.http_status, csrf=token,
                       title="Sign in", message=str(exc), name=name)  # fmt: skip
        return _with_pre_csrf(request, page, token)
    svc.console_sign_ins.give_back(buckets)
    response = RedirectResponse("/console", status_code=303)
    response.set_cookie(SESSION_COOKIE, signed.token, httponly=True, samesite="strict",
                        secure=_secure(request), path="/",
                        max_age=svc.settings.session_seconds)  # fmt: skip
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.post("/console/sign-out")
def sign_out(request: Request, form: FormDep) -> Response:
    """End the session and drop its cookie."""
    sessions.sign_out(_svc(request).lib, request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/console/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/console")
def home(request: Request, session: SessionDep) -> Response:
    """The first page the signed-in role may use."""
    menu = _menu(session.actor)
    return RedirectResponse(menu[0][0] if menu else "/console/attest", status_code=303)


@router.get("/static/console.css")
def stylesheet() -> Response:
    """The console's one style sheet."""
    css = (files("faceledger.service") / "static" / "console.css").read_text(encoding="utf-8")
    return Response(css, media_type="text/css",
                    headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"})


# -- searcher ---------------------------------------------------------------------------------
@router.get("/console/search")
def search_page(request: Request, session: SessionDep) -> HTMLResponse:
    """The search form."""
    return _render(request, "search.html", session, title="Search by photo", results=None)


@router.post("/console/search")
async def search(request: Request, session: SessionDep) -> HTMLResponse:
    """Search the uploaded photo; show the probe with its faces boxed and each face's matches."""
    svc = _svc(request)
    heavy = _heavy(request)
    try:
        upload = await _upload(request, "photo", ("top_k",))
        _session_upload_checked(session, upload)
        if not upload.files:
            raise InputError("choose a photo to search with")
        top_k = _int(upload.fields.get("top_k"), "top_k", 1, 50, 5)
        name, data = upload.files[0]

        def run() -> tuple[Any, Any]:
            svc.load_searchable_index()
            found = search_faces(svc.lib, session.actor, [Probe(name, data)], top_k,
                                 engine=svc.lib.face_engine())  # fmt: skip
            return found[0], images.probe_preview(svc.settings, data)

        entry, preview = await run_in_threadpool(run)
    finally:
        heavy.give_back()
    return _render(request, "search.html", session, title="Search by photo", results=entry,
                   preview=preview, threshold=svc.settings.match_threshold)  # fmt: skip


@router.get("/console/faces/{face_id}/crop.jpg")
def face_crop(request: Request, session: SessionDep, face_id: int) -> Response:
    """A crop of one stored face, cut in memory from its photo (audited)."""
    data = images.face_crop(_svc(request).lib, session.actor, checked_id("face", face_id))
    return Response(data, media_type="image/jpeg",
                    headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


# -- custodian --------------------------------------------------------------------------------
@router.get("/console/discovery")
def discovery_page(
    request: Request,
    session: SessionDep,
    blocked: Annotated[str | None, Query(max_length=16)] = None,
    jurisdiction: Annotated[str | None, Query(max_length=16)] = None,
    signal: Annotated[str | None, Query(max_length=16)] = None,
    show: Annotated[str | None, Query(max_length=16)] = None,
) -> HTMLResponse:
    """Counts, and on request sources or vector dates, with the filters of the CLI."""
    lib = _svc(request).lib
    scope, region, sig = _scope(blocked), _optional(jurisdiction), _optional(signal)
    if sig is not None and sig not in SIGNALS:
        raise InputError(f"signal must be one of {', '.join(SIGNALS)}")
    counts = answer(lib, session.actor, "count", blocked=scope, jurisdiction=region, signal=sig)
    rows, columns = None, []
    if show == "sources":
        rows = answer(lib, session.actor, "sources", blocked=scope, jurisdiction=region)
        columns = ["photo_id", "source_url", "page_url", "website", "publisher",
                   "publisher_region", "terms_url"]  # fmt: skip
    elif show == "vector_dates":
        rows = answer(lib, session.actor, "vector_dates", blocked=scope, jurisdiction=region)
        columns = ["face_id", "photo_id", "source_url", "retrieved_at", "vector_collected_at",
                   "model"]  # fmt: skip
    count_rows = [{"signal": "all", **counts["total"]}]
    count_rows += [{"signal": s, **c} for s, c in counts["by_signal"].items()]
    return _render(request, "discovery.html", session, title="Discovery", counts=counts,
                   count_rows=count_rows, rows=rows, columns=columns, show=show, signals=SIGNALS,
                   filters={"blocked": blocked or "", "jurisdiction": region or "",
                            "signal": sig or ""})  # fmt: skip


@router.post("/console/people")
def people_estimate(request: Request, session: SessionDep, form: FormDep) -> HTMLResponse:
    """Estimate how many distinct people the selected faces show."""
    data = people(_svc(request).lib, session.actor, blocked=_scope(form.get("blocked")),
                  jurisdiction=_optional(form.get("jurisdiction")))  # fmt: skip
    return _render(request, "people.html", session, title="People estimate", data=data)


@router.get("/console/locate")
def locate_page(request: Request, session: SessionDep) -> HTMLResponse:
    """The locate form: reference photo, matter, authority file."""
    return _render(request, "locate.html", session, title="Locate a person", data=None)


@router.post("/console/locate")
async def locate_person(request: Request, session: SessionDep) -> HTMLResponse:
    """Every photo of the person in the reference photo (memory only), for a matter."""
    svc = _svc(request)
    heavy = _heavy(request)
    try:
        upload = await _upload(request, "photo", ("matter", "include_vault"), max_files=4,
                               documents=("authority",))  # fmt: skip
        _session_upload_checked(session, upload)
        if not upload.files:
            raise InputError("choose a reference photo of the person")
        authority = upload.documents.get("authority")
        authority_text = None
        if authority is not None and authority[1]:
            try:
                authority_text = authority[1].decode("utf-8")
            except UnicodeDecodeError:
                raise InputError("the authority file must be UTF-8 text") from None
        probes = [Probe(n, d) for n, d in upload.files]
        data = await run_in_threadpool(
            locate, svc.lib, session.actor, upload.fields.get("matter", ""), probes=probes,
            include_vault=upload.fields.get("include_vault") == "on",
            authority_text=authority_text,
            authority_name=authority[0] if authority_text is not None else None,
        )  # fmt: skip
        probes.clear()
    finally:
        heavy.give_back()
    return _render(request, "locate.html", session, title="Locate a person", data=data)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:40] or "matter"


@router.post("/console/produce")
def produce_zip(request: Request, session: SessionDep, form: FormDep) -> Response:
    """Make a Bates-numbered production (kept in the library) and download it as a zip."""
    lib = _svc(request).lib
    matter = form.get("matter", "")
    region = _optional(form.get("jurisdiction"))
    blocked = _scope(form.get("blocked"))
    ids = _photo_ids(form.get("photos")) if _optional(form.get("photos")) else None
    if ids is None and region is None and blocked is None:
        raise InputError("list the photo ids to produce, or choose a jurisdiction")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out_dir = lib.root / "productions" / f"{_slug(matter)}-{stamp}-{secrets.token_hex(3)}"
    result = produce(lib, session.actor, matter, (form.get("prefix") or "").strip(), out_dir,
                     photo_ids=ids, jurisdiction=region,
                     blocked=None if ids is not None else blocked)  # fmt: skip
    buffer = io.BytesIO()
    root = Path(result["out_dir"])
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            archive.write(path, f"{result['volume']}/{path.relative_to(root).as_posix()}")
    name = f"{result['volume']}.zip"
    return Response(buffer.getvalue(), media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{name}"',
        "X-Production-Id": str(result["production_id"]),
        "Cache-Control": "no-store"})  # fmt: skip


@router.post("/console/report")
def matter_report(request: Request, session: SessionDep, form: FormDep) -> Response:
    """The matter's discovery report (HTML), made in a temporary folder and served."""
    lib = _svc(request).lib
    folder = Path(tempfile.mkdtemp(prefix="faceledger-report-"))
    try:
        out = folder / "report.html"
        report(lib, session.actor, form.get("matter", ""), out)
        page = out.read_text(encoding="utf-8")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return HTMLResponse(page, headers={
        "Content-Security-Policy": "default-src 'none'; img-src data:; style-src 'unsafe-inline'",
        "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})  # fmt: skip


@router.get("/console/holds")
def holds_page(request: Request, session: SessionDep) -> HTMLResponse:
    """Legal holds, with forms to place and release them."""
    rows = holds.list_holds(_svc(request).lib, session.actor)
    may_manage = session.actor.role in PERMISSIONS["hold.manage"]
    return _render(request, "holds.html", session, title="Legal holds", rows=rows,
                   may_manage=may_manage, scope_help=holds.SCOPE_HELP)  # fmt: skip


@router.post("/console/holds")
def hold_create(request: Request, session: SessionDep, form: FormDep) -> HTMLResponse:
    """Place a legal hold."""
    result = holds.create_hold(_svc(request).lib, session.actor, form.get("matter", ""),
                               form.get("scope", ""))  # fmt: skip
    return _done(request, session, "Hold placed", result, "/console/holds")


@router.post("/console/holds/{hold_id}/release")
def hold_release(request: Request, session: SessionDep, form: FormDep,
                 hold_id: int) -> HTMLResponse:  # fmt: skip
    """Release a hold (carrying out what it deferred)."""
    result = holds.release_hold(_svc(request).lib, session.actor, checked_id("legal hold", hold_id))
    return _done(request, session, "Hold released", result, "/console/holds")


@router.get("/console/attest")
def attest_page(request: Request, session: SessionDep) -> HTMLResponse:
    """The attestation form: the signed-in user signs a statement as themself."""
    return _render(request, "attest.html", session, title="Attestation",
                   days=attestations.DEFAULT_VALID_DAYS)  # fmt: skip


@router.post("/console/attest")
def attest(request: Request, session: SessionDep, form: FormDep) -> HTMLResponse:
    """Record the statement, signed in this session by the signed-in user."""
    days = _int(form.get("valid_days"), "valid_days", 1, 3650, attestations.DEFAULT_VALID_DAYS)
    result = attestations.attest_text(_svc(request).lib, session.actor, session.actor.name,
                                      form.get("statement", ""), days)  # fmt: skip
    return _done(request, session, "Attestation signed", result, "/console/attest")


# -- auditor ----------------------------------------------------------------------------------
def _audit_filter(since: str | None, until: str | None, actor: str | None,
                  action: str | None) -> AuditFilter:  # fmt: skip
    """The console's audit filters (empty fields are no limit) as an AuditFilter."""
    try:
        start, end = auditing.parse_bound(since), auditing.parse_bound(until, end=True)
    except ValueError:
        raise InputError("since and until are ISO 8601 times, e.g. 2026-01-31") from None
    return AuditFilter(start, end, _optional(actor), _optional(action))


@router.get("/console/audit")
def audit_page(
    request: Request,
    session: SessionDep,
    since: Annotated[str | None, Query(max_length=40)] = None,
    until: Annotated[str | None, Query(max_length=40)] = None,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    """Audit verify, and (for roles that may export) the entries matching the filters."""
    lib = _svc(request).lib
    verified = auditing.verify_log(lib, session.actor)
    entries = None
    filters = {"since": since or "", "until": until or "", "actor": actor or "",
               "action": action or ""}  # fmt: skip
    if session.actor.role in PERMISSIONS["audit.export"]:
        where = _audit_filter(since, until, actor, action)
        entries = list(auditing.export_log(lib, session.actor, where))
    shown = entries[-AUDIT_ROWS_SHOWN:] if entries else entries
    return _render(request, "audit.html", session, title="Audit log", verified=verified,
                   entries=shown, total=len(entries or []), filters=filters)  # fmt: skip


@router.get("/console/audit/export.json")
def audit_export(
    request: Request,
    session: SessionDep,
    since: Annotated[str | None, Query(max_length=40)] = None,
    until: Annotated[str | None, Query(max_length=40)] = None,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """The filtered entries as a JSON download (the export is itself logged)."""
    where = _audit_filter(since, until, actor, action)
    entries = list(auditing.export_log(_svc(request).lib, session.actor, where))
    return Response(json.dumps(entries, indent=1), media_type="application/json", headers={
        "Content-Disposition": 'attachment; filename="audit-export.json"',
        "Cache-Control": "no-store"})  # fmt: skip


@router.post("/console/audit/head")
def audit_head(request: Request, session: SessionDep, form: FormDep) -> HTMLResponse:
    """Witness the audit head (copy it somewhere the library's writers cannot reach)."""
    head = auditing.witness_head(_svc(request).lib, session.actor)
    return _done(request, session, "Audit head", head, "/console/audit")


# -- admin ------------------------------------------------------------------------------------
@router.get("/console/admin/users")
def users_page(request: Request, session: SessionDep) -> HTMLResponse:
    """Users with their roles and keys; forms to add, issue keys, set passwords, disable."""
    rows = users.list_users(_svc(request).lib, session.actor)
    return _render(request, "users.html", session, title="Users", rows=rows, roles=ROLES)


@router.post("/console/admin/users")
def user_add(request: Request, session: SessionDep, form: FormDep) -> HTMLResponse:
    """Add a user."""
    result = users.add_user(_svc(request).lib, session.actor, form.get("name", "").strip(),
                            form.get("role", ""), _optional(form.get("customer_type")),
                            _optional(form.get("region")))  # fmt: skip
    return _done(request, session, "User added", result, "/console/admin/users")


@router.post("/console/admin/users/{name}/{what}")
def user_change(request: Request, session: SessionDep, form: FormDep, name: str,
                what: str) -> HTMLResponse:  # fmt: skip
    """Issue a key (shown once), set a password, or disable a user."""
    lib = _svc(request).lib
    if what == "key":
        result = users.new_api_key(lib, session.actor, name)
    elif what == "password":
        result = sessions.set_password(lib, session.actor, name, form.get("password", ""))
    elif what == "disable":
        result = users.disable_user(lib, session.actor, name)
    else:
        raise InputError("unknown user change: key, password or disable")
    return _done(request, session, f"User {name}: {what}", result, "/console/admin/users")


@router.get("/console/admin/sites")
def sites_page(request: Request, session: SessionDep) -> HTMLResponse:
    """The sites registry and its import form."""
    rows = list_sites(_svc(request).lib, session.actor)
    return _render(request, "sites.html", session, title="Sites", rows=rows)


@router.post("/console/admin/sites")
async def sites_import(request: Request, session: SessionDep) -> HTMLResponse:
    """Import a sites CSV or JSONL (through a temporary file, removed at once)."""
    upload = await _upload(request, "nothing", (), max_files=0, documents=("file",))
    _session_upload_checked(session, upload)
    file = upload.documents.get("file")
    if file is None or not file[1]:
        raise InputError("choose a sites file (CSV or JSONL)")
    suffix = ".jsonl" if file[0].lower().endswith((".jsonl", ".json")) else ".csv"
    svc = _svc(request)

    def run() -> dict:
        # import_sites reads a path: the registry file (not biometric) lives a moment on disk.
        with tempfile.TemporaryDirectory(prefix="faceledger-sites-") as folder:
            path = Path(folder) / f"sites{suffix}"
            path.write_bytes(file[1])
            return import_sites(svc.lib, session.actor, path)

    result = await run_in_threadpool(run)
    return _done(request, session, "Sites imported", result, "/console/admin/sites")


@router.get("/console/admin/policy")
def policy_page(request: Request, session: SessionDep) -> HTMLResponse:
    """The policy in force; forms to apply the edited file and to publish the public policy."""
    summary = _svc(request).lib.policy_summary(session.actor)
    summary.pop("file", None)  # a server path
    return _render(request, "policy.html", session, title="Policy", summary=summary)


@router.post("/console/admin/policy/apply")
def policy_apply(request: Request, session: SessionDep, form: FormDep) -> HTMLResponse:
    """Put policy.yaml in force and re-decide every face."""
    result = apply_policy(_svc(request).lib, session.actor)
    return _done(request, session, "Policy applied", result, "/console/admin/policy")


@router.post("/console/admin/policy/publish")
def policy_publish(request: Request, session: SessionDep, form: FormDep) -> HTMLResponse:
    """Publish the public BIPA policy into the library's public/ folder (served at /policy)."""
    lib = _svc(request).lib
    result = publish_policy(lib, session.actor, lib.root / "public",
                            (form.get("organisation") or "").strip() or "the operator")
    shown = {k: v for k, v in result.items() if k not in ("markdown", "html")}
    return _done(request, session, "Policy published at /policy", shown, "/console/admin/policy")


@router.get("/console/admin/runs")
def runs_page(
    request: Request, session: SessionDep, run: Annotated[int | None, Query(ge=1)] = None
) -> HTMLResponse:
    """Ingest runs, and the errors and warnings of one of them."""
    lib = _svc(request).lib
    rows = runs.list_runs(lib, session.actor)
    problems = runs.run_problems(lib, session.actor, run) if run is not None else None
    return _render(request, "runs.html", session, title="Ingest runs", rows=rows,
                   problems=problems, run=run)  # fmt: skip


# -- public: opt-out and the published policy -------------------------------------------------
@router.get("/opt-out")
def optout_page(request: Request) -> HTMLResponse:
    """The public opt-out form: selfie, region, name, contact (no sign-in)."""
    token = _pre_csrf(request)
    page = _render(request, "optout.html", None, csrf=token, title="Opt out of face search")
    return _with_pre_csrf(request, page, token)


@router.post("/opt-out")
async def optout_submit(request: Request) -> HTMLResponse:
    """File an opt-out as the built-in public actor; the answer is a receipt, nothing more.

    The selfie stays in memory; the answer takes at least ``optout_min_seconds`` whatever
    matched, and each address may file ``optouts_per_hour``.
    """
    svc = _svc(request)
    started = time.monotonic()
    token = _pre_csrf(request)
    address = request.client.host if request.client else ""
    buckets = [("address", address), ("service", "")]
    wait = svc.public_optouts.take(buckets)
    if wait:
        page = _render(request, "optout.html", None, status=429, csrf=token, title="Opt out",
                       message=f"Too many requests from here: try again in "
                       f"{retry_after(wait)} s.")  # fmt: skip
        page.headers["Retry-After"] = retry_after(wait)
        return _with_pre_csrf(request, page, token)
    heavy = _heavy(request)
    try:
        try:
            upload = await _upload(request, "selfie", ("region", "name", "contact"))
        except ImageTooLargeError as exc:
            return _with_pre_csrf(request, _render(
                request, "optout.html", None, status=413, csrf=token, title="Opt out",
                message=str(exc)), token)  # fmt: skip
        if not _pre_csrf_ok(request, upload.fields.get("csrf")):
            return _with_pre_csrf(request, _render(
                request, "optout.html", None, status=403, csrf=token, title="Opt out",
                message="The form had expired: please send it again."), token)  # fmt: skip
        fields = upload.fields
        problem = None
        if not upload.files:
            problem = "Choose a photo of your face."
        elif not (fields.get("name") or "").strip():
            problem = "Give your name, so the request can be recorded."
        elif not re.fullmatch(r"[A-Za-z]{2}(-[A-Za-z0-9]{1,3})?", (fields.get("region") or "")):
            problem = "Pick the region you live in."
        receipt = None
        if problem is None:
            receipt = "OPT-" + secrets.token_hex(5).upper()
            probe = Probe("selfie", upload.files[0][1])
            upload.files.clear()
            try:
                await run_in_threadpool(
                    submit_optout, svc.lib, PUBLIC_ACTOR, probe, fields["region"],
                    fields["name"].strip()[:200], _optional(fields.get("contact")),
                    svc.lib.face_engine(), receipt,
                )  # fmt: skip
            except InputError:
                # Said the same whatever the reason, so the answer tells nothing of the library.
                problem, receipt = "That photo could not be read: send a JPEG or PNG.", None
            del probe
    finally:
        heavy.give_back()
    # The same least time for every outcome: matched, not matched, no face.
    remaining = svc.settings.optout_min_seconds - (time.monotonic() - started)
    if remaining > 0:
        await asyncio.sleep(remaining)
    if problem is not None:
        page = _render(request, "optout.html", None, status=422, csrf=token, title="Opt out",
                       message=problem)  # fmt: skip
        return _with_pre_csrf(request, page, token)
    return _render(request, "optout_done.html", None, title="Opt-out received", receipt=receipt)


@router.get("/policy")
def public_policy(request: Request) -> Response:
    """The published BIPA retention and destruction policy (`policy publish`)."""
    lib = _svc(request).lib
    path = lib.root / "public" / "biometric-policy.html"
    if not path.is_file():
        return _render(request, "error.html", None, status=404, title="Policy",
                       message="The operator has not published its biometric policy yet.")
    return HTMLResponse(path.read_text(encoding="utf-8"), headers={
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
        "X-Content-Type-Options": "nosniff"})  # fmt: skip


def make_console_limits(settings: Any) -> tuple[TokenBuckets, TokenBuckets]:
    """The sign-in failure buckets and the public opt-out buckets of one service."""
    per_minute = settings.auth_failures_per_minute
    sign_ins = TokenBuckets({"address": per_minute, "name": per_minute,
                             "service": per_minute * 10}, period=60.0)  # fmt: skip
    per_hour = settings.optouts_per_hour
    optouts = TokenBuckets({"address": per_hour, "service": per_hour * 10}, period=3600.0)
    return sign_ins, optouts
