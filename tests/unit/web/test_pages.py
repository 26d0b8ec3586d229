"""The dashboard's pages over a real SQLite store made by ``rebuild init``'s code, through FastAPI's TestClient.

Rows are written as workers write them (targets, jobs, attempts, attestations, blobs), some of them hostile
(markup in a package name, a compare report that lies about its shape, a log full of control characters).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from rebuild.service.blobs import BlobStore
from rebuild.service.config import ServicePaths, init_service
from rebuild.service.models import DONE, RUNNING, Attempt, Attestation, Job, Target
from rebuild.service.store import Store
from rebuild.web.app import create_app

DAY = 86400.0
NOW = 1_750_000_000.0
HOSTILE = '<script>document.title="pwned"</script>'


@dataclass
class Site:
    store: Store
    blobs: BlobStore
    client: TestClient


def compare_report(name: str, line_old: str, line_new: str) -> bytes:
    """A compare report as ``compare.report.write_report`` writes it: one archive, one member whose line changed."""
    detail = f"content differs (14 -> 14 bytes); line 1: {line_old!r} -> {line_new!r}"
    doc = {"comparisons": [{
        "name": name, "identical": False,
        "verdict": {"identical": False, "a": {"size": 10, "sha256": "a" * 64}, "b": {"size": 10, "sha256": "b" * 64}},
        "explanation": {"format": "tar", "classification": "content differs: 1 member(s)", "kind": "content",
                        "categories": ["content"], "notes": [], "differences_total": 1,
                        "differences": [{"path": "pkg/stamp.txt", "status": "content", "categories": ["content"],
                                         "detail": detail}]},
        "diffoscope": None,
    }]}  # fmt: skip
    return json.dumps(doc).encode()


def add_release(
    store: Store,
    ecosystem: str,
    name: str,
    version: str,
    outcomes: Sequence[str],
    *,
    verdict: str | None = None,
    status: str = DONE,
    finished: float = NOW,
    blobs: dict[str, str] | None = None,
    worker: str = "w1",
) -> tuple[int, list[int]]:
    """A release with one job whose attempts came to ``outcomes``; returns the target id and attempt ids."""
    key = f"{abs(hash((ecosystem, name, version))):064x}"[-64:]
    with store.session() as s:
        target = Target(target=f"{ecosystem}:{name}=={version}", ecosystem=ecosystem, name=name, version=version,
                        created_at=finished - 100)  # fmt: skip
        s.add(target)
        s.flush()
        job = Job(key=key, target_id=target.id, status=status, tags="", decided_by="{}", round=1, not_before=0.0,
                  detail="", created_at=finished - 100, updated_at=finished,
                  finished_at=finished if status == DONE else None,
                  verdict=(verdict or (outcomes[-1] if outcomes else None)) if status == DONE else None)  # fmt: skip
        s.add(job)
        s.flush()
        ids = []
        for number, outcome in enumerate(outcomes, start=1):
            attempt = Attempt(job_key=key, round=1, number=number, worker=worker, started_at=finished - 50,
                              finished_at=finished, seconds=1.5, outcome=outcome, classification=outcome,
                              detail="", exit_code=int(outcome != "reproduced"), image_digest="sha256:" + "c" * 64,
                              verifier_version="rebuild-verifier test", artifacts=json.dumps({f"{name}.tar": "a" * 64}),
                              rebuilt_blobs=json.dumps({f"{name}.tar": "b" * 64}), **(blobs or {}))  # fmt: skip
            s.add(attempt)
            s.flush()
            ids.append(attempt.id)
        if status == RUNNING and ids:
            job.attempt_id, job.lease_worker, job.lease_until = ids[-1], worker, finished + 60
        return target.id, ids


@pytest.fixture()
def site(tmp_path: Path) -> Iterator[Site]:
    paths = ServicePaths(tmp_path / "data", f"sqlite:///{tmp_path / 'data' / 'service.db'}")
    init_service(paths)
    store = Store.open(paths.db)
    with TestClient(create_app(store, paths.blobs), raise_server_exceptions=False) as client:
        yield Site(store, paths.blobs, client)
    store.close()


def test_overview_counts_rates_recent_regressions_and_trend(site: Site) -> None:
    old, _ = add_release(site.store, "generic", "clock", "1", ["reproduced"], finished=NOW - 3 * DAY)
    bad, _ = add_release(site.store, "generic", "clock", "2", ["not reproduced", "not reproduced"], finished=NOW)
    add_release(site.store, "generic", "other", "1", ["build failed", "build failed"], verdict="could not rebuild")
    add_release(site.store, "pypi", "flask", "3.0", [], status="queued")
    page = site.client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    # generic: 1 reproduced, 1 not reproduced, 1 could not rebuild, 0 queued; rate 1/3
    row = html.split("<td>generic</td>", 1)[1].split("</tr>", 1)[0]
    assert [c.split(">", 1)[1] for c in row.split("</td>")[:5]] == ["1", "1", "1", "0", "33.3%"]
    assert "<td>pypi</td>" in html and "<th>all</th>" in html
    regressions = html.split('id="regressions"', 1)[1].split("</table>", 1)[0]
    assert f'href="/releases/{bad}"' in regressions and "<td>1</td>" in regressions  # previous version: 1
    assert f'href="/releases/{old}"' not in regressions
    recent = html.split('id="recent"', 1)[1].split("</table>", 1)[0]
    assert f'href="/releases/{bad}"' in recent and 'href="/packages/generic/clock"' in recent
    chart = html.split("<svg", 1)[1].split("</svg>", 1)[0]
    assert chart.count('class="bar-reproduced"') == 1 and chart.count('class="bar-not-reproduced"') == 1
    assert "<script" not in html.lower() and "style=" not in html  # the CSP allows neither


def test_a_package_name_with_markup_is_text_everywhere(site: Site) -> None:
    target, ids = add_release(site.store, "pypi", HOSTILE, "1.0", ["not reproduced"],
                              blobs={"log_blob": site.blobs.put_bytes(HOSTILE.encode() + b"\n")})  # fmt: skip
    escaped = "&lt;script&gt;document.title=&#34;pwned&#34;&lt;/script&gt;"
    for url in ("/", f"/releases/{target}", f"/attempts/{ids[0]}/log", "/packages/pypi/" + quote(HOSTILE, safe="")):
        page = site.client.get(url)
        assert page.status_code == 200, url
        assert "<script" not in page.text and escaped in page.text, url
        assert page.headers["content-security-policy"].startswith("default-src 'none'"), url


def test_package_versions_newest_first_in_the_ecosystems_order(site: Site) -> None:
    for n, version in enumerate(("1.9", "1.10", "1.0rc1", "1.0")):
        add_release(site.store, "pypi", "demo", version, ["reproduced"] * (n + 1), finished=NOW + n)
    html = site.client.get("/packages/pypi/demo").text
    rows = html.split('id="versions"', 1)[1].split("<tbody>", 1)[1].split("</tr>")[:-1]
    versions = [r.split('class="release"', 1)[1].split(">", 1)[1].split("<", 1)[0] for r in rows]
    assert versions == ["1.10", "1.9", "1.0", "1.0rc1"]
    assert [r.split('class="num">', 1)[1].split("<", 1)[0] for r in rows] == ["2", "1", "4", "3"]  # attempts


@pytest.mark.parametrize(
    ("ecosystem", "versions", "newest_first"),
    [
        ("pypi", ["1.0", "1.0.post1", "1.0a1", "2.0", "not-a-version"],
         ["2.0", "1.0.post1", "1.0", "1.0a1", "not-a-version"]),
        ("debian", ["1.0-1", "1.0-1~bpo1", "1:0.5-1", "1.0-10"], ["1:0.5-1", "1.0-10", "1.0-1", "1.0-1~bpo1"]),
        ("generic", ["2", "10", "9a", "9"], ["10", "9a", "9", "2"]),
    ],
    ids=["pep440", "dpkg", "numbers-as-numbers"],
)  # fmt: skip
def test_version_order(ecosystem: str, versions: list[str], newest_first: list[str]) -> None:
    from rebuild.web.queries import version_key

    assert sorted(versions, key=lambda v: version_key(ecosystem, v), reverse=True) == newest_first


def test_release_page_explains_and_links_every_file(site: Site) -> None:
    report = site.blobs.put_bytes(compare_report("clock-2.tar", "built at 10:00", "built at 11:00"))
    log = site.blobs.put_bytes(b"step 1\n")
    html_report = site.blobs.put_bytes(b"<html><script>alert(1)</script></html>")
    files = {"compare_blob": report, "log_blob": log, "diffoscope_blob": html_report}
    target, ids = add_release(site.store, "generic", "clock", "2", ["not reproduced"] * 2, blobs=files)
    with site.store.session() as s:
        job_key = s.get(Attempt, ids[-1]).job_key  # type: ignore[union-attr]
        s.add(Attestation(job_key=job_key, attempt_id=ids[-1], artifact="clock-2.tar",
                          subject_sha256="a" * 64, verdict="FAILED", bundle_blob=site.blobs.put_bytes(b'{"x":1}\n'),
                          keyid="k" * 64, signed_at=NOW))  # fmt: skip
    html = site.client.get(f"/releases/{target}").text
    assert "content differs: 1 member(s)" in html and "pkg/stamp.txt" in html
    assert (
        '<blockquote class="quoted">line 1: &#39;built at 10:00&#39; -&gt; &#39;built at 11:00&#39;</blockquote>'
        in html
    )
    assert "a" * 64 in html and "b" * 64 in html  # published vs rebuilt
    for link in (f"/attempts/{ids[-1]}/log", f"/attempts/{ids[-1]}/compare-report.json",
                 f"/attempts/{ids[-1]}/diffoscope.html", "/attestations/1/bundle.intoto.jsonl"):  # fmt: skip
        assert f'href="{link}"' in html, link
        assert site.client.get(link).status_code == 200, link
    diffoscope = site.client.get(f"/attempts/{ids[-1]}/diffoscope.html")
    assert diffoscope.headers["content-security-policy"].startswith("sandbox;")  # its script cannot run
    assert diffoscope.headers["x-content-type-options"] == "nosniff"
    raw = site.client.get(f"/attempts/{ids[-1]}/build.log")
    assert raw.headers["content-type"] == "text/plain; charset=utf-8" and raw.text == "step 1\n"
    assert site.client.get(f"/attempts/{ids[-1]}/compare-report.json").headers["content-type"] == "application/json"


def test_log_is_paged_and_control_characters_are_shown_escaped(site: Site) -> None:
    lines = [f"line {n} \x1b[31mred\x1b[0m\u202eevil" for n in range(1, 1201)]
    log = site.blobs.put_bytes("\n".join(lines).encode())
    _, ids = add_release(site.store, "generic", "clock", "1", ["reproduced"], blobs={"log_blob": log})
    first = site.client.get(f"/attempts/{ids[0]}/log").text
    assert "Page 1 of 3 (1200 lines)" in first and "line 500 " in first and "line 501 " not in first
    assert "\\x1b[31mred" in first and "\\u202e" in first and "\x1b" not in first and "\u202e" not in first
    last = site.client.get(f"/attempts/{ids[0]}/log?page=3").text
    assert "line 1001 " in last and "line 1200 " in last and 'rel="next"' not in last
    assert site.client.get(f"/attempts/{ids[0]}/log?page=4").status_code == 404


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/?page=2", 400), ("/queue?x=<b>", 400), ("/releases/999", 404), ("/releases/-1", 400),
        ("/releases/abc", 400), ("/releases/99999999999999999999999", 400), ("/attempts/1/log?page=0", 400),
        ("/attempts/1/log?page=abc", 400), ("/attempts/999/log", 404), ("/attempts/1/../../etc/passwd", 404),
        ("/attempts/1/shadow", 404), ("/attestations/5/bundle.intoto.jsonl", 404), ("/packages/pypi/nothing", 404),
        ("/packages/pypi/" + "x" * 300, 404), ("/nowhere", 404),
    ],
    ids=lambda v: str(v)[:40],
)  # fmt: skip
def test_bad_requests_are_html_error_pages(site: Site, url: str, status: int) -> None:
    add_release(site.store, "generic", "clock", "1", ["reproduced"])
    page = site.client.get(url)
    assert page.status_code == status
    assert page.headers["content-type"].startswith("text/html") and "Traceback" not in page.text
    assert f'<h1 id="error-status">{status}</h1>' in page.text and "<b>" not in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]


@pytest.mark.parametrize(
    "stored",
    [b"not json", b'{"comparisons": "no"}', b'{"comparisons": [1, {"name": 5, "explanation": {"differences": 3}}]}',
     b'{"a": 1, "a": 2}', b"[" * 100 + b"]" * 100],
    ids=["not-json", "wrong-type", "wrong-fields", "duplicate-key", "too-deep"],
)  # fmt: skip
def test_a_hostile_compare_report_degrades_the_page_not_the_server(site: Site, stored: bytes) -> None:
    report = site.blobs.put_bytes(stored)
    target, _ = add_release(site.store, "generic", "clock", "1", ["not reproduced"], blobs={"compare_blob": report})
    page = site.client.get(f"/releases/{target}")
    assert page.status_code == 200
    assert "The compare report cannot be shown" in page.text or "differs" in page.text


def test_hostile_blob_names_and_altered_blobs_are_404s(site: Site) -> None:
    altered = site.blobs.put_bytes(b"the original log\n")
    _, ids = add_release(site.store, "generic", "a", "1", ["reproduced"], blobs={"log_blob": altered})
    site.blobs.path(altered).write_bytes(b"swapped\n")
    _, bad = add_release(site.store, "generic", "b", "1", ["reproduced"], blobs={"log_blob": "../../keys/service.key"})
    _, gone = add_release(site.store, "generic", "c", "1", ["reproduced"], blobs={"log_blob": "d" * 64})
    for attempt, what in ((ids[0], "not what its name says"), (bad[0], "not a sha256"), (gone[0], "missing")):
        for url in (f"/attempts/{attempt}/log", f"/attempts/{attempt}/build.log"):
            page = site.client.get(url)
            assert page.status_code == 404 and what in page.text, url
            assert "BEGIN" not in page.text


def test_hostile_digest_columns_are_shown_as_unreadable(site: Site) -> None:
    target, ids = add_release(site.store, "generic", "a", "1", ["reproduced"])
    with site.store.session() as s:
        attempt = s.get(Attempt, ids[0])
        assert attempt is not None
        attempt.artifacts, attempt.rebuilt_blobs = '{"x": "<i>not hex</i>"}', "[1, 2"
    html = site.client.get(f"/releases/{target}").text
    assert "(not a sha256)" in html and "(unreadable)" in html and "<i>" not in html


def test_queue_page_shows_what_runs_where_since_when(site: Site) -> None:
    target, _ = add_release(site.store, "generic", "busy", "1", ["running"], status=RUNNING, worker="<w>1")
    add_release(site.store, "generic", "waiting", "1", [], status="queued")
    site.store.register_worker("<w>1", "host-a", 4242, "store", "arch=x86_64", 2)
    site.store.register_worker("gone", "host-b", 1, "rq", "", 1)
    site.store.stop_worker("gone")
    html = site.client.get("/queue").text
    running = html.split('id="running"', 1)[1].split("</table>", 1)[0]
    assert f'href="/releases/{target}"' in running and "&lt;w&gt;1" in running and "2025-06-15 15:05:50 UTC" in running
    assert "generic:waiting==1" in html.split('id="queued"', 1)[1] and "Queued (1)" in html
    workers = html.split('id="workers"', 1)[1]
    assert "host-a" in workers and ">live<" in workers and "stopped " in workers


def test_a_broken_store_is_a_500_page_without_a_traceback(site: Site) -> None:
    with site.store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE workers")
    page = site.client.get("/queue")
    assert page.status_code == 500 and "internal error" in page.text and "Traceback" not in page.text
    assert "sqlite" not in page.text.lower()
