"""What the service commands print: one JSON document for machines, short tables for people."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from rebuild.render.json import emit
from rebuild.render.text import esc


def _age(seconds: float | None) -> str:
    if not seconds:
        return ""
    delta = time.time() - seconds
    return (
        f"{delta:.0f}s ago" if delta < 120 else f"{delta / 60:.0f}m ago" if delta < 7200 else f"{delta / 3600:.0f}h ago"
    )


def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> Table:
    table = Table(box=None, header_style="bold")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(esc("" if row.get(c) is None else row.get(c)) for c in columns))
    return table


def show(kind: str, doc: Any, as_json: bool, out: Console | None = None) -> None:
    """Print ``doc``, the result of the service command ``kind``."""
    if as_json:
        emit(doc)
        return
    console = out or Console(highlight=False, soft_wrap=True)
    if kind == "init":
        console.print(f"store {esc(doc['db'])} at revision {esc(doc['revision'])}; blobs in {esc(doc['blobs'])}")
        made = "made" if doc["key_created"] else "kept"
        console.print(f"service key {esc(doc['keyid'][:16])} ({made}): {esc(doc['public_key'])}")
        ce = doc["settings"].get("content_equivalence", "true") == "true"
        console.print(f"content equivalence: {'on' if ce else 'off (rebuild init --content-equivalence turns it on)'}")
    elif kind == "queue":
        console.print(_table([{**r, "key": r["key"][:16]} for r in doc["queued"]], ("key", "target", "status", "note")))
    elif kind == "jobs":
        rows = [{**r, "key": r["key"][:16], "updated": _age(r["updated_at"])} for r in doc["jobs"]]
        rows = [{**r, "content-equivalent": r.get("equivalence")} for r in rows]
        columns = ("key", "target", "status", "verdict", "content-equivalent", "attempts", "tags", "updated")
        console.print(_table(rows, columns))
    elif kind == "keys":
        console.print(f"{doc['action']}: {len(doc['keys'])} job(s)" + "".join(f"\n  {esc(k)}" for k in doc["keys"]))
    elif kind == "worker":
        for row in doc.get("jobs", []):
            console.print(f"{esc(row['target'])}: {esc(row['outcome'])} ({esc(row['next'])})")
        console.print(f"worker {esc(doc['worker'])} stopped")
    elif kind == "dispatch":
        reconciled = f"; reconciled (cleared {doc['cleared']})" if doc["reconciled"] else ""
        console.print(f"dispatched {len(doc['dispatched'])} job(s); recovered {len(doc['recovered'])} expired lease(s)"
                      + reconciled)  # fmt: skip
    elif kind == "status" and "jobs" in doc and isinstance(doc["jobs"], dict):
        console.print("jobs: " + (", ".join(f"{esc(k)} {v}" for k, v in sorted(doc["jobs"].items())) or "none"))
        console.print("verdicts: " + (", ".join(f"{esc(k)} {v}" for k, v in sorted(doc["verdicts"].items())) or "none"))
        console.print(f"attestations signed: {doc['attestations']}; live workers: {len(doc['live_workers'])}")
    elif kind in ("status", "history"):
        console.print(esc(doc["target"]))
        for job in doc["jobs"]:
            console.print(f"  job {esc(job['key'][:16])}: {esc(job['status'])} {esc(job['verdict'] or '')} "
                          f"({esc(job['detail'])})")  # fmt: skip
            attempts = job["attempts"] if isinstance(job["attempts"], list) else []
            shown = attempts if kind == "history" else attempts[-1:]
            for a in shown:
                console.print(f"    attempt {a['number']} on {esc(a['worker'])}: {esc(a['outcome'] or 'running')} "
                              f"{esc(a['classification'] or a['detail'] or '')} {a['seconds'] or ''}s"
                              + (f"; {esc(a['equivalence'])}" if a.get("equivalence") else ""))  # fmt: skip
            for a in job.get("attestations", []):
                console.print(
                    f"    signed {esc(a['verdict'])} for {esc(a['artifact'])}: {esc(a['published'] or 'not published')}"
                )
    elif kind == "publish":
        console.print(f"signed {len(doc['signed'])}, published {len(doc['published'])} new of {doc['bundles']} "
                      f"bundle(s) into {esc(doc['out'])}; snapshot {esc(doc['snapshot'])}")  # fmt: skip
    elif kind == "token":
        console.print(f"token {doc['id']} {esc(doc['name'])} ({esc(','.join(doc['scopes']))}); shown once, keep it:")
        console.print(esc(doc["token"]))
    elif kind == "tokens":
        rows = [{**t, "scopes": ",".join(t["scopes"]), "used": _age(t["last_used_at"]) or "never",
                 "revoked": _age(t["revoked_at"])} for t in doc["tokens"]]  # fmt: skip
        console.print(_table(rows, ("id", "name", "scopes", "used", "revoked")))
    elif kind == "serve":
        console.print(f"serving the dashboard on {esc(doc['url'])} (API at {esc(doc['url'])}api/v1/openapi.json); "
                      f"store {esc(doc['db'])}; Ctrl-C stops")  # fmt: skip
    elif kind == "revoked":
        state = "was already revoked" if doc["already"] else "revoked"
        console.print(f"token {doc['id']} {esc(doc['name'])} {state}")
    else:
        emit(doc)
