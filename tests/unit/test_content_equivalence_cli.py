"""`rebuild attestation verify --accept content-equivalent` and the batch column, through the CLI and the renderer."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from compare.equivalence import equivalence_streams
from rebuild.attest import dsse, uris
from rebuild.attest.envelopes import write_jsonl
from rebuild.attest.equivalence import content_equivalence_statement
from rebuild.attest.keys import load_private_key
from rebuild.attest.statements import Subject, verification_summary
from rebuild.batch import BatchRow
from rebuild.cli import app
from rebuild.render.text import TextRenderer

PUBLISHED, REBUILT = "ab" * 32, "cd" * 32
LABEL = "content-equivalent (metadata differs: timestamps)"
DEVIATIONS = uris.LEVEL_REPRODUCED_WITH_DEVIATIONS
runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def wheel(when: tuple[int, ...]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo("pkg/__init__.py", when), b"x = 1\n")
    return buf.getvalue()


@pytest.fixture()
def bundle(tmp_path: Path) -> tuple[Path, Path]:
    """A FAILED summary and a content-equivalence claim for PUBLISHED, signed by a fresh key, as verify writes."""
    code, output = invoke("key", "generate", "--out", str(tmp_path / "k"))
    assert code == 0, output
    signer = load_private_key(tmp_path / "k.key")
    e = equivalence_streams(io.BytesIO(wheel((2021, 1, 1, 0, 0, 0))), io.BytesIO(wheel((2026, 1, 1, 0, 0, 0))))
    subject = Subject("pkg-1.0-py3-none-any.whl", {"sha256": PUBLISHED})
    vsa = verification_summary(subject, False, subject.name, [])
    claim = content_equivalence_statement(subject, Subject(subject.name, {"sha256": REBUILT}), e)
    path = tmp_path / "pkg.rebuild-failed.intoto.jsonl"
    write_jsonl(path, [dsse.sign(vsa, [signer]), dsse.sign(claim, [signer])])
    return path, tmp_path / "k.pub"


def test_a_claim_is_not_accepted_by_default(bundle: tuple[Path, Path]) -> None:
    code, output = invoke("attestation", "verify", str(bundle[0]), "--key", str(bundle[1]), "--digest",
                          f"sha256:{PUBLISHED}")  # fmt: skip
    assert code == 1
    assert "a content-equivalence claim exists for this artifact" in output
    assert "--accept content-equivalent" in output


def test_accepted_it_passes_and_every_line_where_it_counts_says_so(bundle: tuple[Path, Path]) -> None:
    code, output = invoke("attestation", "verify", str(bundle[0]), "--key", str(bundle[1]), "--digest",
                          f"sha256:{PUBLISHED}", "--accept", "content-equivalent")  # fmt: skip
    assert code == 0, output
    lines = output.splitlines()
    assert lines[0].startswith("verified pkg-1.0-py3-none-any.whl") and lines[0].endswith(LABEL)
    assert any(line.startswith("  result    " + LABEL + ", NOT bit for bit") for line in lines)
    assert any(line.startswith("  verifier ") and line.endswith(LABEL) for line in lines)
    assert lines[-1].endswith(f"threshold 1 met, counting {LABEL}")
    assert "PASSED" not in output


def test_accepted_in_json_the_label_is_there(bundle: tuple[Path, Path]) -> None:
    code, output = invoke("attestation", "verify", str(bundle[0]), "--key", str(bundle[1]), "--digest",
                          f"sha256:{PUBLISHED}", "--accept", "content-equivalent", "--json")  # fmt: skip
    assert code == 0, output
    doc = json.loads(output)
    assert doc["passed"] is True and doc["message"] == f"verified, counting {LABEL}"
    assert [a["label"] for a in doc["accepted"]] == [LABEL]


def test_accepted_a_claim_about_another_artifact_still_fails(bundle: tuple[Path, Path]) -> None:
    code, output = invoke("attestation", "verify", str(bundle[0]), "--key", str(bundle[1]), "--digest",
                          f"sha256:{'ee' * 32}", "--accept", "content-equivalent")  # fmt: skip
    assert code == 1
    assert "subject digest mismatch" in output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--accept", "bit-for-bit-ish"], "only content-equivalent may be accepted"),
        (["--accept", "content-equivalent", "--from-feed", "/nonexistent"], "--accept is for an attestation FILE"),
        (["--accept", "content-equivalent", "--require-level", DEVIATIONS], "cannot be combined with --require-level"),
    ],
    ids=["unknown-claim", "with-feeds", "with-a-required-level"],
)
def test_bad_accept_exits_2(bundle: tuple[Path, Path], extra: list[str], message: str) -> None:
    args = ["attestation", "verify", "--key", str(bundle[1]), "--digest", f"sha256:{PUBLISHED}", *extra]
    if "--from-feed" not in extra:
        args.insert(2, str(bundle[0]))
    code, output = invoke(*args)
    assert code == 2
    assert message in output


def test_verify_takes_the_option() -> None:
    code, output = invoke("verify", "--help")
    assert code == 0
    assert "--content-equivalence" in output


def test_the_batch_table_has_a_content_equivalent_column() -> None:
    stream = io.StringIO()
    rows = [
        BatchRow("pypi:six==1.16.0", "not reproduced", "content identical, timestamps differ", 1, 9.1, 2,
                 equivalence=LABEL),
        BatchRow("pypi:pytz==2024.1", "not reproduced", "content of 2 members", 1, 9.0, 3,
                 equivalence="no: member 'pytz/zoneinfo/x': content differs"),
        BatchRow("pypi:tomli==2.0.1", "reproduced", "identical", 0, 3.0, 1),
    ]  # fmt: skip
    TextRenderer(out=Console(file=stream, width=400, force_terminal=False)).batch(rows)
    text = stream.getvalue()
    header = next(line for line in text.splitlines() if "classification / reason" in line)
    assert "content-equivalent" in header
    six = next(line for line in text.splitlines() if "six" in line)
    assert LABEL in six
    assert "no: member" in next(line for line in text.splitlines() if "pytz" in line)
    assert rows[0].as_dict()["equivalence"] == LABEL
