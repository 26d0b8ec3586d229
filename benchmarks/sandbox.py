"""Sandbox overhead over a plain `docker run`, and builder image build times (cold and warm)."""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from _common import figure, median_seconds

from rebuild.build.docker import connect
from rebuild.build.images import ImageBuilder
from rebuild.build.sandbox import BuildRequest, DockerSandbox
from rebuild.fetch.cache import default_cache_dir
from rebuild.recipes import RecipeBook


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--cold", action="store_true", help="remove and rebuild the builder image")
    args = parser.parse_args()
    client = connect()
    spec = RecipeBook().get("command").image
    builder = ImageBuilder(client, default_cache_dir())
    if args.cold:
        image = builder.ensure(spec)
        client.images.remove(image.digest, force=True)
        started = time.perf_counter()
        builder.ensure(spec)
        figure("builder image, cold build (debs cached)", f"{time.perf_counter() - started:.1f} s")
    warm = median_seconds(lambda: builder.ensure(spec), 3)
    figure("builder image, warm (present)", f"{warm * 1000:.0f} ms")
    image = builder.ensure(spec).digest

    sandbox = DockerSandbox(client)

    def sandboxed() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            sandbox.run(
                BuildRequest(image=image, steps=("echo hi > /out/x",), env={"PATH": "/usr/bin:/bin"}), Path(tmp)
            )

    def plain() -> None:
        subprocess.run(
            ["docker", "run", "--rm", image, "sh", "-c", "echo hi > /tmp/x"], check=True, capture_output=True
        )

    sandboxed(), plain()  # warm up
    s = median_seconds(sandboxed, args.runs)
    p = median_seconds(plain, args.runs)
    figure("trivial step, sandbox (median)", f"{s * 1000:.0f} ms")
    figure("trivial step, plain docker run (median)", f"{p * 1000:.0f} ms")
    figure("sandbox overhead", f"{(s - p) * 1000:+.0f} ms, ratio {s / p:.2f}")


if __name__ == "__main__":
    main()
