"""Write and sign an in-toto layout for a network of rebuilders: step `rebuild`, k of n rebuilder keys.

    python make-layout.py --owner-key owner.key --rebuilder a.pub --rebuilder b.pub \
        --threshold 2 --artifact 'hello-1.0.tar.gz' --out root.layout

Keys are the PEM files `rebuild key generate` writes (Ed25519 or ECDSA P-256; rebuilder keys may also be
RSA or ECDSA P-384/P-521). The layout is built with the in-toto package's own classes and signed as a
traditional Metablock, the format in-toto-verify, apt-transport-in-toto and `rebuild attestation
verify-layout` read. Run it with the Python that has `in-toto` installed (the project's .venv).
"""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from in_toto.models.layout import Inspection, Layout, Step
from in_toto.models.metadata import Metablock
from securesystemslib.signer import CryptoSigner


def make_layout(rebuilders: list[Path], threshold: int, artifact: str, expires: datetime, step: str) -> Layout:
    """The layout: who may rebuild, how many must agree, and that the artifact must be what they rebuilt."""
    layout = Layout()
    layout.readme = f"{threshold} of {len(rebuilders)} independent rebuilders must reproduce {artifact} bit for bit"
    layout.expires = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    keyids = [layout.add_functionary_key_from_path(str(path))["keyid"] for path in rebuilders]
    rebuild = Step(name=step)
    rebuild.pubkeys = keyids
    rebuild.threshold = threshold
    rebuild.expected_materials = [["ALLOW", "*"]]  # the plan's source and inputs, as the rebuilders saw them
    rebuild.expected_products = [["CREATE", artifact], ["DISALLOW", "*"]]
    check = Inspection(name="check-artifact")
    check.run = ["true"]  # nothing to run: the rules below compare the artifact in place with the links
    check.expected_materials = [
        ["REQUIRE", artifact],
        ["MATCH", artifact, "WITH", "PRODUCTS", "FROM", step],
        ["DISALLOW", "*"],
    ]
    check.expected_products = [["ALLOW", "*"]]
    layout.steps = [rebuild]
    layout.inspect = [check]
    return layout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--owner-key", type=Path, required=True, help="the layout owner's private key (PEM)")
    parser.add_argument("--rebuilder", type=Path, action="append", required=True, help="a rebuilder's public key")
    parser.add_argument("--threshold", type=int, default=2, help="rebuilders that must agree (default 2)")
    parser.add_argument("--artifact", required=True, help="the artifact's file name (a pattern is allowed)")
    parser.add_argument("--step", default="rebuild", help="the step name the rebuilders' links carry")
    parser.add_argument("--days", type=int, default=365, help="days until the layout expires")
    parser.add_argument("--out", type=Path, default=Path("root.layout"))
    args = parser.parse_args()
    if not 1 <= args.threshold <= len(args.rebuilder):
        parser.error("the threshold must be between 1 and the number of rebuilders")
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=args.days)
    layout = make_layout(args.rebuilder, args.threshold, args.artifact, expires, args.step)
    passphrase = os.environ.get("REBUILD_KEY_PASSPHRASE")
    private = load_pem_private_key(args.owner_key.read_bytes(), passphrase.encode() if passphrase else None)
    metablock = Metablock(signed=layout)
    metablock.create_signature(CryptoSigner(private))
    metablock.dump(str(args.out))
    print(f"wrote {args.out}: step {args.step!r}, {args.threshold} of {len(args.rebuilder)}, expires {layout.expires}")


if __name__ == "__main__":
    main()
