"""``pypi:NAME==VERSION``: rebuild a published pure-Python wheel from the sdist published beside it.

The release's files come from the index's simple API (PEP 691 JSON when the
index answers with it, else the PEP 503 HTML page; relative and absolute file
URLs), each with the sha256 the index gives. The sdist and wheel are fetched
and checked, then read: the backend and its exact version come from the
wheel's ``Generator:`` line, the rest of ``build-system.requires`` is pinned
to the newest versions uploaded before the wheel was, and pip resolves it all
to hash-pinned wheels for an offline build. What publishers did with
``SOURCE_DATE_EPOCH`` varies by backend, so the plan comes with a short,
ordered list of candidates; the pipeline stops at the first exact match.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin, urlparse

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, parse_sdist_filename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from compare.digest import sha256_file
from rebuild import pydist
from rebuild.adapters import ResolveContext, write_origin
from rebuild.errors import DigestMismatchError, FetchError, InputError, PlanError
from rebuild.fetch import USER_AGENT, Fetcher
from rebuild.plan import Environment, Inference, Input, Output, Source
from rebuild.resolution import Candidate, Resolution
from rebuild.untrusted import load_json
from rebuild.wheelhouse import resolve_wheelhouse

MAX_INDEX_PAGE = 64 << 20  # the largest simple-index pages (thousands of files) are a few MiB

RECIPE = "python-wheel"
SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"


@dataclass(frozen=True)
class IndexFile:
    filename: str
    url: str
    sha256: str
    upload_time: datetime | None
    yanked: bool

    @property
    def version(self) -> Version | None:
        try:
            if self.filename.endswith(".whl"):
                return parse_wheel_filename(self.filename)[1]
            return parse_sdist_filename(self.filename)[1]
        except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
            return None

    @property
    def is_sdist(self) -> bool:
        return self.filename.endswith((".tar.gz", ".zip"))

    @property
    def is_pure_wheel(self) -> bool:
        return self.filename.endswith("-none-any.whl")


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.links.append(dict(attrs))


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class SimpleIndex:
    """A PEP 503 / PEP 691 simple index (https://, http:// or file://)."""

    def __init__(self, url: str, timeout_s: float = 60.0) -> None:
        self.url = url.rstrip("/") + "/"
        self.timeout_s = timeout_s
        self._pages: dict[str, list[IndexFile]] = {}  # one read per project and run

    def project_url(self, name: str) -> str:
        return urljoin(self.url, pydist.normalize(name) + "/")

    def files(self, name: str) -> list[IndexFile]:
        """Raises: InputError: no such project (exit 2); FetchError: the index cannot be read (exit 3)."""
        url = self.project_url(name)
        if url not in self._pages:
            body, content_type, final_url = self._get(url, name)
            json_page = content_type.startswith(SIMPLE_JSON) or content_type.startswith("application/json")
            self._pages[url] = self._from_json(body, final_url) if json_page else self._from_html(body, final_url)
        return self._pages[url]

    def _get(self, url: str, name: str) -> tuple[bytes, str, str]:
        parsed = urlparse(url)
        if parsed.scheme == "file":
            path = Path(unquote(parsed.path))
            path = path / "index.html" if path.is_dir() else path
            try:
                with open(path, "rb") as f:
                    body = f.read(MAX_INDEX_PAGE + 1)
                if len(body) > MAX_INDEX_PAGE:
                    raise FetchError(f"the index page of {name} is larger than {MAX_INDEX_PAGE} bytes")
                return body, "text/html", url
            except OSError as e:
                raise InputError(f"no project {name!r} on the index {self.url}", f"{path}: {e.strerror}") from e
        request = urllib.request.Request(
            url, headers={"User-Agent": USER_AGENT, "Accept": f"{SIMPLE_JSON}, text/html;q=0.1"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                body = response.read(MAX_INDEX_PAGE + 1)
                if len(body) > MAX_INDEX_PAGE:
                    raise FetchError(f"the index page of {name} is larger than {MAX_INDEX_PAGE} bytes")
                return body, response.headers.get("Content-Type", ""), response.geturl()
        except urllib.error.HTTPError as e:
            if e.code == 404:
                raise InputError(f"no project {name!r} on the index {self.url}", "check the name") from e
            raise FetchError(f"the index {self.url} answered HTTP {e.code} for {name}") from e
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            raise FetchError(f"cannot reach the index {self.url}: {getattr(e, 'reason', e)}") from e

    @staticmethod
    def _from_json(body: bytes, base: str) -> list[IndexFile]:
        try:
            doc = load_json(body, f"the index's JSON page {base}")
        except InputError as e:
            raise FetchError(e.message) from e
        files = []
        for item in doc.get("files", []) if isinstance(doc, dict) else []:
            if not isinstance(item, dict) or not isinstance(item.get("url"), str):
                continue
            sha = (item.get("hashes") or {}).get("sha256", "")
            files.append(
                IndexFile(
                    str(item.get("filename", "")),
                    urljoin(base, item["url"]),
                    sha,
                    _time(item.get("upload-time")),
                    bool(item.get("yanked")),
                )
            )
        return files

    @staticmethod
    def _from_html(body: bytes, base: str) -> list[IndexFile]:
        parser = _Links()
        parser.feed(body.decode("utf-8", "replace"))
        files = []
        for attrs in parser.links:
            href = attrs.get("href")
            if not href:
                continue
            url, fragment = urldefrag(urljoin(base, href))
            algo, _, value = fragment.partition("=")
            files.append(
                IndexFile(
                    unquote(url.rsplit("/", 1)[-1]),
                    url,
                    value if algo == "sha256" else "",
                    _time(attrs.get("data-upload-time")),
                    "data-yanked" in attrs,
                )
            )
        return files


def parse_target(target: str) -> tuple[str, str | None]:
    spec = target.removeprefix("pypi:").strip()
    name, sep, version = spec.partition("==")
    if not name or (sep and not version) or any(c in name for c in "<>=!~ "):
        raise InputError(f"{target!r} is not pypi:NAME or pypi:NAME==VERSION")
    return name, version or None


def _choose_version(files: list[IndexFile], name: str, wanted: str | None) -> Version:
    versions = {f.version for f in files if f.version is not None}
    if not versions:
        raise InputError(f"project {name!r} has no files on the index")
    if wanted is None:
        final = [v for v in versions if not v.is_prerelease]
        return max(final or versions)
    try:
        version = Version(wanted)
    except InvalidVersion as e:
        raise InputError(f"{wanted!r} is not a valid version") from e
    if version not in versions:
        raise InputError(f"{name} has no release {wanted} on the index", f"the newest is {max(versions)}")
    return version


def _choose_files(files: list[IndexFile], name: str, version: Version) -> tuple[IndexFile, IndexFile, list[str]]:
    release = [f for f in files if f.version == version]
    notes: list[str] = []
    sdists = [f for f in release if f.is_sdist]
    wheels = [f for f in release if f.filename.endswith(".whl")]
    pure = sorted((f for f in wheels if f.is_pure_wheel), key=lambda f: ("-py3-none-any" not in f.filename, f.filename))
    if not pure:
        if wheels:
            tags = ", ".join(sorted({f.filename.split("-", 2)[-1].removesuffix(".whl") for f in wheels})[:4])
            raise PlanError(
                f"{name} {version} has only platform wheels ({tags}); this verifies pure-Python wheels",
                "compiled wheels depend on the compiler and platform of their build",
            )
        raise PlanError(f"{name} {version} publishes no wheel, so there is nothing to compare a rebuild with")
    tar_sdists = [f for f in sdists if f.filename.endswith(".tar.gz")]
    if not tar_sdists:
        if sdists:
            raise PlanError(f"{name} {version}'s only sdist is a .zip ({sdists[0].filename}); .tar.gz sdists are read")
        raise PlanError(
            f"{name} {version} has no sdist on the index, so there is no source to rebuild the wheel from",
            "a release needs its sdist published beside the wheel",
        )
    for f in (tar_sdists[0], pure[0]):
        if not f.sha256:
            raise PlanError(f"the index gives no sha256 for {f.filename}", "a file without a digest cannot be checked")
    if len(pure) > 1:
        notes.append(f"verifying {pure[0].filename}; also published: {', '.join(f.filename for f in pure[1:])}")
    return tar_sdists[0], pure[0], notes


def pin_build_requirements(
    requires: list[str],
    wheel: pydist.WheelFacts | None,
    uploaded: datetime | None,
    index: SimpleIndex | None,
    in_tree_backend: bool = False,
) -> tuple[list[str], list[Inference]]:
    """``requires`` with the backend pinned from the wheel's Generator and the rest as of the upload time.

    Without a published wheel nothing is pinned from a Generator; without an upload time (and index)
    the other requirements are left to pip's newest match, and that is recorded.
    """
    inferences = []
    pinned: dict[str, str] = {}
    wheel = wheel or pydist.WheelFacts("", "", "", ())
    generator_dist = pydist.GENERATOR_DISTRIBUTIONS.get(wheel.generator_name.lower())
    if in_tree_backend:
        inferences.append(
            Inference("backend", "in-tree", "build-system.backend-path: the sdist's own code is (part of) the backend")
        )
    if generator_dist and wheel.generator_version and "+" in wheel.generator_version:
        inferences.append(Inference("backend", wheel.generator, "a local version, not on the index: not pinned"))
    elif generator_dist and wheel.generator_version:
        pinned[pydist.normalize(generator_dist)] = wheel.generator_version
        inferences.append(
            Inference(
                generator_dist,
                wheel.generator_version,
                f"the published wheel's WHEEL file says 'Generator: {wheel.generator}'",
            )
        )
    elif wheel.generator:
        inferences.append(Inference("backend", "unpinned", f"Generator {wheel.generator!r} is not one this maps"))
    out = []
    names = set()
    for text in requires:
        try:
            req = Requirement(text)
        except InvalidRequirement as e:
            raise PlanError(f"the build-system.requires entry {text!r} is invalid: {e}") from e
        key = pydist.normalize(req.name)
        names.add(key)
        if key in pinned:
            out.append(pydist.pin(text, pinned[key]))
            continue
        version = _newest_before(index, req.name, req.specifier, uploaded) if uploaded and index else None
        if version:
            out.append(pydist.pin(text, version))
            inferences.append(
                Inference(req.name, version, f"newest release matching {text!r} uploaded before the wheel ({uploaded})")
            )
        else:
            out.append(text)
            inferences.append(Inference(req.name, text, "no release date to hold it to: pip's newest match"))
    for key, version in pinned.items():
        if key not in names:  # e.g. bdist_wheel's 'wheel' for a setuptools build
            out.append(f"{key}=={version}")
    return out, inferences


def _newest_before(index: SimpleIndex, name: str, spec: SpecifierSet, when: datetime) -> str | None:
    try:
        files = index.files(name)
    except (InputError, FetchError):
        return None
    candidates = [
        f.version
        for f in files
        if f.version is not None
        and f.filename.endswith(".whl")
        and not f.yanked
        and f.upload_time is not None
        and f.upload_time <= when
        and not f.version.is_prerelease
        and spec.contains(f.version)
    ]
    return str(max(candidates)) if candidates else None


def resolve_as_of(
    requires: list[str], when: datetime | None, index: SimpleIndex, index_url: str
) -> tuple[tuple[Input, ...], list[Inference]]:
    """The wheelhouse for ``requires``, every dependency held to what was released before ``when``.

    pip resolves; any package it picks that was uploaded after ``when`` is constrained to the newest
    release before it, and pip resolves again (a few rounds at most: new dependencies can appear).
    """
    constraints: dict[str, str] = {}
    inputs = resolve_wheelhouse(requires, index_url)
    for _ in range(4):
        if when is None:
            break
        changed = False
        for item in inputs:
            name, version = parse_wheel_filename(item.filename)[:2]
            key = pydist.normalize(str(name))
            newest = _newest_before(index, key, SpecifierSet(), when)
            if newest and version > Version(newest) and constraints.get(key) != newest:
                constraints[key] = newest
                changed = True
        if not changed:
            break
        inputs = resolve_wheelhouse(requires, index_url, [f"{k}<={v}" for k, v in sorted(constraints.items())])
    inferences = [
        Inference(name, f"<={version}", f"a dependency of the build held to its newest release before {when}")
        for name, version in sorted(constraints.items())
    ]
    return inputs, inferences


def epoch_candidates(
    sdist: pydist.SdistFacts, wheel: pydist.WheelFacts, zone: tuple[str, str] | None = None
) -> list[tuple[str, int | None, str]]:
    """The ordered (what it assumes, ``SOURCE_DATE_EPOCH``, ``TZ``) candidates to try."""
    wheel_time: list[tuple[str, int | None, str]] = []
    if wheel.entry_times:
        kind = "its" if len(wheel.entry_times) == 1 else f"the newest of its {len(wheel.entry_times)}"
        wheel_time = [(f"SOURCE_DATE_EPOCH = {kind} zip entry time(s)", wheel.entry_times[-1], "UTC")]
    pkg_info: list[tuple[str, int | None, str]] = []
    if sdist.pkg_info_mtime is not None:
        pkg_info = [("SOURCE_DATE_EPOCH = the sdist's PKG-INFO mtime", sdist.pkg_info_mtime, "UTC")]
    unset: list[tuple[str, int | None, str]] = [("SOURCE_DATE_EPOCH unset", None, "UTC")]
    if zone is not None:  # zip times are the files' mtimes in the publisher's local time
        unset.insert(0, (f"SOURCE_DATE_EPOCH unset, TZ of the publisher ({zone[1]})", None, zone[0]))
    ordered = (
        unset + wheel_time + pkg_info
        if pydist.is_fixed_time_backend(sdist.build_system.backend) or zone is not None
        else wheel_time + pkg_info + unset
    )
    seen: set[tuple[int | None, str]] = set()
    out = []
    for label, value, tz in ordered:
        if (value, tz) not in seen:
            seen.add((value, tz))
            out.append((label, value, tz))
    return out


def resolve_pypi(target: str, ctx: ResolveContext) -> Resolution:
    """Raises: InputError/PlanError (exit 2), FetchError (exit 3), DigestMismatchError (exit 1)."""
    name, wanted = parse_target(target)
    index = SimpleIndex(ctx.index_url)
    ctx.progress("resolve", f"reading {index.project_url(name)}")
    files = index.files(name)
    version = _choose_version(files, name, wanted)
    sdist, wheel, notes = _choose_files(files, name, version)
    fetcher = Fetcher(ctx.cache)
    ctx.progress("resolve", f"fetching {sdist.filename} and {wheel.filename}, checked against the index's sha256")
    sdist_path = fetcher.fetch(sdist.url, sdist.sha256, f"sdist {sdist.filename}")
    wheel_path = fetcher.fetch(wheel.url, wheel.sha256, f"wheel {wheel.filename}")
    for own in ctx.artifacts:  # the user's own copy must be the file the index publishes
        if sha256_file(own) != wheel.sha256:
            raise DigestMismatchError(
                f"--artifact {own.name} is not the {wheel.filename} the index publishes (sha256 differs)",
                f"the index's sha256 is {wheel.sha256}",
            )
    sdist_facts = pydist.read_sdist(sdist_path)
    wheel_facts = pydist.read_wheel(wheel_path)
    system = sdist_facts.build_system
    legacy = system.inference()
    inferences = [legacy] if legacy else []
    requires, pinned = pin_build_requirements(
        system.requirements, wheel_facts, wheel.upload_time, index, system.in_tree_backend
    )
    inferences += pinned
    ctx.progress("resolve", f"resolving build requirements {', '.join(requires)}")
    wheelhouse, held_back = resolve_as_of(requires, wheel.upload_time, index, ctx.index_url)
    inferences += held_back
    recipe = ctx.book.get(RECIPE)
    params = {"source_strip": "1"}
    if "-py2.py3-" in wheel.filename and system.backend.startswith("setuptools"):
        params["pip_args"] = "--config-settings=--build-option=--universal"
        inferences.append(Inference("bdist_wheel", "--universal", "the published wheel is tagged py2.py3"))
    umask = "0002" if wheel_facts.group_writable else "0022"
    if wheel_facts.group_writable:
        inferences.append(Inference("umask", umask, "the published wheel has group-writable members"))
    zone = pydist.infer_timezone(wheel_path, sdist_path)
    if zone is not None:
        inferences.append(
            Inference("TZ", zone[0], f"the wheel's zip times are the sdist's file mtimes in {zone[1]} local time")
        )
    candidates = []
    for label, epoch, tz in epoch_candidates(sdist_facts, wheel_facts, zone):
        env = Environment(source_date_epoch=epoch, tz=tz, umask=umask)
        plan = recipe.plan(
            Source(sdist.url, sdist.sha256, "sdist"),
            params,
            env,
            inputs=wheelhouse,
            outputs=(Output(wheel.filename, wheel.sha256),),
            inferences=(*inferences, Inference("SOURCE_DATE_EPOCH", str(epoch), label)),
        )
        candidates.append(Candidate(label, plan))
    summary = {
        "ecosystem": "pypi",
        "index": index.url,
        "project": name,
        "version": str(version),
        "sdist": {"filename": sdist.filename, "url": sdist.url, "sha256": sdist.sha256},
        "wheel": {
            "filename": wheel.filename,
            "url": wheel.url,
            "sha256": wheel.sha256,
            "uploaded": wheel.upload_time.isoformat() if wheel.upload_time else None,
        },
        "backend": system.backend,
        "generator": wheel_facts.generator,
        "build_requirements": requires,
    }
    origin = write_origin(ctx, "pypi-release.json", summary)
    return Resolution(
        target=target,
        candidates=candidates,
        published={wheel.filename: wheel_path},
        origin=origin,
        signature_status="not signed (files checked against the index's sha256)",
        summary=summary,
        notes=notes,
    )
