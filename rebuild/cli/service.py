"""The service: `rebuild init`, `queue`, `worker`, `dispatch`, `status`, `history`, `publish`.

Every command takes ``--db URL`` (default: the embedded SQLite file under the data directory) and
``--data-dir DIR`` (blobs and the service key); see ``rebuild.service``.
"""

from __future__ import annotations

from pathlib import Path

import typer

from rebuild.cli.common import CacheOpt, IndexOpt, JsonOpt, RecipesOpt, TimeoutOpt, app, book, cache, errors_to_exit
from rebuild.render import renderer_for
from rebuild.render.service import show

DbOpt = typer.Option(None, "--db", help="The results store: sqlite:///FILE or postgresql://... (default: embedded).")
DataDirOpt = typer.Option(
    None,
    "--data-dir",
    help="Blobs and the service key (default: $REBUILD_DATA_DIR or ~/.local/share/rebuild-verifier).",
)
TagOpt = typer.Option(None, "--tag", help="KEY=VALUE (repeatable): route jobs to workers with these tags.")

queue_app = typer.Typer(no_args_is_help=True, help="The service's job queue (the store is the truth).")
app.add_typer(queue_app, name="queue")


def _paths(db: str | None, data_dir: Path | None):  # type: ignore[no-untyped-def]
    from rebuild.service.config import ServicePaths

    return ServicePaths.of(db, data_dir)


