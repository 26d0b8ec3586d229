"""What every adapter may use: the cache, the recipes, the user's options (``ResolveContext``).

Shared by all adapters and importing none of them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rebuild.attest.keys import PublicKey
from rebuild.attest.sigstore import SigstorePolicy
from rebuild.fetch.cache import BlobCache
from rebuild.python.wheelhouse import DEFAULT_INDEX
from rebuild.recipes import RecipeBook

DEFAULT_DEBIAN_ARCHIVE = "http://deb.debian.org/debian"


@dataclass
class ResolveContext:
    """What adapters may use: the cache (they fetch what they must inspect), recipes, and the user's options."""

    cache: BlobCache
    book: RecipeBook
    work_dir: Path  # where an adapter writes the documents it makes (the run's output directory)
    artifacts: Sequence[Path] = ()
    provenance_keys: Sequence[PublicKey] = ()
    sigstore: SigstorePolicy = field(default_factory=SigstorePolicy)  # trust root, identity, trusted builders
    index_url: str = DEFAULT_INDEX
    git_mirrors: Mapping[str, str] = field(default_factory=dict)
    archive: str = DEFAULT_DEBIAN_ARCHIVE
    suite: str = "bookworm"
    allow_newer_build_deps: bool = False
    progress: Callable[[str, str], None] = lambda s, m: None


def write_origin(ctx: ResolveContext, name: str, summary: Mapping[str, Any]) -> Path:
    """Write what an adapter found (files and their digests) as the document the attestations reference."""
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    origin = ctx.work_dir / name
    origin.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return origin
