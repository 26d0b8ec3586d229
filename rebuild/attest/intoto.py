"""in-toto link metadata and layouts, through the ``in-toto`` package: a rebuilder's link, a layout's check.

Networks of rebuilders (apt-transport-in-toto with rebuilderd) say "k independent rebuilders must
agree" as an in-toto layout whose ``rebuild`` step lists the rebuilders' keys and a threshold; each
rebuilder publishes a signed link for what it reproduced. This module writes such a link after a full
match and checks a layout over a directory of links. The models, signatures and the verification are
the ``in-toto`` package's (``in_toto.models``, ``in_toto.verifylib.in_toto_verify``); nothing here
re-implements them.

Decisions:
- Links are written as the traditional Metablock (``{"signed": LINK, "signatures": [...]}``, signed over
  the canonical JSON of ``signed``), the format apt-transport-in-toto and rebuilderd exchange and every
  in-toto implementation reads; ``in-toto-verify`` also accepts layouts (and links) as DSSE envelopes,
  and so does ``verify_layout``.
- The key id inside in-toto metadata and in a link's file name is in-toto's (securesystemslib's default:
  sha256 of the canonical JSON of keytype, scheme and keyval), not this project's (sha256 of the DER
  public key). ``rebuild key show`` prints both.
- Materials are the plan's source and inputs, named ``source`` and ``GROUP/FILE`` (where the build saw
  them under ``/inputs``), with the digests the plan pins; products are the rebuilt outputs by name with
  their sha256. Two rebuilders of the same plan therefore write the same materials and products, which a
  step with a threshold above 1 requires of its links.
- Before ``in_toto_verify`` runs, every file it will read (the links each step authorises, and the
  links of sublayouts) is read here first, through ``untrusted.load_json`` and in-toto's own model
  checks, and copied into a private directory that in-toto then reads: a hostile link is this project's
  one-line error (exit 2), never a traceback or an unbounded parse. The layout's signature and expiry
  are checked (by in-toto's functions) before any link is opened.
- Inspections are commands the layout owner signed; in-toto runs them on this machine, as
  ``in-toto-verify`` does, in a fresh directory that holds only the artifact, if one is given.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from in_toto import exceptions as in_toto_errors
from in_toto import verifylib
from in_toto.models.layout import SUBLAYOUT_LINK_DIR_FORMAT, Layout
from in_toto.models.link import FILENAME_FORMAT, Link
from in_toto.models.metadata import Metablock, Metadata
from securesystemslib.signer import Key, Signature, SSlibKey  # type: ignore[attr-defined]  # re-exported, no __all__
from securesystemslib.signer import Signer as SslibSigner  # type: ignore[attr-defined]

from rebuild import __version__
from rebuild.attest import keys
from rebuild.errors import EnvironmentFailure, InputError, KeyLoadError
from rebuild.plan import BuildPlan
from rebuild.untrusted import MAX_DOCUMENT_BYTES, load_json, printable

DEFAULT_STEP = "rebuild"
# A step name becomes part of a file name: one component, no leading dot. Spaces, '+' and '~' are allowed
# because rebuilderd names its steps "rebuild <package file name>".
_STEP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._+~@=-]{0,199}")
_KEYID = re.compile(r"[0-9a-f]{64}")
MAX_SUBLAYOUT_DEPTH = 3
MAX_NOTES = 50

# Why a verification failed, as the verdict names it (``LayoutVerdict.reason``).
REASONS = {
    "layout-signature": "the layout is not signed by every --layout-key (wrong key?)",
    "layout-expired": "the layout has expired",
    "too-few-links": "too few links",
    "links-disagree": "the links of one step disagree",
    "rule-failed": "an artifact rule failed",
    "inspection-failed": "an inspection command failed",
}
HINTS = {
    "layout-signature": "give the layout owner's public key: in-toto requires a valid signature by every --layout-key",
    "layout-expired": "ask the layout's owner for a new layout",
    "too-few-links": "each step needs THRESHOLD links by different keys the layout authorises, named STEP.KEYID8.link",
    "links-disagree": "the rebuilders reported different materials or products: they did not rebuild the same thing",
    "rule-failed": "the artifact, or what a link reports, breaks one of the layout's artifact rules",
    "inspection-failed": "an inspection the layout runs exited non-zero",
}


# --- keys ------------------------------------------------------------------------------------------


def in_toto_key(public_key: PublicKeyTypes) -> dict[str, Any]:
    """The public key as in-toto and securesystemslib write it in a layout: keyid, keytype, scheme, keyval.

    Ed25519, ECDSA P-256/P-384/P-521 and RSA (scheme ``rsassa-pss-sha256``) have an in-toto form.

    Raises:
        KeyLoadError: the key type has none (e.g. Ed448).
    """
    try:
        key = SSlibKey.from_crypto(public_key)
    except ValueError as e:
        raise KeyLoadError(
            f"a {keys.describe(public_key)} key has no in-toto form",
            "in-toto keys are Ed25519, ECDSA P-256/P-384/P-521 or RSA",
        ) from e
    doc: dict[str, Any] = key.to_dict()
    doc["keyid"] = key.keyid
    return doc


def _public_key_of(signer: keys.Signer) -> PublicKeyTypes:
    if isinstance(signer, keys.PrivateKey):
        return signer.key.public_key()
    raise KeyLoadError("in-toto links are signed only with a key file (its public half names the link)")


class _LinkSigner(SslibSigner):
    """This project's signer speaking securesystemslib's ``Signer`` interface, so in-toto's model signs."""

    def __init__(self, signer: keys.Signer, public: SSlibKey) -> None:
        self._signer = signer
        self._public = public

    @property
    def public_key(self) -> Key:
        return self._public

    @classmethod
    def from_priv_key_uri(cls, priv_key_uri: str, public_key: Key, secrets_handler: Any = None) -> _LinkSigner:
        raise NotImplementedError("made from a loaded key, never from a URI")

    def sign(self, payload: bytes) -> Signature:
        return Signature(self._public.keyid, self._signer.sign(payload).hex())


