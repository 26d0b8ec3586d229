"""The dashboard's HTML pages, rendered on the server (Jinja2, autoescape on; no script on any page).

Pages: the overview, the queue and workers, a package, a release, an attempt's log (paged), and the
files an attempt or an attestation names, served by role with a safe content type: logs and reports as
text or JSON with ``nosniff``, diffoscope's HTML under ``Content-Security-Policy: sandbox`` (it quotes
what the archives hold). A page asked with a query parameter it does not know, a bad page number or an
unknown id answers 4xx with an HTML page, never a traceback.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from rebuild.errors import InputError
from rebuild.service.blobs import BlobStore
from rebuild.web import charts, details, queries, reports, state

TEMPLATES = Path(__file__).parent / "templates"
MAX_NAME = 256
SANDBOX_CSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_CATEGORY_CLASS = {
    queries.REPRODUCED: "ok", queries.NOT_REPRODUCED: "bad", queries.COULD_NOT_REBUILD: "warn",
    queries.PENDING: "pending", queries.DROPPED_CATEGORY: "pending",
}  # fmt: skip
# what an attempt's links serve: the column, the media type, and whether it is shown in the browser
FILES = {
    "build.log": ("log_blob", "text/plain; charset=utf-8"),
    "verify-report.json": ("report_blob", "application/json"),
    "compare-report.json": ("compare_blob", "application/json"),
    "statements.intoto.jsonl": ("statements_blob", "application/jsonl"),
    "diffoscope.html": ("diffoscope_blob", "text/html; charset=utf-8"),
}

Id = Annotated[int, PathParam(ge=1, le=2**62)]  # a row id; anything else is a 400 before the store is asked

router = APIRouter(include_in_schema=False)


def _when(value: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(value)) if value else "-"


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def package_url(ecosystem: str, name: str) -> str:
    return f"/packages/{quote(ecosystem, safe='')}/{quote(name, safe='')}"


def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)  # fmt: skip
    env.filters.update(when=_when, percent=_percent, short=lambda d: (d or "")[:16],
                       css=lambda c: _CATEGORY_CLASS.get(c, "pending"))  # fmt: skip
    env.globals.update(package_url=package_url, categories=queries.CATEGORIES)
    return env


def _render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    env: Environment = request.app.state.templates
    return HTMLResponse(env.get_template(template).render(**context), status_code=status)


def _only(request: Request, *allowed: str) -> None:
    """Raises: HTTPException: a query parameter the page does not take (400)."""
    unknown = sorted(set(request.query_params) - set(allowed))
    if unknown:
        raise HTTPException(400, f"unknown query parameter {unknown[0][:64]!r}")


@router.get("/", response_class=HTMLResponse)
def overview_page(request: Request) -> HTMLResponse:
    _only(request)
    view = queries.overview(state.store(request))
    return _render(request, "overview.html", view=view, chart=Markup(charts.trend_svg(view.trend)))


@router.get("/queue", response_class=HTMLResponse)
def queue_page(request: Request) -> HTMLResponse:
    _only(request)
    return _render(request, "queue.html", view=queries.queue(state.store(request)), now=time.time())


@router.get("/packages/{ecosystem}/{name:path}", response_class=HTMLResponse)
def package_page(request: Request, ecosystem: str, name: str) -> HTMLResponse:
    _only(request)
    if len(ecosystem) > 32 or len(name) > MAX_NAME:
        raise HTTPException(404, "no such package")
    releases = queries.package(state.store(request), ecosystem, name)
    if not releases:
        raise HTTPException(404, "no such package in the store")
    return _render(request, "package.html", ecosystem=ecosystem, name=name, releases=releases)


@router.get("/releases/{target_id}", response_class=HTMLResponse)
def release_page(request: Request, target_id: Id) -> HTMLResponse:
    _only(request)
    view = details.release(state.store(request), target_id)
    if view is None:
        raise HTTPException(404, "no such release in the store")
    explained: dict[int, list[reports.ArtifactExplanation]] = {}
    problems: dict[int, str] = {}
    for job in view.jobs:  # the newest attempt of each job that has a compare report
        with_report = next((a for a in job.attempts if a.compare_blob), None)
        if with_report is not None and with_report.compare_blob is not None:
            try:
                explained[with_report.id] = reports.explanation(state.blobs(request), with_report.compare_blob)
            except InputError as e:
                problems[with_report.id] = e.message
    digests = {a.id: (reports.digests(a.artifacts, "published digests"), reports.digests(a.rebuilt_blobs, "rebuilt"))
               for job in view.jobs for a in job.attempts[:20]}  # fmt: skip
    return _render(request, "release.html", view=view, explained=explained, problems=problems, digests=digests,
                   files=FILES)  # fmt: skip


@router.get("/attempts/{attempt_id}/log", response_class=HTMLResponse)
def log_page(request: Request, attempt_id: Id, page: int = Query(1, ge=1, le=10_000_000)) -> HTMLResponse:
    _only(request, "page")
    found = details.attempt(state.store(request), attempt_id)
    if found is None:
        raise HTTPException(404, "no such attempt")
    attempt, target_id, target = found
    if attempt.log_blob is None:
        raise HTTPException(404, "this attempt kept no build log")
    try:
        shown = reports.log_page(state.blobs(request), attempt.log_blob, page)
    except InputError as e:
        raise HTTPException(404, e.message) from None
    if shown is None:
        raise HTTPException(404, f"the log has no page {page}")
    return _render(request, "log.html", attempt=attempt, target_id=target_id, target=target, log=shown)


@router.get("/attempts/{attempt_id}/{file}")
def attempt_file(request: Request, attempt_id: Id, file: str) -> Response:
    _only(request)
    if file not in FILES:
        raise HTTPException(404, "no such file")
    found = details.attempt(state.store(request), attempt_id)
    if found is None:
        raise HTTPException(404, "no such attempt")
    column, media_type = FILES[file]
    digest = getattr(found[0], column)
    if not isinstance(digest, str):
        raise HTTPException(404, f"this attempt kept no {file}")
    return _blob_response(state.blobs(request), digest, media_type, f"attempt-{attempt_id}-{file}")


@router.get("/attestations/{attestation_id}/bundle.intoto.jsonl")
def attestation_file(request: Request, attestation_id: Id) -> Response:
    _only(request)
    digest = details.attestation_blob(state.store(request), attestation_id)
    if digest is None:
        raise HTTPException(404, "no such attestation")
    name = f"attestation-{attestation_id}.intoto.jsonl"
    return _blob_response(state.blobs(request), digest, "application/jsonl", name)


def _blob_response(blobs: BlobStore, digest: str, media_type: str, filename: str) -> Response:
    try:
        data = blobs.read_bytes(digest)
    except InputError as e:
        raise HTTPException(404, e.message) from None
    headers = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": SANDBOX_CSP}
    if not media_type.startswith(("text/plain", "text/html")):
        headers["Content-Disposition"] = f'inline; filename="{filename}"'
    return Response(data, media_type=media_type, headers=headers)
