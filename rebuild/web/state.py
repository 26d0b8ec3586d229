"""What the application holds for every request (``create_app`` puts it on ``app.state``)."""

from __future__ import annotations

from fastapi import Request

from rebuild.service.blobs import BlobStore
from rebuild.service.store import Store


def store(request: Request) -> Store:
    """The results store the pages and the API read."""
    found: Store = request.app.state.store
    return found


def blobs(request: Request) -> BlobStore:
    """The blob directory (logs, reports, bundles) the store's rows name by sha256."""
    found: BlobStore = request.app.state.blobs
    return found
