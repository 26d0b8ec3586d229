"""Where the service keeps things, and ``rebuild init``: the store, the blob directory, the service key.

The embedded default needs no server: ``service.db`` (SQLite, WAL), ``blobs/`` and ``keys/`` under the
user's data directory (``$REBUILD_DATA_DIR``, else ``$XDG_DATA_HOME/rebuild-verifier``, else
``~/.local/share/rebuild-verifier``). At scale, ``--db postgresql://...`` moves the store and nothing else
changes; workers on other machines share the blob directory (``--data-dir`` on a common mount). Only the
machine that signs (``publish``) needs the private key.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rebuild import __version__
from rebuild.attest import uris
from rebuild.attest.keys import PrivateKey, generate, load_private_key, load_public_key, write_keypair
from rebuild.errors import InputError
from rebuild.service.blobs import BlobStore
from rebuild.service.jobs import RetryPolicy
from rebuild.service.store import Store, make_engine, migrate, redact

VERIFIER_VERSION = f"rebuild-verifier {__version__}"
DEFAULT_LEASE_SECONDS = 60.0
CONTENT_EQUIVALENCE = "content_equivalence"  # the setting: "true" (the default) or "false"
SERVICE_ID = "service_id"  # made once by init: labels this service's sandbox containers on a shared engine


def service_id_of(settings: dict[str, str]) -> str:
    """Which service a container belongs to: its own id, or (a store made before the id) its key's id."""
    return settings.get(SERVICE_ID) or settings.get("keyid", "") or "unnamed"


def content_equivalence_of(settings: dict[str, str]) -> bool:
    """Whether workers decide content equivalence on a mismatch; on when the store predates the setting.

    Raises:
        InputError: the stored value is neither "true" nor "false".
    """
    value = settings.get(CONTENT_EQUIVALENCE, "true")
    if value not in ("true", "false"):
        raise InputError(
            f"the store's setting {CONTENT_EQUIVALENCE} is {value[:40]!r}, not true or false",
            "set it again with: rebuild init --content-equivalence (or --no-content-equivalence)",
        )
    return value == "true"


def default_data_dir() -> Path:
    if os.environ.get("REBUILD_DATA_DIR"):
        return Path(os.environ["REBUILD_DATA_DIR"])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "rebuild-verifier"


@dataclass(frozen=True)
class ServicePaths:
    data_dir: Path
    db: str

    @classmethod
    def of(cls, db: str | None, data_dir: Path | None) -> ServicePaths:
        data = data_dir or default_data_dir()
        return cls(data, db or f"sqlite:///{data / 'service.db'}")

    @property
    def blobs(self) -> BlobStore:
        return BlobStore(self.data_dir / "blobs")

    @property
    def private_key(self) -> Path:
        return self.data_dir / "keys" / "service.key"

    @property
    def public_key(self) -> Path:
        return self.data_dir / "keys" / "service.pub"

    def signer(self, key: Path | None = None) -> PrivateKey:
        """The service key (or ``key``). Raises: KeyLoadError: missing or unreadable."""
        return load_private_key(key or self.private_key)


def init_service(
    paths: ServicePaths,
    *,
    verifier_id: str = uris.VERIFIER_ID,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    policy: RetryPolicy | None = None,
    content_equivalence: bool | None = None,
) -> dict[str, Any]:
    """Make (or migrate) the store, the blob directory and the service key; idempotent.

    Settings are written on first init only; a second init migrates and keeps them, except content
    equivalence when ``content_equivalence`` is given (None: on at first init, kept afterwards).
    """
    engine = make_engine(paths.db)
    revision = migrate(engine)
    store = Store(paths.db, engine)
    settings = store.settings()
    paths.blobs.root.mkdir(parents=True, exist_ok=True)
    created_key = False
    if not paths.private_key.exists():
        paths.private_key.parent.mkdir(parents=True, exist_ok=True)
        key = generate("ed25519")
        write_keypair(key, paths.private_key.with_suffix(""))
        created_key = True
    keyid = load_public_key(paths.public_key).keyid
    if not settings:
        values = {
            "verifier_id": verifier_id,
            "lease_seconds": str(lease_seconds),
            **(policy or RetryPolicy()).as_settings(),
        }
        store.put_settings(values)
    if not settings or content_equivalence is not None:
        store.put_settings({CONTENT_EQUIVALENCE: "false" if content_equivalence is False else "true"})
    store.put_settings({"keyid": keyid})
    if SERVICE_ID not in settings:
        store.put_settings({SERVICE_ID: uuid.uuid4().hex})
    settings = store.settings()
    store.close()
    return {
        "db": redact(paths.db),
        "revision": revision,
        "data_dir": str(paths.data_dir),
        "blobs": str(paths.blobs.root),
        "public_key": str(paths.public_key),
        "keyid": keyid,
        "key_created": created_key,
        "settings": settings,
    }
