"""Builder images: identified by digest, built reproducibly from Debian packages.

A builder image is described by an ``ImageSpec`` (suite, mirror, variant,
package list, epoch). It is made with mmdebstrap (``SOURCE_DATE_EPOCH`` set, so
the root filesystem tarball is reproducible), wrapped in a docker-archive whose
config we write ourselves with fixed timestamps, and loaded with ``docker
load``. The image ID is the sha256 of that config, which names the layer by
the sha256 of the tarball: the same packages give the same image ID on every
machine. The installed package versions are recorded as a lock next to it.

mmdebstrap runs unprivileged where the machine allows it (``mmdebstrap_mode``):
as root, ``--mode=unshare`` as the ``rebuild-builder`` user setup.sh makes, so
the maintainer scripts of the image's packages never run as the host's root.
Both modes give byte-identical tarballs, so the image ID does not say which ran.

An image may instead come from a registry, pinned as ``name@sha256:...``.
A reference without a digest is refused.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pwd
import re
import shlex
import shutil
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from compare.digest import sha256_file
from rebuild import fields
from rebuild.errors import ImageError, PlanError

DEFAULT_MIRROR = "http://deb.debian.org/debian"
LABEL_SPEC = "dev.rebuild-verifier.image-spec"
LABEL_LOCK = "dev.rebuild-verifier.package-lock-sha256"
_IMAGE_ID = re.compile(r"^sha256:[0-9a-f]{64}$")
_PINNED_REF = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")
BUILDER_USER = "rebuild-builder"  # made by setup.sh, with subordinate ids; runs mmdebstrap when we are root
_SUBIDS_NEEDED = 65536  # a Debian root filesystem uses ids up to 65534 (nobody)
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_PROXY_ENV = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
_DEB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+~_%-]*\.deb$")  # as apt names files in its cache
_LOCK_IN_CHROOT = "/tmp/rebuild-package-lock"  # mmdebstrap empties /tmp before it packs the tarball


@dataclass(frozen=True)
class MmdebstrapMode:
    """How mmdebstrap runs here: its ``--mode``, the user it runs as, and why."""

    mode: Literal["unshare", "root"]
    user: str | None  # run through runuser as this user; None: as this process's own user
    reason: str

    def describe(self) -> str:
        if self.mode == "unshare":
            return f"unshare as {self.user or pwd.getpwuid(os.geteuid()).pw_name}"
        return f"root ({self.reason})"


def mmdebstrap_mode(
    user: str = BUILDER_USER, subuid: Path = Path("/etc/subuid"), subgid: Path = Path("/etc/subgid")
) -> MmdebstrapMode:
    """Pick the least privileged way this machine allows to run mmdebstrap.

    The maintainer scripts of a builder image's packages run while mmdebstrap
    makes it; ``--mode=root`` would run them as the host's root. As root we
    therefore run ``--mode=unshare`` as ``user``, in a user namespace mapped
    onto its subordinate ids, and fall back to ``--mode=root`` only when the
    machine does not allow that, with the reason (``rebuild doctor`` shows it).
    """
    if os.geteuid() != 0:
        return MmdebstrapMode("unshare", None, "not root: mmdebstrap maps this user's subordinate ids")
    why_not = _why_not_unshare_as(user, subuid, subgid)
    if why_not is None:
        return MmdebstrapMode("unshare", user, f"{user} can create user namespaces with its subordinate ids")
    return MmdebstrapMode("root", None, why_not)


def _why_not_unshare_as(user: str, subuid: Path, subgid: Path) -> str | None:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return f"no user {user}; run ./setup.sh to make it"
    for path in (subuid, subgid):
        if not _has_subids(path, user):
            return f"{user} has no range of {_SUBIDS_NEEDED} ids in {path}; run ./setup.sh"
    for tool, package in (("newuidmap", "uidmap"), ("newgidmap", "uidmap"), ("runuser", "util-linux")):
        if shutil.which(tool) is None:
            return f"{tool} not found; apt-get install {package}"
    # The mapping mmdebstrap makes: newuidmap/newgidmap onto the subordinate ids, as that user.
    probe = ["runuser", "-u", user, "--", "unshare", "--map-root-user", "--map-auto", "true"]
    try:
        proc = subprocess.run(probe, capture_output=True, text=True, timeout=30, check=False, cwd="/")
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"could not try a user namespace as {user}: {e}"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        return f"{user} cannot create a user namespace here: {last}"
    return None


def _has_subids(path: Path, user: str) -> bool:
    """Whether ``user``'s entry in ``path`` has enough ids; the first entry counts, as for mmdebstrap."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return False
    for line in lines:
        name, _, rest = line.partition(":")
        if name == user:
            start, _, count = rest.partition(":")
            return start.strip().isdigit() and count.strip().isdigit() and int(count) >= _SUBIDS_NEEDED
    return False


