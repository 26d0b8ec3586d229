"""Content equivalence in the service: the setting, the attempts' column (migration 0003), the tables, and
``publish`` signing a worker's claim only when it agrees with the store (every lie refused and named).

The archives are real zips made here: the "rebuilt" wheel and a "published" one with the same members and
other timestamps (content-equivalent), or one changed byte (not). Statements, reports and the claim are made
by the project's own code, as a worker makes them; a lying worker is each one altered.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from compare.equivalence import content_equivalence
from compare.report import compare_artifacts
from rebuild.attest import statements, uris
from rebuild.attest.dsse import sign as dsse_sign
from rebuild.attest.envelopes import parse_envelopes
from rebuild.attest.equivalence import content_equivalence_statement
from rebuild.attest.keys import load_public_key
from rebuild.attest.statements import ResourceRef, Subject
from rebuild.cli import app
from rebuild.errors import InputError
from rebuild.service import jobs
from rebuild.service.config import ServicePaths, content_equivalence_of, init_service
from rebuild.service.models import Attestation
from rebuild.service.publish import publish
from rebuild.service.store import MIGRATIONS, Store, current_revision, make_engine
from rebuild.service.views import history, list_jobs
from rebuild.service.worker import WorkerConfig

WHEEL = "demo-1.0-py3-none-any.whl"
LABEL = "content-equivalent (metadata differs: timestamps)"
MEMBERS = {"demo/__init__.py": b"print('hello, world')\n", "demo-1.0.dist-info/METADATA": b"Name: demo\n"}


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})
    return result.exit_code, result.output


def wheel(path: Path, when: tuple[int, int, int, int, int, int], change: bytes = b"") -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in MEMBERS.items():
            info = zipfile.ZipInfo(name, when)
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data + (change if name.endswith(".py") else b""))
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Service:
    store: Store
    paths: ServicePaths
    tmp: Path

    def publish(self) -> dict[str, Any]:
        public = load_public_key(self.paths.public_key)
        return publish(self.store, self.paths.blobs, self.tmp / "out", self.paths.signer(), public, b"pem\n")


@pytest.fixture()
def service(tmp_path: Path) -> Iterator[Service]:
    paths = ServicePaths(tmp_path / "data", f"sqlite:///{tmp_path / 'data' / 'service.db'}")
    init_service(paths)
    store = Store.open(paths.db)
    yield Service(store, paths, tmp_path)
    store.close()


@dataclass
class Attempted:
    """What a worker leaves for one "not reproduced" wheel: statements, a report, the rebuilt file, a label."""

    published: Path
    rebuilt: Path
    vsa: dict[str, Any]
    claim: dict[str, Any]
    compare: bytes
    equivalence: str


def attempted(tmp: Path, change: bytes = b"") -> Attempted:
    """An honest worker's output; with ``change``, the published wheel's content differs, and the claim is the
    one an honest equivalent pair would give (what a lying worker would copy)."""
    tmp.mkdir(parents=True, exist_ok=True)
    rebuilt = wheel(tmp / "rebuilt.whl", (2026, 11, 22, 15, 0, 0))
    published = wheel(tmp / WHEEL, (2021, 5, 5, 14, 18, 16), change)
    honest = wheel(tmp / "honest.whl", (2021, 5, 5, 14, 18, 16))
    equivalence = content_equivalence(honest, rebuilt, side_names=("published", "rebuilt"))
    assert equivalence.equivalent and equivalence.label == LABEL
    report = compare_artifacts(published, rebuilt, name=WHEEL, side_names=("published", "rebuilt"))
    compare = (json.dumps({"comparisons": [report.as_dict()]}, sort_keys=True) + "\n").encode()
    original = [ResourceRef("pypi-release.json", {"sha256": "ab" * 32}, name="original-provenance")]
    subject = Subject(WHEEL, {"sha256": sha256(published)})
    vsa = statements.verification_summary(
        subject, passed=False, resource_uri=WHEEL, input_attestations=original,
        report=ResourceRef("compare-report.json", {"sha256": hashlib.sha256(compare).hexdigest()}),
    )  # fmt: skip
    claim = content_equivalence_statement(
        subject, Subject(WHEEL, {"sha256": sha256(rebuilt)}), equivalence, input_attestations=original
    )
    label = LABEL if not change else "no: member 'demo/__init__.py': content differs"
    return Attempted(published, rebuilt, json.loads(vsa), json.loads(claim), compare, label)


def finish(service: Service, work: Attempted, payloads: list[dict[str, Any]], outcome: str = jobs.NOT_REPRODUCED,
           equivalence: str | None = None) -> str:  # fmt: skip
    """A job of the wheel's target, finished (checked again, as the retry rules do) with these statements."""
    blobs, target = service.paths.blobs, "pypi:demo==1.0"
    key = hashlib.sha256(target.encode()).hexdigest()
    service.store.add_job(target, ("pypi", "demo", "1.0"), key, {"target": target}, "")
    unsigned = "".join(dsse_sign(json.dumps(p).encode(), []).to_json() + "\n" for p in payloads).encode()
    fields = {
        "artifacts": {WHEEL: sha256(work.published)}, "statements_blob": blobs.put_bytes(unsigned),
        "compare_blob": blobs.put_bytes(work.compare), "rebuilt_blobs": {WHEEL: blobs.put_file(work.rebuilt)},
        "classification": "content identical, timestamps differ", "exit_code": 1,
        "equivalence": work.equivalence if equivalence is None else equivalence,
    }  # fmt: skip
    decision = None
    while decision is None or not decision.final:
        claim = service.store.claim("w1", "", 60.0)
        assert claim is not None and claim.key == key
        decision = service.store.finish(claim, outcome, fields)
    return key


