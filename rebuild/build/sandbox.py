"""The hardened container every build runs in.

This is where the container is hardened. A build gets: network mode
``none``; a read-only root filesystem; its inputs mounted read-only; one
writable output directory; tmpfs for scratch and the build path; all
capabilities dropped; ``no-new-privileges``; a non-root uid (never 0); pids, memory
and CPU limits; a wall-clock timeout; and an environment made only of what
the request says (the steps run under ``env -i``, so not even the image's
or Docker's variables leak in; the shell adds only its own ``PWD``). The container is removed on every path.
Outputs are collected as regular files only.

``rebuild check`` varies what a build may see (uid, host and domain name, the CPUs it may run on, extra
read-only mounts and tmpfs directories): each is a field of the request, checked here, and none of them
relaxes the hardening above.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import re
import shlex
import shutil
import stat
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from rebuild import fields
from rebuild.errors import BuildFailedError, BuildTimeoutError, PlanError, SandboxError

LABEL = "dev.rebuild-verifier.sandbox"
# A run may name itself (REBUILD_SESSION) so that its containers can be told from another run's on a shared
# engine: the test suite checks that none of its own are left behind.
SESSION_LABEL = "dev.rebuild-verifier.session"
SESSION_ENV = "REBUILD_SESSION"
OUTPUT_MOUNT = "/out"
MAX_LOG_BYTES = 16 << 20
HOST_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")  # RFC 1123
DOMAIN_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?){0,7}$")
CPUSET = re.compile(r"^[0-9]{1,4}(-[0-9]{1,4})?(,[0-9]{1,4}(-[0-9]{1,4})?){0,63}$")
MAX_ID = 65533  # below nobody/nogroup (65534)


@dataclass(frozen=True)
class Limits:
    """Resource limits; the defaults suit a laptop and this project's CI."""

    timeout_s: float = 1800.0
    memory_bytes: int = 4 << 30
    pids: int = 1024
    cpus: float = 2.0
    tmpfs_bytes: int = 4 << 30
    output_bytes: int = 4 << 30  # what the build may write to /out (checked on every poll and when collecting)


@dataclass(frozen=True)
class Mount:
    """A host path mounted read-only into the container."""

    source: Path
    target: str


@dataclass(frozen=True)
class BuildRequest:
    """Everything a build may see. Nothing else reaches the container."""

    image: str  # an image ID or name@sha256:..., never a mutable tag
    steps: tuple[str, ...]
    env: Mapping[str, str]
    inputs: tuple[Mount, ...] = ()
    build_path: str = "/build"
    umask: str = "0022"
    uid: int = 1000
    gid: int = 1000
    limits: Limits = field(default_factory=Limits)
    outputs: tuple[str, ...] = ()  # the declared outputs: only these are collected (all regular files if none)
    byproducts: tuple[str, ...] = ()  # glob patterns of other files the recipe keeps (dpkg's .buildinfo)
    hostname: str = "rebuild"
    domainname: str = ""  # the UTS domain name; empty: Docker's default
    cpuset: str = ""  # the CPUs the build may run on (what nproc sees); empty: every CPU
    scratch: tuple[str, ...] = ()  # more empty tmpfs directories, writable by the build (a HOME elsewhere)


@dataclass(frozen=True)
class BuildResult:
    exit_code: int
    log: str
    seconds: float
    outputs: tuple[Path, ...]  # regular files, relative to the output directory


class Sandbox(Protocol):
    """What the pipeline needs from a build backend (tests substitute fakes)."""

    def run(self, request: BuildRequest, out_dir: Path) -> BuildResult: ...


def step_script(request: BuildRequest) -> str:
    """The shell script the container runs: umask, then each step, stopping at the first failure.

    The steps are code (from the recipe); everything else in the script is data, checked and quoted.
    """
    q = shlex.quote
    lines = ["set -eu", f"umask {q(fields.umask(request.umask))}", f"cd -- {q(request.build_path)}", "unset OLDPWD"]
    for i, step in enumerate(request.steps, 1):
        lines.append(f"echo '>>> step {i}/{len(request.steps)}' >&2")
        lines.append(step)
    return "\n".join(lines) + "\n"


def container_command(request: BuildRequest) -> list[str]:
    env_args = [f"{k}={v}" for k, v in sorted(request.env.items())]
    return ["/usr/bin/env", "-i", *env_args, "/bin/sh", "-c", step_script(request)]


