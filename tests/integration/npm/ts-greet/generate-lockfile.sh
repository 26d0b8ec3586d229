#!/bin/sh
# Regenerates package-lock.json of the ts-greet fixture with the host's npm against the real registry,
# ignoring any user npmrc (which may set omit-lockfile-registry-resolved) and running no scripts.
# Used once to make the committed lockfile; the integration tests read the committed file.
set -eu
cd "$(dirname "$0")"
rm -f package-lock.json
npm_config_userconfig=/dev/null npm install --package-lock-only --ignore-scripts --no-audit --no-fund \
  --registry=https://registry.npmjs.org/