@dataclass(frozen=True)
class ImageSpec:
    """How to make a builder image from Debian packages."""

    name: str
    packages: tuple[str, ...]
    suite: str = "bookworm"
    mirror: str = DEFAULT_MIRROR
    variant: str = "minbase"
    epoch: int = 1700000000

    def __post_init__(self) -> None:
        # These values reach mmdebstrap's command line on the host: each is checked by its grammar.
        fields.check_str("image name", self.name, fields.NAME, "it must be lowercase letters, digits and -")
        fields.check_str("image suite", self.suite, fields.SUITE, "it must be a Debian suite name")
        fields.image_mirror(self.mirror)
        if self.variant not in fields.VARIANTS:
            raise fields.fail("image variant", self.variant, f"it must be one of {', '.join(fields.VARIANTS)}")
        if not isinstance(self.packages, tuple):
            raise fields.fail("image packages", self.packages, "they must be a list of package names")
        for package in self.packages:
            fields.debian_package(package)
        fields.epoch("image epoch", self.epoch)

    @classmethod
    def from_dict(cls, doc: Any) -> ImageSpec:
        """Read a spec a document recorded (as ``as_dict`` wrote it); every field is checked.

        Raises:
            PlanError: a field is missing or malformed.
        """
        if not isinstance(doc, Mapping):
            raise PlanError("builder image spec is not an object")
        missing = [k for k in ("name", "packages", "suite", "mirror", "variant", "epoch") if k not in doc]
        if missing:
            raise PlanError(f"builder image spec is missing {', '.join(missing)}")
        packages = doc["packages"]
        if not isinstance(packages, list):
            raise PlanError("builder image spec field 'packages' is not a list")
        return cls(doc["name"], tuple(packages), doc["suite"], doc["mirror"], doc["variant"], doc["epoch"])

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "suite": self.suite,
            "mirror": self.mirror,
            "variant": self.variant,
            "packages": sorted(self.packages),
            "epoch": self.epoch,
        }

    @property
    def key(self) -> str:
        canonical = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def tag(self) -> str:
        return f"rebuild-builder-{self.name}:{self.key}"


@dataclass(frozen=True)
class BuilderImage:
    """A builder image the engine holds: its reference and its digest."""

    reference: str  # a tag or name@sha256:..., for people
    digest: str  # the image ID (sha256:...) the engine runs
    lock: tuple[str, ...] = field(default=())  # package=version lines, when we built it
    built: bool = False  # True when this run built it


def require_pinned(reference: str) -> str:
    """Accept an image ID or a ``name@sha256:...`` reference; refuse anything mutable.

    Raises:
        PlanError: the reference has no digest.
    """
    if _IMAGE_ID.match(reference) or _PINNED_REF.match(reference):
        return reference
    raise PlanError(
        f"builder image {reference!r} is not pinned by digest",
        "give it as name@sha256:<digest> (or a local image ID sha256:<hex>)",
    )