def predicates(bundle: bytes) -> list[str]:
    return [json.loads(base64.b64decode(json.loads(line)["payload"]))["predicateType"]
            for line in bundle.decode().splitlines()]  # fmt: skip


# --- the store: migration 0003, the setting ---------------------------------------------------------------


def test_migration_0003_adds_a_nullable_equivalence_column_and_goes_back(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    url = f"sqlite:///{tmp_path / 's.db'}"
    engine = make_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))

    def to(revision: str, down: bool = False) -> None:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            (command.downgrade if down else command.upgrade)(config, revision)

    to("0002")
    with engine.begin() as conn:  # an attempt from before: its equivalence is unknown, not "no"
        conn.execute(sa.text("INSERT INTO targets (target, ecosystem, name, version, created_at) "
                             "VALUES ('pypi:a==1', 'pypi', 'a', '1', 0)"))  # fmt: skip
        conn.execute(sa.text("INSERT INTO jobs (key, target_id, status, tags, decided_by, round, not_before, detail, "
                             "created_at, updated_at) VALUES ('k', 1, 'done', '', '{}', 1, 0, '', 0, 0)"))  # fmt: skip
        conn.execute(sa.text("INSERT INTO attempts (job_key, round, number, worker, started_at, classification, "
                             "detail, image_digest, verifier_version, artifacts, rebuilt_blobs) "
                             "VALUES ('k', 1, 1, 'w', 0, '', '', '', '', '{}', '{}')"))  # fmt: skip
    to("head")
    assert current_revision(engine) == "0003"
    column = next(c for c in sa.inspect(engine).get_columns("attempts") if c["name"] == "equivalence")
    assert column["nullable"] is True and isinstance(column["type"], sa.Text)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT equivalence FROM attempts")).scalar_one() is None
    to("0002", down=True)
    assert "equivalence" not in {c["name"] for c in sa.inspect(engine).get_columns("attempts")}
    engine.dispose()


