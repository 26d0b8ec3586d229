"""A job key prefix names one job or is refused: ``POST /retry {"jobs": ["00000000"]}`` and
``rebuild queue retry 00000000`` retried every job whose key starts so; now both refuse, name the
ambiguity, and retry nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from rebuild.cli import app as cli
from rebuild.errors import InputError
from rebuild.service import tokens, views
from rebuild.service.blobs import BlobStore
from rebuild.service.config import ServicePaths, init_service
from rebuild.service.models import DONE, QUEUED
from rebuild.service.store import Store
from rebuild.web.app import create_app

TWINS = ("00000000" + "a" * 56, "00000000" + "b" * 56)  # two keys sharing their first 8 (and 8 more) digits
OTHER = "11111111" + "c" * 56


@pytest.fixture()
def data(tmp_path: Path) -> Iterator[tuple[Path, Store]]:
    directory = tmp_path / "data"
    paths = ServicePaths.of(None, directory)
    init_service(paths)
    store = Store.open(paths.db)
    for n, key in enumerate((*TWINS, OTHER)):
        target = f"pypi:twin{n}==1.0"
        store.add_job(target, ("pypi", f"twin{n}", "1.0"), key, {"target": target}, "")
        claim = store.claim("w1", "", 60.0)
        assert claim is not None and claim.key == key
        store.finish(claim, "reproduced", {})
    yield directory, store
    store.close()


def statuses(store: Store) -> dict[str, str]:
    return {j["key"]: j["status"] for j in views.list_jobs(store)}


def test_resolve_keys_refuses_a_prefix_of_several_keys(data: tuple[Path, Store]) -> None:
    with pytest.raises(InputError, match="ambiguous: it starts several job keys") as raised:
        views.resolve_keys(data[1], ["00000000"])
    assert TWINS[0][:16] in raised.value.message and TWINS[1][:16] in raised.value.message


def test_a_unique_prefix_a_whole_key_and_a_target_still_resolve(data: tuple[Path, Store]) -> None:
    store = data[1]
    assert views.resolve_keys(store, ["00000000a"]) == [TWINS[0]]
    assert views.resolve_keys(store, [TWINS[1]]) == [TWINS[1]]
    assert views.resolve_keys(store, ["pypi:Twin2==1.0"]) == [OTHER]


def test_a_prefix_with_like_wildcards_is_text_not_a_pattern(data: tuple[Path, Store]) -> None:
    for ref in ("%%%%%%%%", "________", "0000000%"):
        with pytest.raises(InputError, match="no job is"):
            views.resolve_keys(data[1], [ref])


def test_the_api_refuses_an_ambiguous_prefix_and_retries_nothing(data: tuple[Path, Store]) -> None:
    directory, store = data
    with TestClient(create_app(store, BlobStore(directory / "blobs"))) as client:
        auth = {"Authorization": f"Bearer {tokens.create(store, ['queue']).secret}"}
        refused = client.post("/api/v1/retry", json={"jobs": ["00000000"]}, headers=auth)
        assert refused.status_code == 400 and "ambiguous" in refused.json()["detail"]
        assert set(statuses(store).values()) == {DONE}
        assert client.post("/api/v1/retry", json={"jobs": ["99999999"]}, headers=auth).status_code == 404
        one = client.post("/api/v1/retry", json={"jobs": ["00000000b"]}, headers=auth)
        assert one.status_code == 200 and one.json() == {"retried": [TWINS[1]]}
    assert statuses(store) == {TWINS[0]: DONE, TWINS[1]: QUEUED, OTHER: DONE}


def test_queue_retry_refuses_an_ambiguous_prefix_with_exit_2(data: tuple[Path, Store]) -> None:
    directory, store = data
    result = CliRunner().invoke(cli, ["queue", "retry", "00000000", "--data-dir", str(directory)])
    assert result.exit_code == 2 and "'00000000' is ambiguous: it starts several job keys" in result.output
    assert set(statuses(store).values()) == {DONE}
    result = CliRunner().invoke(cli, ["queue", "retry", "00000000a", "--data-dir", str(directory), "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["keys"] == [TWINS[0]]
    assert statuses(store)[TWINS[0]] == QUEUED