# --- links -----------------------------------------------------------------------------------------


def check_step_name(name: str) -> str:
    """Raises: InputError: not a name a link file can carry (one component, no leading dot, at most 200)."""
    if not isinstance(name, str) or not _STEP_NAME.fullmatch(name):
        raise InputError(
            f"in-toto step name {printable(repr(name), 200)} is not allowed",
            "use letters, digits, space and ._+~@=- (not first), as the layout names the step",
        )
    return name


def link_step(step: str, key: Path | None) -> str:
    """The step a ``rebuild verify --in-toto-link`` run will sign a link for, checked before anything is built.

    Raises:
        InputError: no signing key (a link is signed), or a step name that cannot name a link file.
    """
    if key is None:
        raise InputError("--in-toto-link needs --key: a link is signed", "pass --key with your rebuilder key")
    return check_step_name(step)


def link_materials(plan: BuildPlan) -> dict[str, dict[str, str]]:
    """What the rebuild consumed: the source and every input, with the digests the plan pins."""
    materials: dict[str, dict[str, str]] = {"source": {"sha256": plan.source.sha256}}
    if plan.source.commit:
        materials["source"]["gitCommit"] = plan.source.commit
    for item in plan.inputs:
        materials[f"{item.group}/{item.filename}"] = {"sha256": item.sha256}
    return materials


def rebuild_link(
    plan: BuildPlan, products: Mapping[str, str], step: str = DEFAULT_STEP, version: str = __version__
) -> Any:
    """The unsigned in-toto link of a rebuild: materials from the plan, products ``name -> sha256``.

    ``version`` is the rebuild-verifier that rebuilt (the service passes its worker's, from the provenance).
    """
    return Link(
        name=check_step_name(step),
        materials=link_materials(plan),
        products={name: {"sha256": sha256} for name, sha256 in sorted(products.items())},
        command=[],
        byproducts={},
        environment={
            "rebuild-verifier": version,
            "recipe": f"{plan.recipe.name}@{plan.recipe.version}",
            "recipeSha256": plan.recipe.sha256,
            "builderImage": plan.image.digest,
        },
    )


