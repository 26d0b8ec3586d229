"""Signing and verification keys: Ed25519 (default), ECDSA P-256; more for verifying.

Private keys are PKCS#8 PEM, written 0600, optionally encrypted with a
passphrase; public keys are SubjectPublicKeyInfo PEM. A key's id, used
everywhere, is the sha256 hex of its DER SubjectPublicKeyInfo.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from rebuild.errors import InputError, KeyLoadError

PASSPHRASE_ENV = "REBUILD_KEY_PASSPHRASE"
KeyType = Literal["ed25519", "ecdsa-p256"]
_CURVE_HASH: dict[str, hashes.HashAlgorithm] = {
    "secp256r1": hashes.SHA256(),
    "secp384r1": hashes.SHA384(),
    "secp521r1": hashes.SHA512(),
}


def key_id(public_key: PublicKeyTypes) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def describe(public_key: PublicKeyTypes) -> str:
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return f"ecdsa-{public_key.curve.name}"
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"rsa-{public_key.key_size}"
    return type(public_key).__name__


class Signer(Protocol):
    """What the attest stage needs to sign (tests and KMS backends substitute their own)."""

    keyid: str

    def sign(self, data: bytes) -> bytes: ...


@dataclass(frozen=True)
class PrivateKey:
    """A loaded private key; signs Ed25519 (raw) or ECDSA (DER, SHA-256)."""

    key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
    keyid: str

    def sign(self, data: bytes) -> bytes:
        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            return self.key.sign(data)
        return self.key.sign(data, ec.ECDSA(_CURVE_HASH[self.key.curve.name]))


@dataclass(frozen=True)
class PublicKey:
    """A trusted public key and its id."""

    key: PublicKeyTypes
    keyid: str
    source: str  # where it came from, for messages

    @property
    def algorithm(self) -> str:
        return describe(self.key)

    def supported(self) -> bool:
        if isinstance(self.key, ec.EllipticCurvePublicKey):
            return self.key.curve.name in _CURVE_HASH
        return isinstance(self.key, ed25519.Ed25519PublicKey | rsa.RSAPublicKey)

    def verify(self, signature: bytes, data: bytes) -> bool:
        """True when ``signature`` over ``data`` verifies; never raises for a bad signature.

        ECDSA signatures are accepted as DER or as raw r||s; RSA as PSS with SHA-256.
        """
        k = self.key
        try:
            if isinstance(k, ed25519.Ed25519PublicKey):
                k.verify(signature, data)
                return True
            if isinstance(k, ec.EllipticCurvePublicKey):
                algorithm = ec.ECDSA(_CURVE_HASH[k.curve.name])
                size = (k.curve.key_size + 7) // 8
                candidates = [signature]
                if len(signature) == 2 * size:
                    r = int.from_bytes(signature[:size], "big")
                    s = int.from_bytes(signature[size:], "big")
                    candidates.append(encode_dss_signature(r, s))
                for candidate in candidates:
                    try:
                        k.verify(candidate, data, algorithm)
                        return True
                    except (InvalidSignature, ValueError):
                        continue
                return False
            if isinstance(k, rsa.RSAPublicKey):
                pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
                k.verify(signature, data, pss, hashes.SHA256())
                return True
        except (InvalidSignature, ValueError, KeyError):
            return False
        return False


def generate(key_type: KeyType = "ed25519") -> PrivateKey:
    key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
    if key_type == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    elif key_type == "ecdsa-p256":
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        raise InputError(f"unsupported key type {key_type!r}", "use ed25519 or ecdsa-p256")
    return PrivateKey(key, key_id(key.public_key()))


def write_keypair(key: PrivateKey, prefix: Path, passphrase: bytes | None = None) -> tuple[Path, Path]:
    """Write ``PREFIX.key`` (0600, never overwritten) and ``PREFIX.pub``.

    Raises:
        InputError: either file exists already, or cannot be written.
    """
    private_path, public_path = Path(f"{prefix}.key"), Path(f"{prefix}.pub")
    for path in (private_path, public_path):
        if path.exists():
            raise InputError(f"{path} exists; refusing to overwrite a key", "choose another --out prefix")
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    pem = key.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    public_pem = key.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        public_path.write_bytes(public_pem)
    except OSError as e:
        raise InputError(f"cannot write key files at {prefix}: {e.strerror}") from e
    return private_path, public_path


def load_private_key(path: Path, passphrase: bytes | None = None) -> PrivateKey:
    """Raises: KeyLoadError: missing, malformed, encrypted without passphrase, or unsupported."""
    data = _read(path, "private key")
    if passphrase is None and os.environ.get(PASSPHRASE_ENV):
        passphrase = os.environ[PASSPHRASE_ENV].encode()
    try:
        key: PrivateKeyTypes = serialization.load_pem_private_key(data, password=passphrase)
    except TypeError as e:
        if b"ENCRYPTED" in data and passphrase is None:
            raise KeyLoadError(
                f"private key {path} is encrypted and no passphrase was given",
                f"set {PASSPHRASE_ENV} to its passphrase",
            ) from e
        raise KeyLoadError(f"private key {path}: {e}") from e
    except (ValueError, UnsupportedAlgorithm) as e:
        wrong = "incorrect passphrase, or " if passphrase else ""
        raise KeyLoadError(f"private key {path} could not be loaded ({wrong}not a PEM private key)") from e
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in _CURVE_HASH:
        return PrivateKey(key, key_id(key.public_key()))
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return PrivateKey(key, key_id(key.public_key()))
    raise KeyLoadError(
        f"private key {path} is of an unsupported type ({type(key).__name__})",
        "signing keys are Ed25519 or ECDSA P-256",
    )


def load_public_key(path: Path) -> PublicKey:
    """Raises: KeyLoadError: missing or not a PEM public key."""
    data = _read(path, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as e:
        raise KeyLoadError(f"public key {path} is not a PEM SubjectPublicKeyInfo key") from e
    return PublicKey(key, key_id(key), str(path))


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as e:
        raise KeyLoadError(f"{what} {path} does not exist") from e
    except OSError as e:
        raise KeyLoadError(f"{what} {path} cannot be read: {e.strerror}") from e