def test_init_turns_content_equivalence_on_and_a_later_init_changes_it_only_when_told(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    code, output = run("init", "--data-dir", data)
    assert code == 0 and "content equivalence: on" in output
    code, output = run("init", "--data-dir", data, "--no-content-equivalence", "--json")
    assert code == 0 and json.loads(output)["settings"]["content_equivalence"] == "false"
    code, output = run("init", "--data-dir", data)  # kept
    assert code == 0 and "content equivalence: off" in output
    store = Store.open(f"sqlite:///{tmp_path / 'data' / 'service.db'}")
    config = WorkerConfig(db=store.url, data_dir=data, name="w", cache_dir=str(tmp_path / "cache"))
    assert config.job_settings(store).content_equivalence is False
    assert run("init", "--data-dir", data, "--content-equivalence")[0] == 0
    assert config.job_settings(store).content_equivalence is True
    store.put_settings({"content_equivalence": "maybe\x1b[2J"})
    with pytest.raises(InputError, match="is 'maybe\\\\x1b\\[2J', not true or false"):
        config.job_settings(store)
    store.close()


def test_a_store_from_before_the_setting_decides_content_equivalence() -> None:
    assert content_equivalence_of({}) is True and content_equivalence_of({"content_equivalence": "false"}) is False


# --- publish: an honest claim is signed beside FAILED ------------------------------------------------------


def test_an_honest_claim_is_signed_beside_the_failed_summary_and_shown_in_the_tables(
    service: Service, tmp_path: Path
) -> None:
    work = attempted(tmp_path / "w")
    key = finish(service, work, [work.vsa, work.claim])
    doc = service.publish()
    assert doc["refused"] == [] and [s["verdict"] for s in doc["signed"]] == ["FAILED"]
    bundle = service.paths.blobs.read_bytes(doc["signed"][0]["bundle"])
    assert predicates(bundle) == [uris.SLSA_VSA_V1, uris.CONTENT_EQUIVALENCE_V1]
    public = load_public_key(service.paths.public_key)
    for loaded in parse_envelopes(bundle.decode(), "bundle"):  # both signed by the service key
        from rebuild.attest import dsse

        assert dsse.verify(loaded.envelope, [public]).signers
    path = tmp_path / "bundle.intoto.jsonl"
    path.write_bytes(bundle)
    digest = f"sha256:{sha256(work.published)}"
    args = ("attestation", "verify", str(path), "--key", str(service.paths.public_key), "--digest", digest)
    code, output = run(*args)
    assert code == 1 and "is not accepted" in output
    code, output = run(*args, "--accept", "content-equivalent")
    assert code == 0 and LABEL in output.splitlines()[0]

    (row,) = list_jobs(service.store)
    assert row["key"] == key and row["verdict"] == "not reproduced" and row["equivalence"] == LABEL
    hist = history(service.store, "pypi:demo==1.0")
    assert [a["equivalence"] for a in hist["jobs"][0]["attempts"]] == [LABEL, LABEL]
    data = ["--data-dir", str(service.paths.data_dir)]
    code, output = run("queue", "ls", *data)
    assert code == 0 and "content-equivalent" in output.splitlines()[0] and LABEL in output
    code, output = run("history", "pypi:demo==1.0", *data)
    assert code == 0 and output.count(f"; {LABEL}") == 2
    code, output = run("status", "pypi:demo==1.0", *data, "--json")
    assert code == 0 and json.loads(output)["jobs"][0]["equivalence"] == LABEL


def test_without_a_claim_the_failed_summary_is_signed_alone(service: Service, tmp_path: Path) -> None:
    work = attempted(tmp_path / "w", change=b"# changed\n")
    finish(service, work, [work.vsa])
    doc = service.publish()
    assert doc["refused"] == []
    assert predicates(service.paths.blobs.read_bytes(doc["signed"][0]["bundle"])) == [uris.SLSA_VSA_V1]
    assert list_jobs(service.store)[0]["equivalence"].startswith("no: ")


# --- publish: every lie is refused, named, and nothing of the job is signed -----------------------------------


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(claim: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = claim
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[int(last) if last.isdigit() else last] = value

    return change


def _drop_member(claim: dict[str, Any]) -> None:  # and its differences: the claim still parses
    gone = claim["predicate"]["members"].pop()["path"]
    claim["predicate"]["differences"] = [d for d in claim["predicate"]["differences"] if d["member"] != gone]


LIES = [
    pytest.param(_set("subject.0.digest.sha256", "cd" * 32), "not an artifact the attempt compared", id="subject"),
    pytest.param(_set("predicate.rebuilt.digest.sha256", "ef" * 32), "is not the stored rebuilt file", id="rebuilt"),
    pytest.param(_set("predicate.verifier.id", "https://elsewhere.example/v1"), "is not the service's",
                 id="verifier"),
    pytest.param(_set("predicate.inputAttestations", []), "inputAttestations are not the FAILED", id="inputs"),
    pytest.param(_set("predicate.members.0.digest.sha256", "00" * 32), "is not the rebuilt file's", id="member"),
    pytest.param(_set("predicate.members.0.size", 1), "is not the rebuilt file's", id="member-size"),
    pytest.param(_drop_member, "in the claim or the rebuilt file, not both", id="member-missing"),
    pytest.param(_set("predicate.differences.0.kind", "content"), "a claim never lists a content difference",
                 id="content-kind"),
    pytest.param(_set("predicate.bitForBit", True), "bitForBit is not false", id="bit-for-bit"),
    pytest.param(_set("predicate.passed", True), "unknown field(s) passed", id="unknown-field"),
    pytest.param(_set("predicate.resourceUri", "other.whl"), "resourceUri and rebuilt.name", id="resource"),
    pytest.param(_set("subject", []), "has 0 subjects, not one", id="no-subject"),
]  # fmt: skip


@pytest.mark.parametrize(("lie", "named"), LIES)
def test_a_claim_that_lies_is_refused_and_never_signed(
    service: Service, tmp_path: Path, lie: Callable[[dict[str, Any]], None], named: str
) -> None:
    work = attempted(tmp_path / "w")
    lie(work.claim)
    key = finish(service, work, [work.vsa, work.claim])
    doc = service.publish()
    assert doc["signed"] == [] and len(doc["refused"]) == 1
    assert doc["refused"][0].startswith(f"job {key[:16]}: ") and named in doc["refused"][0]
    with service.store.session() as s:
        assert s.query(Attestation).count() == 0
    assert not list((tmp_path / "out").rglob("*.intoto.jsonl"))


def test_a_claim_where_the_stored_report_shows_a_content_difference_is_refused(
    service: Service, tmp_path: Path
) -> None:
    work = attempted(tmp_path / "w", change=b"# changed\n")  # the published content differs; the claim says not
    key = finish(service, work, [work.vsa, work.claim], equivalence=LABEL)
    doc = service.publish()
    assert doc["signed"] == [] and doc["refused"][0].startswith(f"job {key[:16]}: ")
    assert "the stored comparison report shows a content difference" in doc["refused"][0]


@pytest.mark.parametrize(
    ("equivalence", "outcome", "statements_of", "named"),
    [
        pytest.param("no: member 'x': content differs", jobs.NOT_REPRODUCED, "vsa+claim",
                     "records no such equivalence", id="store-says-no"),
        pytest.param("", jobs.NOT_REPRODUCED, "vsa+claim", "records no such equivalence", id="store-says-nothing"),
        pytest.param(LABEL, jobs.NOT_REPRODUCED, "claim", "no FAILED summary of the same artifact",
                     id="claim-alone"),
        pytest.param(LABEL, jobs.NOT_REPRODUCED, "vsa+claim+claim", "two content-equivalence claims",
                     id="two-claims"),
        pytest.param(LABEL, jobs.REPRODUCED, "claim+vsa", "for a result that passed", id="beside-a-pass"),
    ],
)  # fmt: skip
def test_a_claim_the_store_does_not_back_is_refused(
    service: Service, tmp_path: Path, equivalence: str, outcome: str, statements_of: str, named: str
) -> None:
    work = attempted(tmp_path / "w")
    payloads = [work.vsa if part == "vsa" else work.claim for part in statements_of.split("+")]
    finish(service, work, payloads, outcome=outcome, equivalence=equivalence)
    doc = service.publish()
    assert doc["signed"] == [] and len(doc["refused"]) == 1 and named in doc["refused"][0], doc["refused"]


def test_a_stored_rebuilt_file_that_was_altered_is_refused(service: Service, tmp_path: Path) -> None:
    work = attempted(tmp_path / "w")
    finish(service, work, [work.vsa, work.claim])
    blob = service.paths.blobs.path(sha256(work.rebuilt))
    os.chmod(blob, 0o644)
    blob.write_bytes(blob.read_bytes() + b"\x00")
    doc = service.publish()
    assert doc["signed"] == [] and "is missing or altered" in doc["refused"][0]


# --- what is shown is text ---------------------------------------------------------------------------------


def test_a_label_with_markup_is_text_on_the_release_page_and_in_the_api(service: Service, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from rebuild.web.app import create_app

    work = attempted(tmp_path / "w")
    finish(service, work, [work.vsa], equivalence="no: member '<script>alert(1)</script>': content differs")
    with TestClient(create_app(service.store, service.paths.blobs)) as client:
        page = client.get("/releases/1")
        assert page.status_code == 200 and "<script>alert(1)" not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and 'class="equivalence"' in page.text
        attempt = client.get("/api/v1/attempts/1")
        assert attempt.status_code == 200
        assert attempt.json()["equivalence"] == "no: member '<script>alert(1)</script>': content differs"
