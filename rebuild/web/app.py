"""The FastAPI application: the store and blob directory it reads, the pages and the API mounted on it.

Every page carries a strict Content-Security-Policy (no script, no inline style, nothing from elsewhere)
and ``nosniff``, every API answer a stricter one (nothing at all); an error on a page is an HTML page with its
status, on the API the framework's JSON; an unexpected failure is a plain 500 that shows no traceback. The
OpenAPI document is served as JSON only: no Swagger or ReDoc page, which would run a third party's script
on this origin.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from rebuild.service.blobs import BlobStore
from rebuild.service.store import Store
from rebuild.untrusted import printable
from rebuild.web import api, pages

STATIC = Path(__file__).parent / "static"
PAGE_CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'none'; base-uri 'none'; "
            "frame-ancestors 'none'")  # fmt: skip
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
_HEADERS = {"Content-Security-Policy": PAGE_CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY"}  # fmt: skip
_API_HEADERS = {**_HEADERS, "Content-Security-Policy": API_CSP}


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def create_app(store: Store, blobs: BlobStore) -> FastAPI:
    """The application over ``store`` (``app.state.store``) and ``blobs`` (``app.state.blobs``)."""
    app = FastAPI(title="rebuild-verifier", docs_url=None, redoc_url=None, openapi_url="/api/v1/openapi.json")
    app.state.store = store
    app.state.blobs = blobs
    app.state.templates = pages.environment()
    app.include_router(api.router, prefix="/api/v1")
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        for name, value in (_API_HEADERS if _is_api(request) else _HEADERS).items():
            response.headers.setdefault(name, value)  # a blob's own, stricter policy (sandbox) stays
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _is_api(request):
            return await http_exception_handler(request, exc)
        return _error_page(request, exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        if _is_api(request):
            return await request_validation_exception_handler(request, exc)
        where = ", ".join(".".join(str(p) for p in e.get("loc", ())) for e in exc.errors()[:3])
        return _error_page(request, 400, f"bad request: {where or 'invalid parameters'}")

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        if _is_api(request):
            return Response('{"detail":"internal error"}', status_code=500, media_type="application/json",
                            headers=_API_HEADERS)  # fmt: skip
        return _error_page(request, 500, "internal error: the server's log says more")

    return app


def _error_page(request: Request, status: int, message: str) -> HTMLResponse:
    page = request.app.state.templates.get_template("error.html").render(status=status, message=printable(message, 500))
    return HTMLResponse(page, status_code=status, headers=_HEADERS)
