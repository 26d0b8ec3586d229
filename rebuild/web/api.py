"""The JSON API under ``/api/v1``: reads for anyone, writes (queue, retry) for holders of a ``queue`` token.

Every answer is a model of ``api_models`` (so the OpenAPI page documents it), every parameter is bounded
(pattern, length, range: a bad one is 422, never a 500), an unknown item is a 404 with a JSON ``detail``,
and a request body over ``MAX_BODY`` bytes is refused (413) before it is read whole. Writes check the
bearer token first: none, unknown or revoked is 401 with ``WWW-Authenticate``, a token without the scope
403. Blobs are served as ``text/plain`` (or ``application/octet-stream`` when not UTF-8), never as markup,
with ``nosniff`` and a sandboxing CSP: a log or a diffoscope report is data, whatever it contains.
"""

from __future__ import annotations

import codecs
import hashlib
import re
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import SQLAlchemyError

from rebuild.errors import EnvironmentFailure, Error, InputError
from rebuild.service.tokens import Holder, check
from rebuild.web import api_reads, state
from rebuild.web.api_models import (
    AttemptOut,
    ChangesPage,
    Problem,
    QueuedOut,
    QueueIn,
    ReleaseOut,
    RetryIn,
    RetryOut,
    StatsOut,
    TargetPage,
    VerifyOut,
)  # fmt: skip
from rebuild.web.purl import parse_purl

MAX_BODY = 16 * 1024
MAX_LIMIT = 500
MAX_BUNDLES = 100  # attestations returned for one digest
_SAFE = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'; sandbox"}
_API_TARGET = re.compile(
    r"pypi:[A-Za-z0-9](?:[A-Za-z0-9._-]{0,198}[A-Za-z0-9])?==[A-Za-z0-9][A-Za-z0-9.+!_-]{0,127}"
    r"|deb:[a-z0-9][a-z0-9.+-]{0,199}=[A-Za-z0-9][A-Za-z0-9.+~:_-]{0,127}"
)
_JOB_REF = re.compile(r"[0-9a-f]{8,64}")

