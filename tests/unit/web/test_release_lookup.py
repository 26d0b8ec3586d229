"""`verify?purl=` and `releases/…` find a release by equality on its name: one index look-up, not a scan of
every target of the ecosystem, and a PyPI name in its PEP 503 form (``Foo_Bar`` is ``foo-bar``).

The query plan is SQLite's own ``EXPLAIN QUERY PLAN`` of the statements the endpoints really run (captured
from the engine), so the test says which index answers, with no clock involved.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from rebuild.resolution import Resolution
from rebuild.service.blobs import BlobStore
from rebuild.service.intake import describe
from rebuild.service.store import Store, make_engine, migrate
from rebuild.web.app import create_app


@pytest.fixture()
def site(tmp_path: Path) -> Iterator[tuple[Store, TestClient]]:
    url = f"sqlite:///{tmp_path / 'service.db'}"
    migrate(make_engine(url))
    store = Store(url)
    for target, where in [
        ("pypi:foo-bar==1.0", ("pypi", "foo-bar", "1.0")),
        ("pypi:foo-barx==1.0", ("pypi", "foo-barx", "1.0")),
        ("pypi:Old_Spelling==2.0", ("pypi", "Old_Spelling", "2.0")),  # queued before intake stored PEP 503 names
        ("deb:hello=2.10-3", ("debian", "hello", "2.10-3")),
        *((f"pypi:filler{n}==1.0", ("pypi", f"filler{n}", "1.0")) for n in range(200)),
    ]:
        store.add_job(target, where, hashlib.sha256(target.encode()).hexdigest(), {"target": target}, "")
    with TestClient(create_app(store, BlobStore(tmp_path / "blobs"))) as client:
        yield store, client
    store.close()


def plans_of_target_lookups(store: Store, client: TestClient, url: str, params: dict[str, str]) -> list[str]:
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if "FROM targets" in statement and "WHERE targets.ecosystem" in statement:
            seen.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", capture)
    try:
        assert client.get(url, params=params).status_code == 200
    finally:
        event.remove(store.engine, "before_cursor_execute", capture)
    assert seen, f"{url} looked up no target"
    with store.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        return [" / ".join(row[3] for row in raw.execute("EXPLAIN QUERY PLAN " + sql, args)) for sql, args in seen]


@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("/api/v1/verify", {"purl": "pkg:pypi/Foo_Bar@1.0"}),
        ("/api/v1/releases/pypi/Foo.Bar/1.0", {}),
        ("/api/v1/verify", {"purl": "pkg:deb/debian/hello@2.10-3"}),
        ("/api/v1/releases/debian/hello/2.10-3", {}),
    ],
    ids=["verify-pypi", "release-pypi", "verify-deb", "release-deb"],
)
def test_a_release_is_one_index_look_up_on_ecosystem_and_name(
    site: tuple[Store, TestClient], url: str, params: dict[str, str]
) -> None:
    for plan in plans_of_target_lookups(*site, url, params):
        assert "USING INDEX ix_targets_ecosystem_name (ecosystem=? AND name=?)" in plan, plan
        assert "SCAN targets" not in plan, plan


@pytest.mark.parametrize(
    ("url", "params", "targets"),
    [
        ("/api/v1/releases/pypi/Foo_Bar/1.0", {}, ["pypi:foo-bar==1.0"]),
        ("/api/v1/releases/pypi/FOO--bar/1.0", {}, ["pypi:foo-bar==1.0"]),
        ("/api/v1/releases/pypi/foo-bar/1.0", {}, ["pypi:foo-bar==1.0"]),
        ("/api/v1/releases/pypi/Old_Spelling/2.0", {}, ["pypi:Old_Spelling==2.0"]),
        ("/api/v1/verify", {"purl": "pkg:pypi/Foo_Bar@1.0"}, ["pypi:foo-bar==1.0"]),
        ("/api/v1/verify", {"purl": "pkg:pypi/foo.bar@1.0"}, ["pypi:foo-bar==1.0"]),
    ],
    ids=["underscore", "runs-and-case", "canonical", "older-row-as-spelled", "purl-underscore", "purl-dot"],
)
def test_a_pypi_name_matches_in_its_pep_503_form(
    site: tuple[Store, TestClient], url: str, params: dict[str, str], targets: list[str]
) -> None:
    got = site[1].get(url, params=params)
    assert got.status_code == 200
    if "purl" in params:
        assert got.json()["job_key"] == hashlib.sha256(targets[0].encode()).hexdigest()
    else:
        assert got.json()["targets"] == targets


@pytest.mark.parametrize(
    "url",
    ["/api/v1/releases/pypi/foo-ba/1.0", "/api/v1/releases/pypi/foo_bar/1.1", "/api/v1/releases/debian/Hello/2.10-3"],
)
def test_another_name_or_version_is_not_found(site: tuple[Store, TestClient], url: str) -> None:
    assert site[1].get(url).status_code == 404


def test_intake_stores_the_pep_503_name_of_a_resolved_pypi_target(tmp_path: Path) -> None:
    summary = {"ecosystem": "pypi", "project": "Foo_Bar", "version": "1.0"}
    described = describe("pypi:Foo_Bar==1.0", Resolution("pypi:Foo_Bar==1.0", [], {}, tmp_path, "none", summary))
    assert described.where == ("pypi", "foo-bar", "1.0")