def link_file_name(step: str, in_toto_keyid: str) -> str:
    """``STEP.KEYID8.link``, where in-toto's loaders look for it. Only hex from the key id reaches the name.

    Raises:
        InputError: a step name or key id that could not be a file name.
    """
    if not _KEYID.fullmatch(in_toto_keyid):
        raise InputError(f"in-toto key id {printable(repr(in_toto_keyid), 100)} is not 64 hex digits")
    return str(FILENAME_FORMAT.format(step_name=check_step_name(step), keyid=in_toto_keyid))


def signed_rebuild_link(
    plan: BuildPlan, products: Mapping[str, str], signer: keys.Signer, step: str = DEFAULT_STEP,
    version: str = __version__,
) -> tuple[str, bytes]:
    """The rebuild's link signed with ``signer``: its file name ``STEP.KEYID8.link`` and its bytes.

    Call it on a full match only: it says every product was reproduced.

    Raises:
        KeyLoadError: the signer's key has no in-toto form, or its signature does not verify as in-toto's.
        InputError: a bad step name.
    """
    doc = in_toto_key(_public_key_of(signer))
    public = SSlibKey.from_dict(doc.pop("keyid"), doc)
    metablock = Metablock(signed=rebuild_link(plan, products, step, version))
    signature = metablock.create_signature(_LinkSigner(signer, public))
    try:  # what a verifier will do, once, here: a signer that signs another way fails now, not downstream
        public.verify_signature(signature, metablock.signed.signable_bytes)
    except Exception as e:
        raise KeyLoadError(f"the key {public.keyid[:16]} made a signature in-toto does not accept") from e
    return link_file_name(step, public.keyid), (repr(metablock) + "\n").encode()


def write_rebuild_link(
    plan: BuildPlan, products: Mapping[str, str], out_dir: Path, signer: keys.Signer, step: str = DEFAULT_STEP
) -> Path:
    """Sign the rebuild's link (``signed_rebuild_link``) and write ``STEP.KEYID8.link`` in ``out_dir``."""
    name, data = signed_rebuild_link(plan, products, signer, step)
    path = out_dir / name
    path.write_bytes(data)
    return path


# --- reading in-toto metadata ----------------------------------------------------------------------


def _read_capped(path: Path, what: str) -> bytes:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as e:
        raise InputError(f"{what} cannot be read: {e.strerror}") from e
    if len(data) > MAX_DOCUMENT_BYTES:
        raise InputError(f"{what} is larger than {MAX_DOCUMENT_BYTES} bytes")
    return data


def parse_metadata(data: bytes, what: str) -> Any:
    """in-toto metadata (a Metablock or a DSSE envelope) from untrusted bytes: this project's caps, then in-toto's
    model checks. Returns the ``Metadata``; ``get_payload()`` is a ``Link`` or ``Layout``.

    Raises:
        InputError: not strict JSON (``load_json``), not in-toto metadata, or a payload in-toto refuses.
    """
    doc = load_json(data, what)
    if not isinstance(doc, dict):
        raise InputError(f"{what} is not in-toto metadata (a JSON object with 'signed' or 'payload')")
    if "payload" in doc:  # a DSSE envelope: its payload is a document too, read under the same caps
        payload = doc.get("payload")
        try:
            raw = base64.b64decode(payload if isinstance(payload, str) else "", validate=True)
        except (binascii.Error, ValueError) as e:
            raise InputError(f"{what}: the envelope's payload is not base64") from e
        load_json(raw, f"{what} (its payload)")
    try:
        metadata = Metadata.from_dict(doc)
        metadata.get_payload()
    except Exception as e:  # in-toto's model raises FormatError, InvalidMetadata, KeyError, TypeError...
        raise InputError(f"{what} is not valid in-toto metadata: {_describe(e)}") from None
    return metadata


