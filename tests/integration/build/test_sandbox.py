"""The sandbox against the real engine: what a build can and cannot do."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from rebuild.build.sandbox import LABEL, SESSION_ENV, SESSION_LABEL, BuildRequest, DockerSandbox, Limits, Mount
from rebuild.errors import BuildFailedError, BuildTimeoutError, SandboxError

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("no_leftover_containers")]

ENV = {"PATH": "/usr/bin:/bin", "SOURCE_DATE_EPOCH": "1700000000", "LC_ALL": "C.UTF-8", "TZ": "UTC"}


def run(client: Any, image: str, steps: list[str], tmp: Path, **kw: Any) -> tuple[str, Path]:
    out = tmp / "out"
    out.mkdir(exist_ok=True)
    result = DockerSandbox(client).run(BuildRequest(image=image, steps=tuple(steps), env=ENV, **kw), out)
    return result.log, out


def test_isolation_properties(docker_client: Any, builder_image: str, tmp_path: Path) -> None:
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "hello.txt").write_text("hi\n")
    probe = textwrap.dedent(
        """
        python3 - <<'PY'
        import os, socket
        try:
            socket.create_connection(("1.1.1.1", 53), timeout=3)
            print("NET=open")
        except OSError as e:
            print("NET=closed", type(e).__name__)
        for path in ("/usr/probe", "/inputs/in/probe"):
            try:
                open(path, "w").write("x")
                print("WRITE", path, "ok")
            except OSError:
                print("WRITE", path, "denied")
        print("UID", os.getuid(), "GID", os.getgid())
        cap = [l for l in open("/proc/self/status") if l.startswith("CapEff")][0].split()[1]
        print("CAPEFF", cap)
        print("CWD", os.getcwd())
        print("ENV", sorted(os.environ.items()))
        nnp = [l for l in open("/proc/self/status") if l.startswith("NoNewPrivs")][0].split()[1]
        print("NONEWPRIVS", nnp)
        PY
        """
    )
    log, _ = run(
        docker_client, builder_image, [probe, "echo out > /out/o.txt"], tmp_path, inputs=(Mount(inp, "/inputs/in"),)
    )
    assert "NET=closed" in log
    assert "WRITE /usr/probe denied" in log
    assert "WRITE /inputs/in/probe denied" in log
    assert "UID 1000 GID 1000" in log
    assert "CAPEFF 0000000000000000" in log
    assert "CWD /build" in log
    assert "NONEWPRIVS 1" in log
    env_line = next(line for line in log.splitlines() if line.startswith("ENV "))
    # exactly the given variables, plus the PWD that /bin/sh itself sets
    assert env_line == f"ENV {sorted({**ENV, 'PWD': '/build'}.items())}"


def test_outputs_are_collected_and_build_path_is_fixed(docker_client: Any, builder_image: str, tmp_path: Path) -> None:
    _log, out = run(
        docker_client,
        builder_image,
        ["mkdir -p /out/sub", "pwd > /out/sub/where", "echo a > /out/a"],
        tmp_path,
        build_path="/src/project",
    )
    assert (out / "sub" / "where").read_text() == "/src/project\n"
    assert (out / "a").read_text() == "a\n"


@pytest.mark.parametrize(
    "step, message",
    [
        ("ln -s /etc/passwd /out/passwd", "is a symlink"),
        ("mkdir /out/d && ln -s / /out/d/up", "is a symlink"),
        ("mkfifo /out/fifo", "not a regular file"),
    ],
    ids=["symlink-to-passwd", "symlink-dir-escape", "fifo"],
)
def test_unsafe_outputs_are_rejected(
    docker_client: Any, builder_image: str, tmp_path: Path, step: str, message: str
) -> None:
    with pytest.raises(SandboxError, match=message):
        run(docker_client, builder_image, [step], tmp_path)
    assert not (tmp_path / "out" / "passwd").exists()


def test_failed_step_is_a_build_failure_with_log(docker_client: Any, builder_image: str, tmp_path: Path) -> None:
    with pytest.raises(BuildFailedError, match="exit 3") as info:
        run(docker_client, builder_image, ["echo before", "exit 3", "echo never"], tmp_path)
    assert "before" in info.value.log and "never" not in info.value.log


def test_timeout_kills_and_removes(docker_client: Any, builder_image: str, tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(BuildTimeoutError, match="timed out after 3 s"):
        run(docker_client, builder_image, ["echo started", "sleep 300"], tmp_path, limits=Limits(timeout_s=3))
    assert time.monotonic() - started < 30


@pytest.mark.slow
def test_fork_bomb_is_contained(docker_client: Any, builder_image: str, tmp_path: Path) -> None:
    started = time.monotonic()
    bomb = "f() { f | f & }; f; sleep 5; exit 1"
    with pytest.raises((BuildFailedError, BuildTimeoutError)):
        run(docker_client, builder_image, [bomb], tmp_path, limits=Limits(timeout_s=20, pids=64))
    assert time.monotonic() - started < 60
    # the host still forks fine
    assert subprocess.run(["true"], check=False).returncode == 0


@pytest.mark.slow
def test_memory_hog_is_killed(docker_client: Any, builder_image: str, tmp_path: Path) -> None:
    hog = "python3 -c 'x = bytearray(1 << 30); y = bytearray(1 << 30)'"
    with pytest.raises(BuildFailedError, match="memory limit"):
        run(docker_client, builder_image, [hog], tmp_path, limits=Limits(memory_bytes=256 << 20, timeout_s=60))


def test_unpinned_image_is_refused(docker_client: Any, tmp_path: Path) -> None:
    from rebuild.errors import PlanError

    with pytest.raises(PlanError, match="not pinned by digest"):
        run(docker_client, "debian:bookworm", ["true"], tmp_path)


def test_interrupted_process_leaves_no_container(docker_client: Any, builder_image: str, tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import signal
        import sys
        from pathlib import Path
        from rebuild.build.docker import connect
        # a shell runs background jobs with SIGINT ignored, and children inherit that: this test is about
        # what the sandbox does on Ctrl-C, so it asks for Python's usual KeyboardInterrupt
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from rebuild.build.sandbox import BuildRequest, DockerSandbox
        out = Path({str(tmp_path)!r}) / "out"; out.mkdir()
        req = BuildRequest(image={builder_image!r}, steps=("echo running", "sleep 300"), env={{"PATH": "/bin"}})
        print("starting", flush=True)
        try:
            DockerSandbox(connect()).run(req, out)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(130)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "starting"
    for _ in range(100):  # wait until the container runs (created is not enough: start is still in flight)
        mine = f"{SESSION_LABEL}={os.environ[SESSION_ENV]}"  # the child inherits this run's session label
        if docker_client.containers.list(filters={"label": [LABEL, mine], "status": "running"}):
            time.sleep(0.5)  # and the client is waiting on it
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("the build container never started")
    os.kill(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    assert proc.stdout.read().strip() == "interrupted"


@pytest.mark.parametrize(
    "step",
    ["head -c 200000000 /dev/zero > /out/big; sleep 30", "truncate -s 10G /out/sparse"],
    ids=["large-file", "sparse-file"],
)
def test_a_build_cannot_fill_the_host_through_its_output_directory(
    docker_client: Any, builder_image: str, tmp_path: Path, step: str
) -> None:
    """The output mount is bounded: checked on every poll of the running build and again when collecting."""
    with pytest.raises(BuildFailedError, match="more than the limit of 67108864"):
        run(docker_client, builder_image, [step], tmp_path, limits=Limits(output_bytes=64 << 20))
    assert not any((tmp_path / "out").iterdir())  # nothing was copied to the host's output directory


def test_only_declared_outputs_and_byproducts_are_collected(
    docker_client: Any, builder_image: str, tmp_path: Path
) -> None:
    steps = ["echo a > /out/release.tar", "echo b > /out/undeclared.tar", "echo c > /out/x.buildinfo"]
    _, out = run(docker_client, builder_image, steps, tmp_path, outputs=("release.tar",), byproducts=("*.buildinfo",))
    assert sorted(p.name for p in out.iterdir()) == ["release.tar", "x.buildinfo"]