@app.command("init")
def init_cmd(
    ctx: typer.Context,
    db: str | None = DbOpt,
    data_dir: Path | None = DataDirOpt,
    verifier_id: str = typer.Option(
        "https://rebuild-verifier.dev/verifier/v1", "--verifier-id", help="Who the service is, in its summaries."
    ),
    lease: float = typer.Option(60.0, "--lease", help="Seconds a worker holds a job without a heartbeat."),
    backoff: float = typer.Option(60.0, "--backoff", help="First wait before an infrastructure retry (doubles)."),
    infra_attempts: int = typer.Option(
        5, "--infra-attempts", help="Attempts before an infrastructure failure is final."
    ),
    content_equivalence: bool | None = typer.Option(
        None,
        "--content-equivalence/--no-content-equivalence",
        help="Decide (and publish signed) content equivalence of results not reproduced (default: on; "
        "given on a later init, changes the setting).",
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Make (or migrate) the results store, the blob directory and the service key."""
    from rebuild.service.config import init_service
    from rebuild.service.jobs import RetryPolicy

    render = renderer_for(as_json)
    with errors_to_exit(ctx, render):
        policy = RetryPolicy(backoff_seconds=backoff, infrastructure_attempts=infra_attempts)
        doc = init_service(_paths(db, data_dir), verifier_id=verifier_id, lease_seconds=lease, policy=policy,
                           content_equivalence=content_equivalence)  # fmt: skip
    show("init", doc, as_json)


@queue_app.command("add")
def queue_add(
    ctx: typer.Context,
    targets: list[str] = typer.Argument(None, help="pypi:NAME==VERSION, deb:SOURCE=VERSION, provenance files."),
    from_file: Path | None = typer.Option(None, "--from", help="Read more targets from a file, one per line."),
    tag: list[str] = TagOpt,
    index_url: str = IndexOpt,
    cache_dir: Path | None = CacheOpt,
    recipes: Path | None = RecipesOpt,
    db: str | None = DbOpt,
    data_dir: Path | None = DataDirOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Queue targets once each: a job's key is what decides its result."""
    from rebuild.batch import read_targets
    from rebuild.service.intake import add_targets, resolver_for
    from rebuild.service.jobs import parse_tags
    from rebuild.service.store import Store

    render = renderer_for(as_json)
    with errors_to_exit(ctx, render):
        wanted = read_targets(targets or [], from_file)
        tags = parse_tags(tag or [])
        store = Store.open(_paths(db, data_dir).db)
        resolver = resolver_for(book(recipes), cache(cache_dir), index_url, render.progress)
        rows = add_targets(store, wanted, tags, resolver, render.progress)
    show("queue", {"queued": rows}, as_json)


@queue_app.command("ls")
def queue_ls(
    ctx: typer.Context,
    status: list[str] = typer.Option(None, "--status", help="queued, running, done or dropped (repeatable)."),
    db: str | None = DbOpt,
    data_dir: Path | None = DataDirOpt,
    as_json: bool = JsonOpt,
) -> None:
    """List jobs, oldest first."""
    from rebuild.service.store import Store
    from rebuild.service.views import list_jobs

    render = renderer_for(as_json)
    with errors_to_exit(ctx, render):
        rows = list_jobs(Store.open(_paths(db, data_dir).db), status or [])
    show("jobs", {"jobs": rows}, as_json)


def _change(ctx: typer.Context, refs: list[str], db: str | None, data_dir: Path | None, as_json: bool,
            action: str) -> None:  # fmt: skip
    from rebuild.service.store import Store
    from rebuild.service.views import resolve_keys

    render = renderer_for(as_json)
    with errors_to_exit(ctx, render):
        store = Store.open(_paths(db, data_dir).db)
        keys = resolve_keys(store, refs)
        changed = store.retry(keys) if action == "retried" else store.drop(keys)
    show("keys", {"action": action, "keys": changed}, as_json)


@queue_app.command("retry")
def queue_retry(
    ctx: typer.Context,
    refs: list[str] = typer.Argument(..., help="Job keys (8+ hex digits) or targets."),
    db: str | None = DbOpt,
    data_dir: Path | None = DataDirOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Queue finished or dropped jobs again (a new round of attempts; earlier ones are kept)."""
    _change(ctx, refs, db, data_dir, as_json, "retried")


@queue_app.command("drop")
def queue_drop(
    ctx: typer.Context,
    refs: list[str] = typer.Argument(..., help="Job keys (8+ hex digits) or targets."),
    db: str | None = DbOpt,
    data_dir: Path | None = DataDirOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Take queued jobs out of the queue."""
    _change(ctx, refs, db, data_dir, as_json, "dropped")


@app.command("worker")
def worker_cmd(
    ctx: typer.Context,
    broker: str | None = typer.Option(None, "--broker", help="redis://HOST:PORT/0: take jobs from RQ on Redis."),
    slots: int = typer.Option(1, "--slots", min=1, help="Jobs run at once."),
    tag: list[str] = TagOpt,
    burst: bool = typer.Option(False, "--burst", help="Stop when no job is left that this worker could take."),
    name: str | None = typer.Option(None, "--name", help="This worker's name (default: HOST-PID)."),
    poll: float = typer.Option(1.0, "--poll", help="Seconds between claims when the queue is empty."),
    no_diffoscope: bool = typer.Option(False, "--no-diffoscope", help="Skip the diffoscope report."),
    timeout: float = TimeoutOpt,
    index_url: str = IndexOpt,
    cache_dir: Path | None = CacheOpt,
    recipes: Path | None = RecipesOpt,
    db: str | None = DbOpt,
    data_dir: Path | None = DataDirOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Run jobs: claim from the store (lease + heartbeat), or from RQ with --broker. Holds no key."""
    from rebuild.service.jobs import parse_tags
    from rebuild.service.worker import WorkerConfig, default_name, run_worker

    render = renderer_for(as_json)
    with errors_to_exit(ctx, render):
        paths = _paths(db, data_dir)
        config = WorkerConfig(
            db=paths.db, data_dir=str(paths.data_dir), name=name or default_name(), cache_dir=str(cache(cache_dir)),
            tags=parse_tags(tag or []), slots=slots, burst=burst, broker=broker,
            recipes=str(recipes.resolve()) if recipes else None, timeout=timeout, index_url=index_url,
            diffoscope=not no_diffoscope, poll_seconds=poll,
        )  # fmt: skip
        doc = run_worker(config, render.progress)
    show("worker", doc, as_json)


@app.command("dispatch")
def dispatch_cmd(
    ctx: typer.Context,
    broker: str = typer.Option(..., "--broker", help="redis://HOST:PORT/0"),
    reconcile: bool = typer.Option(False, "--reconcile", help="Rebuild Redis's queues from the store."),
    db: str | None = DbOpt,
    data_dir: Path | None = DataDirOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Hand queued jobs to RQ (and recover expired leases); --reconcile after Redis was lost."""
    from rebuild.service import broker as rq_broker
    from rebuild.service.store import Store

    render = renderer_for(as_json)
    with errors_to_exit(ctx, render):
        doc = rq_broker.dispatch(Store.open(_paths(db, data_dir).db), rq_broker.connect(broker), reconcile)
    show("dispatch", doc, as_json)


@app.command("status")
def status_cmd(
    ctx: typer.Context,
    target: str | None = typer.Argument(None, help="One target (default: the whole service)."),
    db: str | None = DbOpt,
    data_dir: Path | None = DataDirOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Jobs by state and verdict, workers; or one target's jobs and last attempts."""
    from rebuild.service.store import Store
    from rebuild.service.views import status

    render = renderer_for(as_json)
    with errors_to_exit(ctx, render):
        doc = status(Store.open(_paths(db, data_dir).db), target)
    show("status", doc, as_json)


@app.command("history")
def history_cmd(
    ctx: typer.Context,
    target: str = typer.Argument(..., help="A target in the store."),
    db: str | None = DbOpt,
    data_dir: Path | None = DataDirOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Every job and every attempt of a target, and what was signed."""
    from rebuild.service.store import Store
    from rebuild.service.views import history

    render = renderer_for(as_json)
    with errors_to_exit(ctx, render):
        doc = history(Store.open(_paths(db, data_dir).db), target)
    show("history", doc, as_json)


@app.command("publish")
def publish_cmd(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", help="The published tree (write-once bundles; mirror it anywhere)."),
    key: Path | None = typer.Option(None, "--key", help="The service's private key (default: the data dir's)."),
    valid_for: str = typer.Option(
        "7d", "--valid-for", help="How long readers believe the signed snapshot (e.g. 36h, 7d; 1m to 366d): "
        "publish again on a schedule shorter than this (docs/feeds.md)."
    ),
    db: str | None = DbOpt,
    data_dir: Path | None = DataDirOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Sign pending final results with the service key and write the published tree."""
    from rebuild.attest.keys import load_public_key
    from rebuild.attest.snapshot import parse_validity
    from rebuild.service.publish import publish
    from rebuild.service.store import Store

    render = renderer_for(as_json)
    with errors_to_exit(ctx, render):
        validity = parse_validity(valid_for)
        paths = _paths(db, data_dir)
        signer = paths.signer(key)
        public_path = key.with_suffix(".pub") if key else paths.public_key
        doc = publish(Store.open(paths.db), paths.blobs, out, signer, load_public_key(public_path),
                      public_path.read_bytes(), validity)  # fmt: skip
    show("publish", doc, as_json)
    if doc["refused"]:
        for reason in doc["refused"]:
            render.error(f"not signed: {reason}", "")
        raise typer.Exit(1)
