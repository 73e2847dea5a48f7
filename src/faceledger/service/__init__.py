"""The web service: a FastAPI app over a library (JSON API, OpenAPI docs, a search page)."""

from faceledger.service.app import create_app

__all__ = ["create_app"]
