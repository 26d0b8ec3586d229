#!/usr/bin/env bash
# Set up rebuild-verifier on a fresh Debian machine, idempotently:
#   1. Debian tools it needs (mmdebstrap, diffoscope, a Docker engine) when missing;
#   2. a virtualenv at .venv with the project and its test dependencies;
#   3. a Docker engine that answers (dockerd started in the background if none does);
#   4. the default builder images, built reproducibly from Debian packages.
# A second run checks each step and changes nothing.
set -euo pipefail
cd "$(dirname "$0")"
VENV="${VENV:-.venv}"
say() { printf '[setup] %s\n' "$*"; }

# --- 1. Debian packages -------------------------------------------------------
missing=()
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
command -v diffoscope >/dev/null || missing+=(diffoscope-minimal)
command -v zipinfo >/dev/null || missing+=(unzip)
command -v git >/dev/null || missing+=(git)
command -v dockerd >/dev/null || missing+=(docker.io)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    say "missing: ${missing[*]}. As root, run:"
    echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
    exit 1
  fi
  say "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- 2. the virtualenv --------------------------------------------------------
stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  say "creating $VENV and installing rebuild-verifier with its test dependencies"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -e '.[test]'
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi

# --- 3. a Docker engine -------------------------------------------------------
engine_answers() { "$VENV/bin/python" -c 'import docker; docker.from_env(timeout=5).ping()' 2>/dev/null; }
if ! engine_answers; then
  if [ "$(id -u)" -ne 0 ]; then
    say "no Docker engine answers. As root run: dockerd &   (or: systemctl start docker)"
    exit 1
  fi
  say "no Docker engine answers; starting dockerd in the background (log: /var/log/rebuild-dockerd.log)"
  nohup dockerd >/var/log/rebuild-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do engine_answers && break; sleep 1; done
  engine_answers || { say "dockerd did not answer within 60 s; see /var/log/rebuild-dockerd.log"; exit 1; }
fi
say "Docker engine answers"

# --- 4. builder images --------------------------------------------------------
# The images of the recipes with a fixed package set; the debian-binary recipe's image is made per
# source package, from its build dependencies, when first needed.
"$VENV/bin/rebuild" image build --all
say "ready: $VENV/bin/rebuild"