class DockerSandbox:
    """Runs a ``BuildRequest`` in a hardened Docker container."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def run(self, request: BuildRequest, out_dir: Path) -> BuildResult:
        """Run the steps; copy the regular files the build wrote under /out into ``out_dir``.

        Raises:
            BuildTimeoutError: the wall-clock limit passed; the container was killed.
            BuildFailedError: the steps exited non-zero or a limit killed them.
            SandboxError: the engine refused the container, or an output is unsafe.
        """
        from docker.errors import DockerException
        from docker.types import Mount as DockerMount

        _check_request(request)
        limits = request.limits
        with tempfile.TemporaryDirectory(prefix="rebuild-sandbox-") as tmp:
            writable = Path(tmp) / "out"
            writable.mkdir()
            os.chmod(writable, 0o777)  # the build's uid must be able to write here
            mounts = [
                DockerMount(m.target, str(m.source.resolve()), type="bind", read_only=True) for m in request.inputs
            ]
            mounts.append(DockerMount(OUTPUT_MOUNT, str(writable), type="bind", read_only=False))
            # scratch and the build path: tmpfs, writable by the build's uid, exec allowed. (Docker's
            # working_dir would reset the tmpfs mode to 0755, so the script cds there itself.)
            tmpfs_opts = f"rw,exec,nosuid,nodev,size={limits.tmpfs_bytes},mode=1777"
            tmpfs = {path: tmpfs_opts for path in ("/tmp", request.build_path, *request.scratch)}
            container = None
            name = f"rebuild-{uuid.uuid4().hex[:16]}"  # known before create: an interrupted create is found
            started = time.monotonic()
            try:
                container = self.client.containers.create(
                    request.image,
                    name=name,
                    command=container_command(request),
                    environment=dict(request.env),
                    user=f"{request.uid}:{request.gid}",
                    working_dir="/",
                    tmpfs=tmpfs,
                    hostname=request.hostname,
                    domainname=request.domainname or None,
                    network_mode="none",
                    read_only=True,
                    cap_drop=["ALL"],
                    security_opt=["no-new-privileges"],
                    pids_limit=limits.pids,
                    mem_limit=limits.memory_bytes,
                    memswap_limit=limits.memory_bytes,
                    nano_cpus=int(limits.cpus * 1e9),
                    cpuset_cpus=request.cpuset or None,
                    mounts=mounts,
                    init=True,
                    labels={LABEL: "1", SESSION_LABEL: os.environ.get(SESSION_ENV, "")},
                    log_config={"type": "json-file", "config": {}},
                )
                container.start()
                exit_code = _wait(container, limits.timeout_s, lambda: _check_output_size(writable, limits))
                seconds = time.monotonic() - started
                log = _logs(container)
                if exit_code is None:
                    raise BuildTimeoutError(
                        f"build timed out after {limits.timeout_s:g} s and was killed",
                        "raise the timeout if the build is just slow; the log is kept",
                        log=log,
                    )
                if exit_code != 0:
                    container.reload()
                    reason = _failure_reason(exit_code, container.attrs.get("State", {}), log)
                    raise BuildFailedError(f"build failed: {reason}", "see the build log", log=log)
                _check_output_size(writable, limits)
                outputs = select_outputs(collect_outputs(writable), request.outputs, request.byproducts)
                copied = []
                for rel in outputs:
                    dest = out_dir / rel
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(writable / rel, dest)
                    copied.append(rel)
                return BuildResult(0, log, seconds, tuple(copied))
            except DockerException as e:
                raise SandboxError(f"the Docker engine refused the build container: {e}") from e
            finally:
                if container is None:  # interrupted (or failed) while the engine was creating it
                    with contextlib.suppress(DockerException):
                        container = self.client.containers.get(name)
                if container is not None:
                    _remove(container)


def _check_request(request: BuildRequest) -> None:
    from rebuild.build.images import require_pinned

    require_pinned(request.image)
    try:  # the plan checked these already; the sandbox does not rely on it
        fields.umask(request.umask)
        fields.absolute_path("build path", request.build_path)
        for name, value in request.env.items():
            fields.check_str("environment variable name", name, fields.ENV_NAME, "POSIX names only")
            if "\0" in value:
                raise fields.fail(f"environment variable {name}", value, "no NUL")
        for path in request.scratch:
            fields.absolute_path("scratch directory", path)
    except PlanError as e:
        raise SandboxError(e.message) from e
    for what, value, pattern in (
        ("hostname", request.hostname, HOST_LABEL),
        ("domain name", request.domainname or "none", DOMAIN_NAME),
        ("cpuset", request.cpuset or "0", CPUSET),
    ):
        if not pattern.fullmatch(value):  # fullmatch: no trailing newline slips through
            raise SandboxError(f"sandbox {what} {value!r} is not allowed")
    for what, number in (("uid", request.uid), ("gid", request.gid)):
        if isinstance(number, bool) or not isinstance(number, int) or not 0 < number <= MAX_ID:
            raise SandboxError(f"sandbox {what} {number!r} is not allowed: an ordinary user, never root (1..{MAX_ID})")
    targets = [request.build_path, *request.scratch, *(m.target for m in request.inputs)]
    if len(set(targets)) != len(targets):
        raise SandboxError(f"two mounts share a container path: {sorted(targets)}")
    for path in targets:
        p = PurePosixPath(path)
        if not p.is_absolute() or ".." in p.parts or p == PurePosixPath("/"):
            raise SandboxError(f"container path {path!r} must be absolute, not / and without '..'")
    for m in request.inputs:
        if not m.source.exists():
            raise SandboxError(f"input {m.source} does not exist")


WAIT_POLL_S = 2.0  # the client returns to Python this often, so Ctrl-C and SIGTERM are acted on at once


def _wait(container: Any, timeout_s: float, check: Callable[[], None] = lambda: None) -> int | None:
    """The exit code, or None when the timeout passed (the container is then killed).

    ``check`` runs on every poll (the output size); what it raises stops the build.

    The wait is a series of short waits rather than one long blocking request: a signal that lands
    while the client blocks in the socket is then handled within seconds, whichever thread got it.
    """
    import requests

    deadline = time.monotonic() + timeout_s
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            container.kill()
            return None
        check()
        asked = time.monotonic()
        try:
            status = container.wait(timeout=max(1, min(WAIT_POLL_S, remaining)))
        except requests.exceptions.ReadTimeout:
            continue  # still running
        except requests.exceptions.ConnectionError as e:
            if time.monotonic() - asked >= 0.9:
                continue  # docker-py reports a read timeout on a unix socket as a ConnectionError too
            raise SandboxError(f"lost the Docker engine while the build ran: {e}") from e
        return int(status.get("StatusCode", -1))


def _logs(container: Any) -> str:
    data: bytes = container.logs(stdout=True, stderr=True)
    if len(data) > MAX_LOG_BYTES:
        data = data[-MAX_LOG_BYTES:]
    return data.decode("utf-8", "replace")


def _failure_reason(exit_code: int, state: Mapping[str, Any], log: str) -> str:
    if state.get("OOMKilled"):
        return f"killed by the memory limit (exit {exit_code})"
    if "fork: Resource temporarily unavailable" in log or "Cannot fork" in log:
        return f"hit the process limit (exit {exit_code})"
    if exit_code == 137:
        return "killed (exit 137, usually the memory limit)"
    last = [line for line in log.strip().splitlines() if line.strip()][-1:]
    return f"exit {exit_code}" + (f": {last[0][:200]}" if last else "")


def _remove(container: Any) -> None:
    from docker.errors import DockerException

    with contextlib.suppress(DockerException):  # already gone: nothing else to do on a cleanup path
        container.remove(force=True)


def collect_outputs(root: Path) -> tuple[Path, ...]:
    """Every regular file under ``root``, relative; anything else is refused.

    Symlinks (to files or directories), devices, sockets and fifos are
    rejected, never followed.

    Raises:
        SandboxError: an entry is not a regular file or directory.
    """
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            mode = path.lstat().st_mode
            rel = path.relative_to(root)
            if stat.S_ISLNK(mode):
                raise SandboxError(
                    f"build output {rel} is a symlink (to {os.readlink(path)}); outputs must be regular files",
                    "fix the recipe's steps to copy files, not link them",
                )
            if stat.S_ISDIR(mode):
                continue
            if not stat.S_ISREG(mode):
                raise SandboxError(f"build output {rel} is not a regular file")
            found.append(rel)
    return tuple(sorted(found))


def output_size(root: Path) -> int:
    """Bytes under ``root``: the larger of apparent and allocated size of each file (sparse files count whole)."""
    total = 0
    for dirpath, _dirnames, filenames in os.walk(root, followlinks=False):
        for name in filenames:
            with contextlib.suppress(OSError):  # removed while we looked: the build is still running
                st = os.lstat(os.path.join(dirpath, name))
                total += max(st.st_size, st.st_blocks * 512)
    return total


def _check_output_size(root: Path, limits: Limits) -> None:
    size = output_size(root)
    if size > limits.output_bytes:
        raise BuildFailedError(
            f"the build wrote {size} bytes to {OUTPUT_MOUNT}, more than the limit of {limits.output_bytes}",
            "raise --max-output-bytes if the release is really that large",
        )


def select_outputs(found: tuple[Path, ...], declared: tuple[str, ...], byproducts: tuple[str, ...]) -> tuple[Path, ...]:
    """The declared outputs and the recipe's byproducts among what the build wrote; everything if none declared."""
    if not declared:
        return found
    wanted = set(declared)
    return tuple(
        p for p in found if p.as_posix() in wanted or any(fnmatch.fnmatchcase(p.as_posix(), g) for g in byproducts)
    )


def safe_output_name(name: str) -> PurePosixPath:
    """Check a declared output name stays inside the output directory.

    Raises:
        SandboxError: the name is absolute or climbs out with ``..``.
    """
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts or not p.parts:
        raise SandboxError(f"output name {name!r} escapes the output directory")
    return p
