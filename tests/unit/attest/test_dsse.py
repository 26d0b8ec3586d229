"""DSSE: spec vectors, interoperability with securesystemslib, and properties of PAE."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from hypothesis import given, settings
from hypothesis import strategies as st

from rebuild.attest import dsse
from rebuild.attest.envelopes import read_envelopes
from rebuild.attest.keys import PrivateKey, PublicKey, key_id, load_public_key
from rebuild.errors import InputError
from tests.conftest import VECTORS

SEED = bytes(range(32))


def fixed_key(seed: bytes = SEED) -> PrivateKey:
    k = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    return PrivateKey(k, key_id(k.public_key()))


def public(k: PrivateKey) -> PublicKey:
    return PublicKey(k.key.public_key(), k.keyid, "test")


def test_pae_matches_the_spec_example() -> None:
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_spec_vector_verifies_raw_r_s_ecdsa() -> None:
    key = load_public_key(VECTORS / "dsse" / "spec-vector.pub.pem")
    (loaded,) = read_envelopes(VECTORS / "dsse" / "spec-vector.envelope.json")
    verified = dsse.verify(loaded.envelope, [key])
    assert verified.payload == b"hello world" and [k.keyid for k in verified.signers] == [key.keyid]


def test_slsa_verifier_vsa_vector_verifies() -> None:
    key = load_public_key(VECTORS / "slsa-verifier/vsa/gce/v1/vsa_signing_public_key.pem")
    (loaded,) = read_envelopes(VECTORS / "slsa-verifier/vsa/gce/v1/gke-gce-pre.bcid-vsa.jsonl")
    verified = dsse.verify(loaded.envelope, [key])
    assert verified.signers
    assert json.loads(verified.payload)["predicate"]["verificationResult"] == "PASSED"


VECTOR_CASES = [
    ("dsse/spec-vector.envelope.json", "dsse/spec-vector.pub.pem"),
    ("slsa-verifier/vsa/gce/v1/gke-gce-pre.bcid-vsa.jsonl", "slsa-verifier/vsa/gce/v1/vsa_signing_public_key.pem"),
]


@pytest.mark.parametrize("envelope_file, key_file", VECTOR_CASES, ids=["dsse-spec", "slsa-vsa"])
@pytest.mark.parametrize("part", ["payload", "sig", "payloadType"])
def test_one_byte_change_to_a_vector_fails(envelope_file: str, key_file: str, part: str, tmp_path: Path) -> None:
    key = load_public_key(VECTORS / key_file)
    doc = json.loads(
        (VECTORS / envelope_file).read_text().splitlines()[0]
        if envelope_file.endswith("l")
        else (VECTORS / envelope_file).read_text()
    )
    if part == "payloadType":
        doc["payloadType"] = doc["payloadType"][:-1] + chr(ord(doc["payloadType"][-1]) ^ 1)
    else:
        holder = doc["signatures"][0] if part == "sig" else doc
        raw = bytearray(base64.b64decode(holder[part]))
        raw[len(raw) // 2] ^= 0x01
        holder[part] = base64.b64encode(bytes(raw)).decode()
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(doc))
    (loaded,) = read_envelopes(changed)
    assert dsse.verify(loaded.envelope, [key]).signers == ()


def test_url_safe_base64_is_accepted() -> None:
    k = fixed_key()
    env = dsse.sign(b"\xfb\xff" * 50, [k])
    doc = env.to_dict()
    doc["payload"] = base64.urlsafe_b64encode(env.payload).decode().rstrip("=")
    doc["signatures"][0]["sig"] = base64.urlsafe_b64encode(env.signatures[0].sig).decode()
    assert dsse.verify(dsse.Envelope.from_dict(doc), [public(k)]).signers


def test_keyid_is_not_trusted() -> None:
    """A signature claiming a trusted keyid but made by another key fails; a wrong keyid on a good one passes."""
    trusted, other = fixed_key(), fixed_key(bytes(32))
    forged = dsse.sign(b"x", [other])
    forged = dsse.Envelope(
        forged.payload_type, forged.payload, (dsse.Signature(forged.signatures[0].sig, trusted.keyid),)
    )
    assert dsse.verify(forged, [public(trusted)]).signers == ()
    good = dsse.sign(b"x", [trusted])
    mislabelled = dsse.Envelope(good.payload_type, good.payload, (dsse.Signature(good.signatures[0].sig, "nonsense"),))
    assert dsse.verify(mislabelled, [public(trusted)]).signers


def test_ecdsa_p384_der_and_rsa_pss_verify() -> None:
    message = dsse.pae(dsse.INTOTO_PAYLOAD_TYPE, b"{}")
    p384 = ec.generate_private_key(ec.SECP384R1())
    sig = p384.sign(message, ec.ECDSA(hashes.SHA384()))
    env = dsse.Envelope(dsse.INTOTO_PAYLOAD_TYPE, b"{}", (dsse.Signature(sig),))
    assert dsse.verify(env, [PublicKey(p384.public_key(), key_id(p384.public_key()), "t")]).signers
    r = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    env = dsse.Envelope(dsse.INTOTO_PAYLOAD_TYPE, b"{}", (dsse.Signature(r.sign(message, pss, hashes.SHA256())),))
    assert dsse.verify(env, [PublicKey(r.public_key(), key_id(r.public_key()), "t")]).signers


# --- interoperability with securesystemslib -----------------------------------


def test_our_envelopes_verify_with_securesystemslib() -> None:
    from securesystemslib.dsse import Envelope as SslEnvelope
    from securesystemslib.signer import SSlibKey

    for ours in (fixed_key(), PrivateKey(ec.generate_private_key(ec.SECP256R1()), "")):
        pub = ours.key.public_key()
        ours = PrivateKey(ours.key, key_id(pub))
        env = dsse.sign(b'{"hello": "world"}', [ours])
        theirs = SslEnvelope.from_dict(env.to_dict())
        ssl_key = SSlibKey.from_crypto(pub, keyid=ours.keyid)
        accepted = theirs.verify([ssl_key], 1)
        assert ours.keyid in accepted


def test_securesystemslib_envelopes_verify_here() -> None:
    from securesystemslib.dsse import Envelope as SslEnvelope
    from securesystemslib.signer import CryptoSigner

    for signer in (CryptoSigner.generate_ed25519(), CryptoSigner.generate_ecdsa()):
        env = SslEnvelope(payload=b"payload from sslib", payload_type=dsse.INTOTO_PAYLOAD_TYPE, signatures={})
        env.sign(signer)
        ours = dsse.Envelope.from_dict(env.to_dict())
        # the public key as securesystemslib publishes it: raw hex for ed25519, PEM for ecdsa
        public = signer.public_key.keyval["public"]
        crypto_pub = (
            ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(public))
            if signer.public_key.keytype == "ed25519"
            else load_pem_public_key(public.encode())
        )
        verified = dsse.verify(ours, [PublicKey(crypto_pub, key_id(crypto_pub), "sslib")])
        assert verified.payload == b"payload from sslib" and verified.signers


# --- properties -----------------------------------------------------------------


@given(st.text(max_size=40), st.binary(max_size=200), st.text(max_size=40), st.binary(max_size=200))
def test_pae_is_injective(t1: str, b1: bytes, t2: str, b2: bytes) -> None:
    if (t1, b1) != (t2, b2):
        assert dsse.pae(t1, b1) != dsse.pae(t2, b2)


@given(st.text(max_size=40), st.binary(max_size=200))
def test_pae_round_trips(payload_type: str, body: bytes) -> None:
    encoded = dsse.pae(payload_type, body)
    head, n_type, rest = encoded.split(b" ", 2)
    assert head == b"DSSEv1"
    t = rest[: int(n_type)]
    n_body, body_out = rest[int(n_type) + 1 :].split(b" ", 1)
    assert t.decode() == payload_type and int(n_body) == len(body) and body_out == body


@settings(max_examples=60)
@given(st.binary(min_size=1, max_size=120), st.data())
def test_any_flipped_bit_fails(payload: bytes, data: st.DataObject) -> None:
    k = fixed_key()
    env = dsse.sign(payload, [k])
    target = data.draw(st.sampled_from(["payload", "sig"]))
    blob = bytearray(env.payload if target == "payload" else env.signatures[0].sig)
    bit = data.draw(st.integers(0, len(blob) * 8 - 1))
    blob[bit // 8] ^= 1 << (bit % 8)
    if target == "payload":
        env = dsse.Envelope(env.payload_type, bytes(blob), env.signatures)
    else:
        env = dsse.Envelope(env.payload_type, env.payload, (dsse.Signature(bytes(blob), k.keyid),))
    assert dsse.verify(env, [public(k)]).signers == ()


# --- hostile envelopes given as objects (no JSON parser in between) ---------------------


@pytest.mark.parametrize(
    "change, message",
    [
        ({"payloadType": "application/vnd.in-toto+json\udc00"}, "'payloadType' is not Unicode text"),
        ({"payloadType": None}, "'payloadType' is missing or not a string"),
        ({"payload": "é"}, "'payload' is not valid base64"),
        ({"payload": 5}, "'payload' is not a base64 string"),
        ({"signatures": [{"sig": "AAAA"}] * (dsse.MAX_SIGNATURES + 1)}, f"{dsse.MAX_SIGNATURES + 1} signatures"),
        ({"signatures": ["AAAA"]}, "signatures[0] is not an object"),
        ({"signatures": [{"keyid": "k"}]}, "signatures[0].sig is not a base64 string"),
    ],
    ids=[
        "surrogate-payload-type",
        "payload-type-null",
        "non-ascii-payload",
        "payload-a-number",
        "too-many",
        "sig-a-string",
        "no-sig",
    ],
)
def test_from_dict_refuses_with_the_field_named(change: dict[str, object], message: str) -> None:
    doc = {**dsse.sign(b"{}", [fixed_key()]).to_dict(), **change}
    with pytest.raises(InputError) as caught:
        dsse.Envelope.from_dict(doc)
    assert message in caught.value.message


def test_max_signatures_are_accepted_and_any_one_may_verify() -> None:
    k = fixed_key()
    good = dsse.sign(b"{}", [k]).to_dict()
    junk = {"keyid": k.keyid, "sig": base64.b64encode(bytes(64)).decode()}
    doc = {**good, "signatures": [junk] * (dsse.MAX_SIGNATURES - 1) + good["signatures"]}
    assert dsse.verify(dsse.Envelope.from_dict(doc), [public(k)]).signers