def load_layout(path: Path) -> Any:
    """Raises: InputError: unreadable, malformed, or a link where a layout belongs."""
    what = f"in-toto layout {path}"
    metadata = parse_metadata(_read_capped(path, what), what)
    if not isinstance(metadata.get_payload(), Layout):
        raise InputError(f"{what} holds a link, not a layout")
    return metadata


def _describe(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return printable(text.splitlines()[0] if text.strip() else type(e).__name__, 300)


# --- verifying a layout ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StepLinks:
    name: str
    threshold: int
    links: tuple[str, ...]  # the files found for it, by the names in-toto reads


@dataclass(frozen=True)
class LayoutVerdict:
    """What ``in_toto_verify`` said about a layout and its links, with the reason named when it failed."""

    passed: bool
    layout: str
    reason: str  # "" when passed; else a key of REASONS
    message: str
    layout_keys: tuple[str, ...]  # in-toto key ids
    steps: tuple[StepLinks, ...] = ()
    inspections: tuple[str, ...] = ()
    artifact: str | None = None
    expires: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def hint(self) -> str:
        """What to look at next: the notes (which link was not counted, and why), else the reason's hint."""
        return "; ".join(self.notes) or HINTS.get(self.reason, "")

    def as_dict(self) -> dict[str, Any]:
        return {
            "verified": self.passed,
            "result": "PASSED" if self.passed else "FAILED",
            "reason": self.reason or None,
            "message": self.message,
            "layout": self.layout,
            "layoutKeys": list(self.layout_keys),
            "expires": self.expires,
            "steps": [{"name": s.name, "threshold": s.threshold, "links": list(s.links)} for s in self.steps],
            "inspections": list(self.inspections),
            "artifact": self.artifact,
            "notes": list(self.notes),
        }


def verify_layout(
    layout_path: Path, layout_keys: Sequence[keys.PublicKey], links_dir: Path, artifact: Path | None = None
) -> LayoutVerdict:
    """in-toto's verification of a layout (signatures, expiry, thresholds, artifact rules, inspections).

    The layout must carry a valid signature by every key in ``layout_keys`` (in-toto's rule). Links are
    read from ``links_dir`` under the names in-toto uses (``STEP.KEYID8.link``). Inspections run in a
    fresh directory holding only a copy of ``artifact``; the process's working directory is changed while
    they run, so this is not for threads.

    Raises:
        InputError: no key, a key with no in-toto form, a malformed layout or link, a links path that is
            not a directory, an artifact that is not a regular file (exit 2).
        EnvironmentFailure: an inspection command could not be run or timed out (exit 3).
    """
    if not layout_keys:
        raise InputError("verifying a layout needs at least one --layout-key", "give the layout owner's public key")
    key_dict = {}
    for public in layout_keys:
        doc = in_toto_key(public.key)
        key_dict[doc["keyid"]] = doc
    if not links_dir.is_dir():
        raise InputError(f"links directory {links_dir} is not a directory")
    if artifact is not None and not artifact.is_file():
        raise InputError(f"artifact {artifact} is not a regular file")
    metadata = load_layout(layout_path)
    layout = metadata.get_payload()
    notes: list[str] = []

    def verdict(reason: str, message: str, steps: Sequence[StepLinks] = ()) -> LayoutVerdict:
        if reason in ("", "rule-failed", "inspection-failed"):  # the inspections ran (or there are none)
            if artifact is not None and not layout.inspect:
                notes.append("the layout has no inspection: the artifact was not compared with any link")
            if artifact is None and layout.inspect:
                notes.append("no --artifact: the inspections saw an empty directory")
        return LayoutVerdict(
            passed=not reason, layout=str(layout_path), reason=reason, message=message,
            layout_keys=tuple(key_dict), steps=tuple(steps),
            inspections=tuple(printable(i.name, 200) for i in layout.inspect),
            artifact=artifact.name if artifact else None, expires=printable(layout.expires, 100),
            notes=tuple(notes[:MAX_NOTES]),
        )  # fmt: skip

    with _in_toto_log(notes):
        try:  # in-toto's own checks, first, so no link of an unsigned or expired layout is even opened
            verifylib.verify_metadata_signatures(metadata, key_dict)
            verifylib.verify_layout_expiration(layout)
        except in_toto_errors.SignatureVerificationError as e:
            return verdict("layout-signature", f"{REASONS['layout-signature']}: {_describe(e)}")
        except in_toto_errors.LayoutExpiredError:
            return verdict("layout-expired", f"the layout expired at {printable(layout.expires, 100)}")
        except Exception as e:
            raise InputError(f"in-toto layout {layout_path} cannot be checked: {_describe(e)}") from None
        with tempfile.TemporaryDirectory(prefix="rebuild-in-toto-") as tmp:
            staged, work = Path(tmp, "links"), Path(tmp, "work")
            staged.mkdir()
            work.mkdir()
            steps = _stage_links(layout, links_dir, staged, notes, depth=0)
            if artifact is not None:
                shutil.copyfile(artifact, work / artifact.name)
            try:
                with contextlib.chdir(work):
                    verifylib.in_toto_verify(
                        metadata, key_dict, link_dir_path=str(staged), persist_inspection_links=False
                    )
            except (OSError, subprocess.SubprocessError) as e:
                raise EnvironmentFailure(f"an inspection of {layout_path} could not run: {_describe(e)}") from None
            except Exception as e:
                reason = _reason(e)
                if not reason:
                    raise InputError(f"in-toto could not verify {layout_path}: {_describe(e)}") from None
                return verdict(reason, f"{REASONS[reason]}: {_describe(e)}", steps)
    return verdict("", "the layout's steps, thresholds, rules and inspections all passed", steps)


def _reason(e: Exception) -> str:
    """Which of REASONS an in-toto exception is; "" for anything that is not a failed check."""
    if isinstance(e, in_toto_errors.LinkNotFoundError):
        return "too-few-links"
    if isinstance(e, in_toto_errors.ThresholdVerificationError):
        return "links-disagree" if "different artifacts" in str(e) else "too-few-links"
    if isinstance(e, in_toto_errors.RuleVerificationError):
        return "rule-failed"
    if isinstance(e, in_toto_errors.BadReturnValueError):
        return "inspection-failed"
    if isinstance(e, in_toto_errors.LayoutExpiredError):
        return "layout-expired"
    if isinstance(e, in_toto_errors.SignatureVerificationError):
        return "layout-signature"  # a sublayout's signature
    return ""  # FormatError, InvalidMetadata, or in-toto tripping over a document: not a check that failed


def _stage_links(layout: Any, source: Path, staged: Path, notes: list[str], depth: int) -> list[StepLinks]:
    """Copy the links ``layout`` authorises from ``source`` to ``staged``, each read and checked first.

    A sublayout's links (in ``STEP.KEYID8/``) are staged the same way, at most ``MAX_SUBLAYOUT_DEPTH`` deep.

    Raises:
        InputError: a step name that could not be a file name, or a malformed link.
    """
    found: list[StepLinks] = []
    for step in layout.steps:
        name = _layout_step_name(step.name)
        keyids = _authorised_keyids(layout, step)
        links = []
        for keyid in keyids:
            file_name = FILENAME_FORMAT.format(step_name=name, keyid=keyid)
            path = source / file_name
            try:
                mode = path.lstat().st_mode
            except OSError:
                continue  # authorised is not required: in-toto counts what is there
            if not stat.S_ISREG(mode):
                notes.append(f"{file_name} is not a regular file (a symlink?): not read")
                continue
            data = _read_capped(path, f"in-toto link {path}")
            metadata = parse_metadata(data, f"in-toto link {path}")
            (staged / file_name).write_bytes(data)
            links.append(file_name)
            if isinstance(metadata.get_payload(), Layout):
                sub = SUBLAYOUT_LINK_DIR_FORMAT.format(name=name, keyid=keyid)
                if depth >= MAX_SUBLAYOUT_DEPTH:
                    raise InputError(f"in-toto sublayouts nest deeper than {MAX_SUBLAYOUT_DEPTH} at {path}")
                (staged / sub).mkdir(exist_ok=True)
                if (source / sub).is_dir() and not (source / sub).is_symlink():
                    _stage_links(metadata.get_payload(), source / sub, staged / sub, notes, depth + 1)
        _note_unauthorised(source, name, keyids, notes)
        found.append(StepLinks(printable(name, 200), int(step.threshold), tuple(sorted(links))))
    return found


def _layout_step_name(name: object) -> str:
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or "\0" in name or name in (".", ".."):
        raise InputError(f"the layout has a step named {printable(repr(name), 200)}, which cannot name a link file")
    return name


def _authorised_keyids(layout: Any, step: Any) -> list[str]:
    """The key ids in-toto looks for a link of ``step`` under: each authorised key and its subkeys."""
    keyids: list[str] = []
    for keyid in step.pubkeys:
        key = layout.keys.get(keyid) if isinstance(layout.keys, dict) else None
        subkeys = key.get("subkeys") if isinstance(key, dict) else None
        for candidate in [keyid, *(subkeys if isinstance(subkeys, dict) else {})]:
            if not isinstance(candidate, str) or not re.fullmatch(r"[0-9a-fA-F]{8,}", candidate):
                raise InputError(f"the layout authorises a key id {printable(repr(candidate), 100)} that is not hex")
            keyids.append(candidate)
    return keyids


def _note_unauthorised(source: Path, step: str, keyids: Sequence[str], notes: list[str]) -> None:
    """Name the files that look like links of ``step`` but carry a key the layout does not authorise."""
    prefixes = {k[:8] for k in keyids}
    try:
        with os.scandir(source) as it:
            names = [entry.name for _, entry in zip(range(10_000), it, strict=False)]  # a bounded look
    except OSError:
        return
    for name in names:
        if name.startswith(f"{step}.") and name.endswith(".link"):
            middle = name[len(step) + 1 : -len(".link")]
            if middle not in prefixes and re.fullmatch(r"[0-9a-fA-F]{8}", middle):
                notes.append(
                    f"{printable(name, 300)} is named for key {middle}, which the layout does not authorise for "
                    f"step {printable(repr(step), 200)}: not counted"
                )


class _Collect(logging.Handler):
    def __init__(self, notes: list[str]) -> None:
        super().__init__(logging.INFO)
        self.notes = notes

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno >= logging.WARNING or message.startswith("Skipping link"):
            self.notes.append("in-toto: " + printable(message, 500))


@contextlib.contextmanager
def _in_toto_log(notes: list[str]) -> Iterator[None]:
    """in-toto logs to stderr by itself, with text from the links; collect it as notes instead (escaped)."""
    logger = logging.getLogger("in_toto")
    saved = logger.handlers[:], logger.level, logger.propagate
    logger.handlers = [_Collect(notes)]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.handlers, level, logger.propagate = saved
        logger.setLevel(level)


__all__ = [
    "DEFAULT_STEP",
    "HINTS",
    "REASONS",
    "LayoutVerdict",
    "StepLinks",
    "check_step_name",
    "in_toto_key",
    "link_file_name",
    "link_materials",
    "link_step",
    "load_layout",
    "parse_metadata",
    "rebuild_link",
    "signed_rebuild_link",
    "verify_layout",
    "write_rebuild_link",
]
