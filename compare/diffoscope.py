"""diffoscope reports, as a subprocess with a timeout, size limits and a normalised environment.

A missing diffoscope, a timeout or a crash gives a result with a note; it
never raises, because the explanation is optional and the verdict is not
decided here.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUPPORTED_JSON_VERSION = 1


@dataclass(frozen=True)
class DiffoscopeResult:
    status: str  # "different", "identical", "missing", "timeout", "crashed", "unsupported"
    note: str = ""
    reports: dict[str, str] = field(default_factory=dict)  # format -> path
    seconds: float = 0.0
    version: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "note": self.note,
            "reports": self.reports,
            "seconds": round(self.seconds, 3),
            "version": self.version,
        }


def find_diffoscope() -> str | None:
    return shutil.which("diffoscope")


def run_diffoscope(
    a: Path,
    b: Path,
    report_dir: Path,
    formats: tuple[str, ...] = ("json",),
    timeout_s: float = 600.0,
    max_report_bytes: int = 40 << 20,
    executable: str | None = None,
) -> DiffoscopeResult:
    """Write diffoscope's reports for ``a`` vs ``b`` into ``report_dir``."""
    exe = executable or find_diffoscope()
    if exe is None:
        return DiffoscopeResult("missing", "diffoscope is not installed; only the structural explanation is given")
    report_dir.mkdir(parents=True, exist_ok=True)
    reports = {fmt: str(report_dir / f"diffoscope.{'txt' if fmt == 'text' else fmt}") for fmt in formats}
    cmd = [exe, "--no-progress", "--max-report-size", str(max_report_bytes), "--exclude-directory-metadata=no"]
    for fmt, path in reports.items():
        cmd += [f"--{fmt}", path]
    cmd += ["--", str(a), str(b)]  # paths, never read as options
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "HOME": str(report_dir),
        "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
    }
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, start_new_session=True)
    try:
        _, stderr = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # diffoscope's helpers too
        proc.communicate()
        return DiffoscopeResult(
            "timeout",
            f"diffoscope did not finish within {timeout_s:g} s and was killed",
            seconds=time.monotonic() - started,
        )
    seconds = time.monotonic() - started
    tail = stderr.decode("utf-8", "replace").strip().splitlines()[-1:] if stderr else []
    if proc.returncode not in (0, 1):
        return DiffoscopeResult(
            "crashed", f"diffoscope exited {proc.returncode}: {tail[0] if tail else 'no message'}", seconds=seconds
        )
    if proc.returncode == 0:
        return DiffoscopeResult("identical", "diffoscope found no difference", {}, seconds)
    version = ""
    if "json" in reports:
        try:
            with open(reports["json"], "rb") as f:
                head = f.read(256).decode("utf-8", "replace")
        except OSError:
            head = ""
        match = re.search(r'"diffoscope-json-version":\s*(\d+)', head)
        version = match.group(1) if match else ""
        if version != str(SUPPORTED_JSON_VERSION):
            return DiffoscopeResult(
                "unsupported",
                f"diffoscope JSON version {version or 'missing'} is not "
                f"{SUPPORTED_JSON_VERSION}; its report is kept but not read",
                reports,
                seconds,
                version,
            )
    return DiffoscopeResult("different", "", reports, seconds, version)
