"""The `rebuild` command: parse options, call one library function, render.

One module per group of commands; each registers its commands on the root ``app`` (``common.py``), which
also holds the one place where errors become exit codes. Rendering lives in ``rebuild.render``.
"""

from __future__ import annotations

import signal
import sys
from typing import NoReturn

from rebuild.cli import attestation, check, compare, keys, machine, provenance, service, token, verify, web  # noqa: F401  (they register)
from rebuild.cli.common import app

__all__ = ["app", "main"]


def main() -> NoReturn:
    """Console entry point. SIGTERM unwinds like Ctrl-C, so containers are removed."""

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    app()
    sys.exit(0)