Hex64 = Annotated[str, PathParam(pattern=r"^[0-9a-f]{64}$", description="A sha256, lower-case hex.")]
Segment = Annotated[str, PathParam(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9][A-Za-z0-9._+~:!-]*$")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"At most {MAX_LIMIT}.")]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem}}


class CappedRoute(APIRoute):
    """Refuses a body over ``MAX_BODY`` bytes (413), by its Content-Length or while it streams in."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def capped(request: Request) -> Response:
            declared = request.headers.get("content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
                raise HTTPException(413, f"the request body is over {MAX_BODY} bytes")
            if request.method in ("POST", "PUT", "PATCH"):
                received = 0
                async for chunk in request.stream():
                    received += len(chunk)
                    if received > MAX_BODY:
                        raise HTTPException(413, f"the request body is over {MAX_BODY} bytes")
                    request._body = getattr(request, "_body", b"") + chunk
                request._body = getattr(request, "_body", b"")
            return await handler(request)

        return capped


router = APIRouter(route_class=CappedRoute, tags=["api"])
_bearer = HTTPBearer(auto_error=False, description="A token from `rebuild token create --scope queue`.")


@contextmanager
def _answers() -> Iterator[None]:
    """The project's errors as HTTP answers: bad input 400, the store not answering 503."""
    try:
        yield
    except InputError as e:
        raise HTTPException(400, e.message) from e
    except (EnvironmentFailure, SQLAlchemyError) as e:
        raise HTTPException(503, "the store does not answer") from e
    except Error as e:
        raise HTTPException(400, e.message) from e


def _missing(what: str) -> HTTPException:
    return HTTPException(404, f"{what} is not in this rebuilder's store")


def require_queue(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Holder:
    """The holder of a live token with scope ``queue``; 401 without one, 403 with another scope."""
    challenge = 'Bearer realm="rebuild-verifier", scope="queue"'
    if credentials is None:
        raise HTTPException(401, "a bearer token is required (rebuild token create --scope queue)",
                            {"WWW-Authenticate": challenge})  # fmt: skip
    with _answers():
        holder = check(state.store(request), credentials.credentials)
    if holder is None:
        raise HTTPException(401, "the token is unknown or revoked",
                            {"WWW-Authenticate": challenge + ', error="invalid_token"'})  # fmt: skip
    if "queue" not in holder.scopes:
        raise HTTPException(403, "the token lacks the scope 'queue'")
    return holder


# --- reads -----------------------------------------------------------------------------------------------


@router.get("/targets", response_model=TargetPage, summary="Targets in the store, oldest first")
def list_targets(
    request: Request,
    ecosystem: Annotated[str | None, Query(pattern=r"^[a-z]{1,32}$")] = None,
    name: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
    limit: Limit = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> dict[str, Any]:
    with _answers():
        return api_reads.targets(state.store(request), ecosystem, name, limit, offset)


@router.get(
    "/releases/{ecosystem}/{name}/{version}", response_model=ReleaseOut, responses=_NOT_FOUND,
    summary="A release: its jobs, every attempt, what was signed",
)  # fmt: skip
def get_release(request: Request, ecosystem: Segment, name: Segment, version: Segment) -> dict[str, Any]:
    with _answers():
        found = api_reads.release(state.store(request), ecosystem, name, version)
    if found is None:
        raise _missing(f"release {ecosystem}/{name}/{version}")
    return found


@router.get("/attempts/{attempt_id}", response_model=AttemptOut, responses=_NOT_FOUND, summary="One attempt")
def get_attempt(request: Request, attempt_id: Annotated[int, PathParam(ge=1, le=2**62)]) -> dict[str, Any]:
    with _answers():
        found = api_reads.attempt(state.store(request), attempt_id)
    if found is None:
        raise _missing(f"attempt {attempt_id}")
    return found


@router.get(
    "/blobs/{sha256}", responses={200: {"content": {"text/plain": {}, "application/octet-stream": {}}}, **_NOT_FOUND},
    response_class=Response, summary="A log, report, statement or rebuilt file, by its sha256",
)  # fmt: skip
def get_blob(request: Request, sha256: Hex64) -> Response:
    path = state.blobs(request).path(sha256)
    if not path.is_file() or path.is_symlink():
        raise _missing(f"blob {sha256}")
    digest, text, decoder = hashlib.sha256(), True, codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            text = text and _decodes(decoder, chunk, final=False)
    text = text and _decodes(decoder, b"", final=True)
    if digest.hexdigest() != sha256:
        raise HTTPException(503, f"blob {sha256} is not what its name says (the blob directory was altered)")
    kind = "text/plain; charset=utf-8" if text else "application/octet-stream"
    headers = {**_SAFE, "Content-Disposition": "inline" if text else f'attachment; filename="{sha256}"'}
    return FileResponse(Path(path), media_type=kind, headers=headers)


def _decodes(decoder: codecs.IncrementalDecoder, data: bytes, final: bool) -> bool:
    try:
        decoder.decode(data, final)
    except UnicodeDecodeError:
        return False
    return True


@router.get("/stats", response_model=StatsOut, summary="Releases per ecosystem by category, and the rate")
def get_stats(request: Request) -> dict[str, Any]:
    with _answers():
        return api_reads.stats(state.store(request))


@router.get("/changes", response_model=ChangesPage, summary="The change feed: final verdicts and signed bundles")
def get_changes(
    request: Request,
    since: Annotated[int, Query(ge=0, le=2**62, description="The last `id` seen (0: from the start).")] = 0,
    limit: Limit = 100,
) -> dict[str, Any]:
    with _answers():
        return api_reads.changes(state.store(request), since, limit)


@router.get("/verify", response_model=VerifyOut, responses={**_NOT_FOUND, 400: {"model": Problem}},
            summary="What this rebuilder says about pkg:pypi/NAME@VERSION")  # fmt: skip
def get_verify(request: Request, purl: Annotated[str, Query(min_length=5, max_length=512)]) -> dict[str, Any]:
    with _answers():
        parsed = parse_purl(purl)
        found = api_reads.verify(state.store(request), parsed)
    if found is None:
        raise _missing(str(parsed))
    return found


@router.get(
    "/attestations", response_class=Response, responses={200: {"content": {"application/jsonl": {}}}, **_NOT_FOUND},
    summary="The signed bundles (JSON lines) of every attestation about an artifact digest",
)  # fmt: skip
def get_attestations(
    request: Request, sha256: Annotated[str, Query(pattern=r"^[0-9a-f]{64}$", description="The artifact's sha256.")]
) -> Response:
    """Each bundle's lines as signed (DSSE envelopes, one per line), bundles newest first: at most
    ``MAX_BUNDLES`` newest plus each signing key's newest; ``X-Rebuild-Truncated: true`` when any was left out
    (a reader must not take the answer as complete). 404 when this rebuilder signed nothing about the digest."""
    with _answers():
        names, truncated = api_reads.bundles_for_digest(state.store(request), sha256, MAX_BUNDLES)
        if not names:
            raise _missing(f"an attestation about sha256:{sha256}")
        try:
            bundles = [state.blobs(request).read_bytes(name) for name in names]
        except InputError as e:
            raise HTTPException(503, e.message) from e
    body = b"".join(b if b.endswith(b"\n") else b + b"\n" for b in bundles)
    headers = {**_SAFE, "X-Rebuild-Truncated": "true" if truncated else "false"}
    return Response(body, media_type="application/jsonl", headers=headers)


# --- writes ----------------------------------------------------------------------------------------------


def _resolver(request: Request) -> Any:
    """``app.state.resolver`` when the server was given one, else resolving as `rebuild queue add` does."""
    given = getattr(request.app.state, "resolver", None)
    if given is not None:
        return given
    from rebuild.fetch.cache import default_cache_dir
    from rebuild.recipes import RecipeBook
    from rebuild.service.intake import resolver_for

    return resolver_for(RecipeBook([]), default_cache_dir(), "https://pypi.org/simple")


@router.post("/queue", response_model=QueuedOut, status_code=202, summary="Queue a target (token scope: queue)",
             responses={401: {"model": Problem}, 403: {"model": Problem}, 413: {"model": Problem}})  # fmt: skip
def post_queue(request: Request, body: QueueIn, holder: Annotated[Holder, Depends(require_queue)]) -> dict[str, Any]:
    """Checked as `rebuild queue add` checks it, and only ``pypi:NAME==VERSION`` or ``deb:SOURCE=VERSION``:
    a remote caller never names a file on this machine."""
    if not _API_TARGET.fullmatch(body.target):
        raise HTTPException(422, "the target is not pypi:NAME==VERSION or deb:SOURCE=VERSION")
    from rebuild.batch import read_targets
    from rebuild.service.intake import add_targets
    from rebuild.service.jobs import parse_tags

    with _answers():
        wanted = read_targets([body.target], None)
        (row,) = add_targets(state.store(request), wanted, parse_tags(body.tags), _resolver(request))
    return row


@router.post("/retry", response_model=RetryOut, summary="Queue finished jobs again (token scope: queue)",
             responses={400: {"model": Problem}, 401: {"model": Problem}, 403: {"model": Problem},
                        **_NOT_FOUND})  # fmt: skip
def post_retry(request: Request, body: RetryIn, holder: Annotated[Holder, Depends(require_queue)]) -> dict[str, Any]:
    from rebuild.service.views import resolve_keys

    bad = [ref for ref in body.jobs if not (_JOB_REF.fullmatch(ref) or _API_TARGET.fullmatch(ref))]
    if bad:
        raise HTTPException(422, f"{bad[0][:80]!r} is not a job key (8+ hex digits) or a pinned target")
    store = state.store(request)
    try:
        keys = resolve_keys(store, body.jobs)
    except InputError as e:  # none named (404), or a prefix of several keys (400: it retries nothing)
        raise HTTPException(404 if e.message.startswith("no job is") else 400, e.message) from e
    with _answers():
        return {"retried": store.retry(keys)}
