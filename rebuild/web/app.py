"""The FastAPI application: the store and blob directory it reads, the pages and the API mounted on it."""

from __future__ import annotations

from fastapi import FastAPI

from rebuild.service.blobs import BlobStore
from rebuild.service.store import Store
from rebuild.web import api


def create_app(store: Store, blobs: BlobStore) -> FastAPI:
    """The application over ``store`` (``app.state.store``) and ``blobs`` (``app.state.blobs``)."""
    app = FastAPI(title="rebuild-verifier", docs_url="/api/docs", openapi_url="/api/v1/openapi.json")
    app.state.store = store
    app.state.blobs = blobs
    app.include_router(api.router, prefix="/api/v1")
    return app
