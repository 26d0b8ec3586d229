#!/usr/bin/env bash
# The whole job on the bundled examples, offline after set-up:
#   1. a release team builds examples/hello hermetically and publishes it with signed provenance;
#   2. an independent rebuilder verifies it: rebuild, compare byte for byte, sign an attestation;
#   3. a consumer checks that attestation before installing;
#   4. the same for examples/clock, which is deliberately not reproducible: explained, never attested.
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh
R=.venv/bin/rebuild
D=demo-out
rm -rf "$D" && mkdir -p "$D"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. keys: one for the release team, one for the independent rebuilder"
$R key generate --out "$D/team"
$R key generate --out "$D/rebuilder"

step "2. the release team builds examples/hello in the sandbox (network off) and signs its provenance"
$R build examples/hello --out "$D/release" --key "$D/team.key"

step "3. a rebuilder verifies the release from its provenance alone: rebuild, compare, attest"
$R verify "$D/release/hello-1.0.tar.gz.provenance.intoto.jsonl" \
    --provenance-key "$D/team.pub" --key "$D/rebuilder.key" --out "$D/verify-hello"

step "4. a consumer checks the rebuilder's attestation before installing"
$R attestation verify "$D/verify-hello/hello-1.0.tar.gz.rebuild.intoto.jsonl" \
    --key "$D/rebuilder.pub" --artifact "$D/release/hello-1.0.tar.gz"

step "5. examples/clock embeds the build time and randomness: built, then verified"
$R build examples/clock --out "$D/release-clock" --key "$D/team.key"
sleep 1
set +e
$R verify "$D/release-clock/clock-1.0.tar.gz.provenance.intoto.jsonl" --key "$D/rebuilder.key" --out "$D/verify-clock"
code=$?
set -e

step "summary"
echo "hello: reproduced bit for bit, attested by the rebuilder, checked by the consumer (exit 0)."
echo "clock: NOT reproduced (exit $code); the explanation above names BUILD_INFO's content and the"
echo "       tar timestamps; no PASSED attestation exists:" \
     "$(ls "$D"/verify-clock/*.rebuild.intoto.jsonl 2>/dev/null || echo 'none on disk')"
echo "Everything is in $D/ (reports: $D/verify-*/verify-report.json, compare-report.json, diffoscope-*/)."
[ "$code" -eq 1 ]