class ImageBuilder:
    """Finds or makes builder images with a docker client and a cache directory."""

    def __init__(self, client: Any, cache_dir: Path, mode: MmdebstrapMode | None = None) -> None:
        self.client = client
        self.cache_dir = cache_dir
        self.mode = mode  # None: chosen by mmdebstrap_mode() when an image is built

    # --- lookup ---------------------------------------------------------

    def find_local(self, reference: str) -> Any | None:
        from docker.errors import ImageNotFound

        try:
            return self.client.images.get(reference)
        except ImageNotFound:
            return None

    def lock_path(self, spec: ImageSpec) -> Path:
        return self.cache_dir / "images" / f"{spec.name}-{spec.key}.lock"

    def read_lock(self, spec: ImageSpec) -> tuple[str, ...]:
        path = self.lock_path(spec)
        return tuple(path.read_text().splitlines()) if path.is_file() else ()

    # --- the three ways to have an image -------------------------------

    def ensure(self, spec: ImageSpec, expected_digest: str | None = None) -> BuilderImage:
        """Return the image for ``spec``, building it only when it is not present.

        With ``expected_digest``, an image with that ID is used if present;
        otherwise the spec is built and must come out with that very ID.

        Raises:
            ImageError: mmdebstrap or docker load failed, or the built image
                has another digest than expected.
        """
        if expected_digest is not None:
            found = self.find_local(expected_digest)
            if found is not None and _spec_label(found) == spec:  # never just any local image a document names
                return BuilderImage(spec.tag, found.id, self.read_lock(spec))
        with self._build_lock(spec):  # concurrent runs: one builds, the others wait and reuse
            found = self.find_local(spec.tag)
            if found is not None and expected_digest in (None, found.id):
                return BuilderImage(spec.tag, found.id, self.read_lock(spec))
            image = self.build(spec)
        if expected_digest is not None and image.digest != expected_digest:
            raise ImageError(
                f"builder image {spec.name} came out as {image.digest}, the plan says {expected_digest}",
                "the Debian archive now serves other package versions than the original build used; "
                f"compare the lock {self.lock_path(spec)} with the original, or point the image "
                "spec's mirror at a snapshot of the archive from the build date",
            )
        return image

    def ensure_all(
        self, specs: Sequence[ImageSpec], progress: Callable[[str, str], None] = lambda s, m: None
    ) -> list[BuilderImage]:
        """Each image, built only where it is not present (``rebuild image build``, the set-up)."""
        images = []
        for spec in specs:
            progress("image", f"{spec.tag}: checking (a first build takes about a minute)")
            images.append(self.ensure(spec))
        return images

    @contextmanager
    def _build_lock(self, spec: ImageSpec) -> Iterator[None]:
        path = self.cache_dir / "images" / f"{spec.name}-{spec.key}.build-lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def pull_pinned(self, reference: str) -> BuilderImage:
        """Use a registry image pinned by digest, pulling it if it is not local.

        Raises:
            PlanError: the reference is not pinned.
            ImageError: the pull failed or returned other content.
        """
        from docker.errors import DockerException

        require_pinned(reference)
        image = self.find_local(reference)
        if image is None:
            if _IMAGE_ID.match(reference):
                raise ImageError(f"builder image {reference} is not present in the local engine")
            try:
                image = self.client.images.pull(reference)
            except DockerException as e:
                raise ImageError(f"could not pull {reference}: {e}", "is the registry reachable?") from e
        if not _IMAGE_ID.match(reference) and reference not in image.attrs.get("RepoDigests", []):
            raise ImageError(f"the engine's image for {reference} does not carry that digest")
        return BuilderImage(reference, image.id)

    def build(self, spec: ImageSpec) -> BuilderImage:
        """Make the image from Debian packages and load it into the engine."""
        if shutil.which("mmdebstrap") is None:
            raise ImageError(
                "mmdebstrap is not installed; it is needed to build builder images",
                "run ./setup.sh, or apt-get install mmdebstrap",
            )
        debs = self.cache_dir / "debs" / spec.suite
        debs.mkdir(parents=True, exist_ok=True)
        self.lock_path(spec).parent.mkdir(parents=True, exist_ok=True)
        mode = self.mode or mmdebstrap_mode()
        with tempfile.TemporaryDirectory(prefix="rebuild-image-") as tmp:
            work = Path(tmp)
            rootfs = work / "rootfs.tar"
            lock = work / "lock"
            self._mmdebstrap(spec, mode, work, rootfs, lock, debs)
            lines = tuple(sorted(_output_file(lock).read_text().split()))
            lock_sha = hashlib.sha256("\n".join(lines).encode()).hexdigest()
            archive = work / "image.tar"
            config = _write_docker_archive(spec, rootfs, archive, lock_sha)
            image_id = "sha256:" + hashlib.sha256(config).hexdigest()
            try:
                with open(archive, "rb") as f:
                    self.client.images.load(f)
            except Exception as e:  # docker raises several unrelated types here
                raise ImageError(f"docker load of builder image {spec.name} failed: {e}") from e
        loaded = self.find_local(image_id)
        if loaded is None:
            raise ImageError(f"docker load did not produce image {image_id}")
        self.lock_path(spec).write_text("\n".join(lines) + "\n")
        return BuilderImage(spec.tag, image_id, lines, built=True)

    def _mmdebstrap(
        self, spec: ImageSpec, mode: MmdebstrapMode, work: Path, rootfs: Path, lock: Path, debs: Path
    ) -> None:
        """Run mmdebstrap in ``mode``, writing ``rootfs`` and ``lock`` into ``work``.

        Everything mmdebstrap touches on the host is in ``work``: the .debs it
        syncs in (links to the cache's, read-only to it), the ones it syncs
        out (copied into the cache afterwards, .deb files only), the lock, the
        tarball and its temporary chroot. When it runs as another user, that
        user owns ``work`` for the run, and root takes it back before reading.
        """
        debs_in, debs_out = work / "debs-in", work / "debs-out"
        debs_in.mkdir()
        debs_out.mkdir()
        _link_debs(debs, debs_in)
        if mode.user is not None:
            pw = pwd.getpwnam(mode.user)
            for path in (work, debs_out):
                os.chown(path, pw.pw_uid, pw.pw_gid)
        # The subordinate ids mmdebstrap maps (root inside, _apt, ...) must traverse work to the chroot.
        work.chmod(0o711)
        q = shlex.quote
        cmd = [
            "mmdebstrap",
            f"--mode={mode.mode}",
            f"--variant={spec.variant}",
            '--aptopt=Acquire::Languages "none"',
            "--dpkgopt=path-exclude=/usr/share/doc/*",
            "--dpkgopt=path-exclude=/usr/share/man/*",
            '--setup-hook=mkdir -p "$1"/var/cache/apt/archives/partial',
            f"--setup-hook=sync-in {q(str(debs_in))} /var/cache/apt/archives/",
            f"--customize-hook=sync-out /var/cache/apt/archives {q(str(debs_out))}",
            # Written inside the chroot (a hook in unshare mode cannot write to work) and downloaded
            # by mmdebstrap itself; its cleanup empties /tmp, and mtimes are clamped to the epoch.
            '--customize-hook=dpkg-query --admindir="$1"/var/lib/dpkg -W '
            f"-f '${{binary:Package}}=${{Version}}\\n' > \"$1\"{_LOCK_IN_CHROOT}",
            f"--customize-hook=download {_LOCK_IN_CHROOT} {q(str(lock))}",
        ]
        if spec.packages:
            cmd.append("--include=" + ",".join(sorted(spec.packages)))
        cmd += ["--", spec.suite, str(rootfs), spec.mirror]  # each checked by its grammar (ImageSpec)
        # Only this environment reaches mmdebstrap and, through it, the packages' maintainer scripts: the
        # caller's used to, and the image ID depended on it (py3compile's .pyc files, below).
        env = {
            "PATH": _PATH,
            **{k: v for k, v in os.environ.items() if k in _PROXY_ENV},
            "HOME": str(work),
            "TMPDIR": str(work),  # the chroot is made here, and removed with work even if mmdebstrap dies
            "SOURCE_DATE_EPOCH": str(spec.epoch),
            "LC_ALL": "C.UTF-8",
            # Without it, a Python run by one postinst writes timestamp .pyc files on import before
            # py3compile writes hash-based ones (as SOURCE_DATE_EPOCH asks): the published images
            # were built with it set, so it is part of their recipe.
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        if mode.user is not None:  # only the environment above reaches the unprivileged user
            cmd = ["runuser", "-u", mode.user, "--", "env", "-i", *(f"{k}={v}" for k, v in env.items()), *cmd]
        try:
            proc = subprocess.run(cmd, env=env, cwd=work, capture_output=True, text=True, check=False)
        finally:
            if mode.user is not None:  # the user can no longer swap what root is about to read
                for path in (work, debs_out):
                    os.chown(path, 0, 0)
        if proc.returncode != 0:
            tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
            raise ImageError(
                f"mmdebstrap ({mode.describe()}) failed for builder image {spec.name} (exit {proc.returncode}): {tail}",
                "check that the Debian mirror is reachable and the package names exist",
            )
        _output_file(rootfs)
        _import_debs(debs_out, debs)


def _link_debs(cache: Path, dest: Path) -> None:
    """Offer the cached .debs to mmdebstrap as hard links (copies across file systems)."""
    for entry in os.scandir(cache):
        if _DEB_NAME.match(entry.name) and entry.is_file(follow_symlinks=False):
            try:
                os.link(entry.path, dest / entry.name)
            except OSError:
                shutil.copyfile(entry.path, dest / entry.name, follow_symlinks=False)


def _import_debs(src: Path, cache: Path) -> None:
    """Keep the .debs mmdebstrap downloaded: regular files named as apt names them, nothing else."""
    for entry in os.scandir(src):
        target = cache / entry.name
        if not _DEB_NAME.match(entry.name) or not entry.is_file(follow_symlinks=False) or target.exists():
            continue
        fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as f, tempfile.NamedTemporaryFile(dir=cache, prefix=".in-", delete=False) as out:
            shutil.copyfileobj(f, out)
        os.chmod(out.name, 0o644)
        os.replace(out.name, target)


def _output_file(path: Path) -> Path:
    """Return ``path`` if mmdebstrap left it as a regular file (not a link a user could plant).

    Raises:
        ImageError: it is missing, a symlink or not a regular file.
    """
    try:
        regular = stat.S_ISREG(os.lstat(path).st_mode)
    except OSError as e:
        raise ImageError(f"mmdebstrap did not leave {path.name}: {e}") from e
    if not regular:
        raise ImageError(f"mmdebstrap left {path.name} as something else than a regular file")
    return path


def _spec_label(image: Any) -> ImageSpec | None:
    """The spec an image we built records in its label (None for any other image)."""
    labels = (image.attrs.get("Config") or {}).get("Labels") or {}
    try:
        return ImageSpec.from_dict(json.loads(labels.get(LABEL_SPEC, "")))
    except (ValueError, PlanError):
        return None


def _write_docker_archive(spec: ImageSpec, rootfs: Path, archive: Path, lock_sha: str) -> bytes:
    """Write a ``docker load`` archive with a fixed config; return the config bytes."""
    diff_id = "sha256:" + sha256_file(rootfs)
    created = datetime.fromtimestamp(spec.epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    config_doc = {
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["/bin/sh"],
            "Labels": {
                LABEL_SPEC: json.dumps(spec.as_dict(), sort_keys=True, separators=(",", ":")),
                LABEL_LOCK: lock_sha,
            },
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": f"mmdebstrap {spec.suite} ({spec.name})"}],
    }
    config = json.dumps(config_doc, sort_keys=True, separators=(",", ":")).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    layer_name = diff_id.removeprefix("sha256:") + "/layer.tar"
    manifest = [{"Config": config_name, "RepoTags": [spec.tag], "Layers": [layer_name]}]
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, config_name, config, spec.epoch)
        _add_bytes(tar, "manifest.json", json.dumps(manifest).encode(), spec.epoch)
        info = tar.gettarinfo(str(rootfs), arcname=layer_name)
        info.mtime, info.uid, info.gid, info.uname, info.gname = spec.epoch, 0, 0, "", ""
        with open(rootfs, "rb") as f:
            tar.addfile(info, f)
    return config


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mtime: int) -> None:
    import io

    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), mtime, 0o644
    tar.addfile(info, io.BytesIO(data))
