"""API tokens: made once, stored as a hash only, checked in constant time, revocable; and their CLI."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rebuild.cli import app
from rebuild.errors import InputError
from rebuild.service import tokens
from rebuild.service.store import Store, make_engine, migrate


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    url = f"sqlite:///{tmp_path / 'service.db'}"
    migrate(make_engine(url))
    return Store(url)


def test_a_token_is_recognisable_random_and_stored_only_as_its_hash(store: Store, tmp_path: Path) -> None:
    made = tokens.create(store, ["queue"], "ci")
    other = tokens.create(store, ["queue"])
    assert made.secret.startswith("rbv_") and len(made.secret) == 4 + 43 and made.secret != other.secret
    db = sqlite3.connect(tmp_path / "service.db")
    dump = "\n".join(db.iterdump())
    assert made.secret not in dump and made.secret[4:] not in dump  # nowhere in the store
    assert hashlib.sha256(made.secret.encode()).hexdigest() in dump
    assert tokens.check(store, made.secret) == tokens.Holder(made.id, "ci", ("queue",))
    assert [t["last_used_at"] is not None for t in tokens.listing(store)] == [True, False]


@pytest.mark.parametrize(
    "presented",
    [
        pytest.param("", id="empty"),
        pytest.param("rbv_" + "A" * 43, id="well-formed-unknown"),
        pytest.param("rbv_" + "A" * 42, id="short"),
        pytest.param("rbv_" + "A" * 43 + "\n", id="newline"),
        pytest.param("x" * 100_000, id="huge"),
        pytest.param("rbv_' OR '1'='1' --AAAAAAAAAAAAAAAAAAAAAAAAAAAA", id="sql"),
    ],
)
def test_what_is_not_a_live_token_checks_as_none(store: Store, presented: str) -> None:
    tokens.create(store, ["queue"])
    assert tokens.check(store, presented) is None


def test_a_revoked_token_no_longer_checks(store: Store) -> None:
    made = tokens.create(store, ["queue"], "ci")
    assert tokens.revoke(store, str(made.id)) == {"id": made.id, "name": "ci", "revoked": True, "already": False}
    assert tokens.check(store, made.secret) is None
    assert tokens.revoke(store, "ci")["already"] is True
    assert tokens.listing(store)[0]["revoked_at"] is not None


@pytest.mark.parametrize(
    ("scopes", "name", "message"),
    [
        pytest.param(["admin"], None, "unknown token scope 'admin'", id="scope"),
        pytest.param([], None, "unknown token scope none", id="no-scope"),
        pytest.param(["queue"], "a b", "is not allowed", id="space"),
        pytest.param(["queue"], "<script>", "is not allowed", id="markup"),
        pytest.param(["queue"], "x" * 65, "is not allowed", id="long"),
    ],
)
def test_bad_scopes_and_names(store: Store, scopes: list[str], name: str | None, message: str) -> None:
    with pytest.raises(InputError, match=message):
        tokens.create(store, scopes, name)


def test_revoking_by_an_ambiguous_or_unknown_name(store: Store) -> None:
    tokens.create(store, ["queue"], "twin")
    tokens.create(store, ["queue"], "twin")
    with pytest.raises(InputError, match="2 tokens are named 'twin'"):
        tokens.revoke(store, "twin")
    with pytest.raises(InputError, match="no token is '99'"):
        tokens.revoke(store, "99")


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_the_token_commands(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    assert run("init", "--data-dir", data)[0] == 0
    code, out = run("token", "create", "--scope", "queue", "--name", "ci", "--data-dir", data, "--json")
    made = json.loads(out)
    assert code == 0 and made["token"].startswith("rbv_") and made["scopes"] == ["queue"]
    code, out = run("token", "create", "--scope", "queue", "--data-dir", data)
    assert code == 0 and "shown once" in out and "rbv_" in out
    code, out = run("token", "ls", "--data-dir", data, "--json")
    listed = json.loads(out)["tokens"]
    assert code == 0 and len(listed) == 2 and listed[0]["name"] == "ci" and made["token"] not in out
    code, out = run("token", "revoke", "ci", "--data-dir", data)
    assert code == 0 and "token 1 ci revoked" in out
    assert tokens.check(Store.open(f"sqlite:///{tmp_path / 'data' / 'service.db'}"), made["token"]) is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["token", "create", "--scope", "root"], "unknown token scope 'root'", id="scope"),
        pytest.param(["token", "create", "--scope", "queue", "--name", "a;b"], "is not allowed", id="name"),
        pytest.param(["token", "revoke", "nobody"], "no token is 'nobody'", id="revoke-unknown"),
    ],
)
def test_token_commands_bad_usage(tmp_path: Path, args: list[str], message: str) -> None:
    data = str(tmp_path / "data")
    assert run("init", "--data-dir", data)[0] == 0
    code, out = run(*args, "--data-dir", data)
    assert code == 2 and message in out and "Traceback" not in out


def test_token_commands_on_a_store_never_made(tmp_path: Path) -> None:
    code, out = run("token", "ls", "--data-dir", str(tmp_path / "none"))
    assert code == 2 and "is not initialized" in out
