"""Swagger UI (``/docs``) and ReDoc (``/redoc``) served from assets shipped in the package.

FastAPI's own pages load their scripts from a CDN, which a machine without internet access
cannot reach; these pages name only the service's own URLs under ``/docs-assets``. The assets
are vendored unchanged from npm (``swagger-ui-dist``, ``redoc``), each with its licence and a
README saying how to update it.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["add_docs", "ASSETS"]

#: Where the vendored assets are served.
ASSETS = "/docs-assets"


def add_docs(app: FastAPI) -> None:
    """Serve ``/docs`` and ``/redoc`` (create the app with ``docs_url=redoc_url=None``)."""
    static = files("faceledger.service") / "static"
    app.mount(f"{ASSETS}/swagger-ui", StaticFiles(directory=str(static / "swagger-ui")),
              name="swagger-ui")  # fmt: skip
    app.mount(f"{ASSETS}/redoc", StaticFiles(directory=str(static / "redoc")), name="redoc")
    openapi_url = app.openapi_url or "/openapi.json"
    favicon = f"{ASSETS}/swagger-ui/favicon-32x32.png"

    @app.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{app.title} API",
            swagger_js_url=f"{ASSETS}/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui/swagger-ui.css",
            swagger_favicon_url=favicon,
        )  # fmt: skip

    @app.get("/redoc", include_in_schema=False, response_class=HTMLResponse)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url, title=f"{app.title} API",
            redoc_js_url=f"{ASSETS}/redoc/redoc.standalone.js", redoc_favicon_url=favicon,
            with_google_fonts=False,
        )  # fmt: skip
