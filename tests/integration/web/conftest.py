"""A real `rebuild serve` over a store filled by a real run, and headless Chromium driven by Selenium.

The store: `rebuild init`, two releases of the package ``clock`` queued from their provenance and run by a
real worker process on the real Docker engine (version 1 reproduces; version 2's published archive has one
changed line, so it does not), then `rebuild publish` signs their summaries. The browser: Debian's
``/usr/bin/chromium`` through ``/usr/bin/chromedriver`` (``./setup.sh`` installs both), headless, with a
throwaway profile. Missing programs skip locally and fail under CI=true.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import _in_ci
from tests.integration.service.fastjobs import EPOCH, copied_release
from tests.integration.service.servers import free_port, wait_for
from tests.integration.test_pipeline import REBUILD, rebuild

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
STAMPS = {
    1: ("built at 10:00\n", "built at 10:00\n"),
    2: ("built at 10:00\n", "built at 11:00\n"),
}  # rebuilt, published


@dataclass(frozen=True)
class Served:
    url: str
    data: Path
    screenshots: Path


def _archive(stamp: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (("clock/README", b"a clock\n"), ("clock/stamp.txt", stamp.encode())):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), EPOCH, 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def clock_release(directory: Path, version: int, image_digest: str) -> Path:
    """Provenance of ``clock-V.tar`` (the `command` recipe copies it out of the source); the published archive
    of version 2 says another time in ``clock/stamp.txt`` than the one its source holds."""
    rebuilt, published = (_archive(stamp) for stamp in STAMPS[version])
    return copied_release(directory, f"clock-{version}.tar", rebuilt, image_digest, published=published,
                          stem=f"clock-{version}")  # fmt: skip


def _need(what: str) -> None:
    if _in_ci():
        pytest.fail(f"CI=true and {what} is required (./setup.sh installs it)")
    pytest.skip(f"{what} is not installed (./setup.sh installs it)")


def _ok(r: subprocess.CompletedProcess[str]) -> Any:
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def filled_data(tmp_path_factory: pytest.TempPathFactory, builder_image: str) -> Path:
    """A data directory whose store a real worker filled (see the module's docstring)."""
    root = tmp_path_factory.mktemp("web-run")
    data = root / "data"
    _ok(rebuild("init", "--data-dir", str(data), "--backoff", "1", "--json"))
    releases = [clock_release(root / f"clock-{v}", v, builder_image) for v in (1, 2)]
    _ok(rebuild("queue", "add", *map(str, releases), "--data-dir", str(data), "--json"))
    worked = _ok(rebuild("worker", "--burst", "--name", "w1", "--data-dir", str(data), "--json"))
    assert sorted(row["outcome"] for row in worked["jobs"]) == ["not reproduced"] * 2 + ["reproduced"]
    _ok(rebuild("publish", "--out", str(root / "published"), "--data-dir", str(data), "--json"))
    return data


@pytest.fixture(scope="module")
def served(filled_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`rebuild serve` on a free port of 127.0.0.1, until the module's tests are done."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path_factory.mktemp("serve") / "serve.log").open("wb")
    proc = subprocess.Popen([REBUILD, "serve", "--bind", f"127.0.0.1:{port}", "--data-dir", str(filled_data)],
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip

    def answers() -> bool:
        assert proc.poll() is None, f"rebuild serve exited {proc.returncode}"
        try:
            with urllib.request.urlopen(url + "/", timeout=5) as response:
                return int(response.status) == 200
        except (urllib.error.URLError, ConnectionError):
            return False

    try:
        wait_for(answers, "rebuild serve to answer")
        shots = Path(os.environ.get("REBUILD_SCREENSHOT_DIR") or tmp_path_factory.mktemp("screenshots"))
        shots.mkdir(parents=True, exist_ok=True)
        print(f"\nscreenshots of the dashboard: {shots}")
        yield Served(url, filled_data, shots)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture()
def browser(tmp_path: Path) -> Iterator[Any]:
    """Headless Chromium (Debian's) through its driver; no network but the test's server."""
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        _need("Debian's chromium and chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,1400",
                     "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions"):  # fmt: skip
        options.add_argument(argument)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium refuses to run as root with its sandbox
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "profile", ignore_errors=True)
