"""The dashboard's read model on PostgreSQL (a throwaway cluster on 127.0.0.1) gives what it gives on SQLite."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from rebuild.service.config import ServicePaths, init_service
from rebuild.service.store import Store
from rebuild.web import queries
from rebuild.web.app import create_app
from tests.integration.service.conftest import fresh_postgres, postgres_url, store_url  # noqa: F401  (fixtures)
from tests.unit.web.test_pages import DAY, HOSTILE, NOW, add_release, compare_report


def test_overview_package_and_release_read_alike(tmp_path: Path, store_url: str) -> None:  # noqa: F811
    paths = ServicePaths(tmp_path / "data", store_url)
    init_service(paths)
    store = Store.open(store_url)
    try:
        report = paths.blobs.put_bytes(compare_report("clock-2.tar", "at 10:00", "at 11:00"))
        add_release(store, "generic", "clock", "1", ["reproduced"], finished=NOW - 3 * DAY)
        bad, _ = add_release(store, "generic", "clock", "2", ["not reproduced"] * 2, finished=NOW - DAY,
                             blobs={"compare_blob": report})  # fmt: skip
        add_release(store, "generic", "clock", "10", ["build failed"], verdict="could not rebuild", finished=NOW)
        add_release(store, "pypi", HOSTILE, "1.0", [], status="queued")
        view = queries.overview(store, now=NOW)
        assert {e.ecosystem: e.counts for e in view.ecosystems} == {
            "generic": {"reproduced": 1, "not reproduced": 1, "could not rebuild": 1},
            "pypi": {"queued": 1},
        }
        assert [(r.release.version, r.previous_version) for r in view.regressions] == [("2", "1")]
        assert [r.version for r in view.recent] == ["10", "2", "1"]
        daily = [b.counts for b in view.trend if any(b.counts.values())]  # floor, not rounding, on PostgreSQL
        assert daily == [{"reproduced": 1, "not reproduced": 0, "could not rebuild": 0},
                         {"reproduced": 0, "not reproduced": 1, "could not rebuild": 0},
                         {"reproduced": 0, "not reproduced": 0, "could not rebuild": 1}]  # fmt: skip
        assert [r.version for r in queries.package(store, "generic", "clock")] == ["10", "2", "1"]
        with TestClient(create_app(store, paths.blobs)) as client:
            page = client.get(f"/releases/{bad}")
            assert page.status_code == 200 and "line 1: &#39;at 10:00&#39; -&gt; &#39;at 11:00&#39;" in page.text
            assert client.get("/").status_code == 200 and client.get("/queue").status_code == 200
            queue = client.get("/queue").text
            assert "&lt;script&gt;" in queue and "<script" not in queue
    finally:
        store.close()
