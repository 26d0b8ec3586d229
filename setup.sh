#!/usr/bin/env bash
# Set up rebuild-verifier on a fresh Debian machine, idempotently:
#   1. Debian tools it needs (mmdebstrap, uidmap, diffoscope, a Docker engine) when missing;
#   2. as root, the unprivileged user mmdebstrap runs as (rebuild-builder, with subordinate ids);
#   3. a virtualenv at .venv with the project and its test dependencies;
#   4. a Docker engine that answers (dockerd started in the background if none does);
#   5. the default builder images, built reproducibly from Debian packages.
# A second run checks each step and changes nothing.
set -euo pipefail
cd "$(dirname "$0")"
VENV="${VENV:-.venv}"
say() { printf '[setup] %s\n' "$*"; }

# --- 1. Debian packages -------------------------------------------------------
missing=()
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
{ command -v newuidmap && command -v newgidmap; } >/dev/null || missing+=(uidmap)
command -v diffoscope >/dev/null || missing+=(diffoscope-minimal)
command -v zipinfo >/dev/null || missing+=(unzip)
command -v git >/dev/null || missing+=(git)
command -v dockerd >/dev/null || missing+=(docker.io)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
# the service: Redis for `rebuild worker --broker`, PostgreSQL for the store tests (their own throwaway servers)
command -v redis-server >/dev/null || missing+=(redis-server)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
# the dashboard's browser tests: Debian's headless Chromium and its WebDriver
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
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

# --- 2. the unprivileged user mmdebstrap runs as -------------------------------
# Defence in depth: as root, builder images are made by `mmdebstrap --mode=unshare` run as this
# user, so the maintainer scripts of the image's packages run in a user namespace, never as the
# host's root. rebuild/image.py falls back to --mode=root (and `rebuild doctor` says why) when
# this machine does not allow it. Not root: mmdebstrap runs --mode=unshare as the caller.
BUILDER_USER=rebuild-builder
if [ "$(id -u)" -eq 0 ]; then
  if ! id -u "$BUILDER_USER" >/dev/null 2>&1; then
    say "creating system user $BUILDER_USER (mmdebstrap runs as it, unprivileged)"
    useradd --system --user-group --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin --comment "rebuild-verifier mmdebstrap" "$BUILDER_USER"
  fi
  if ! grep -q "^$BUILDER_USER:" /etc/subuid 2>/dev/null || ! grep -q "^$BUILDER_USER:" /etc/subgid 2>/dev/null; then
    # 65536 ids above every range already handed out (in either file), so none overlaps.
    start=$({ cat /etc/subuid /etc/subgid 2>/dev/null || true; } |
      awk -F: 'BEGIN { e = 100000 } NF >= 3 && $2 + $3 > e { e = $2 + $3 } END { print e }')
    range="$start-$((start + 65535))"
    grep -q "^$BUILDER_USER:" /etc/subuid 2>/dev/null || usermod --add-subuids "$range" "$BUILDER_USER"
    grep -q "^$BUILDER_USER:" /etc/subgid 2>/dev/null || usermod --add-subgids "$range" "$BUILDER_USER"
    say "gave $BUILDER_USER the subordinate ids $range"
  fi
  # The same probe rebuild/image.py makes: a user namespace with the subordinate ids mapped.
  if runuser -u "$BUILDER_USER" -- unshare --map-root-user --map-auto true 2>/dev/null; then
    say "mmdebstrap runs unprivileged: --mode=unshare as $BUILDER_USER"
  else
    say "warning: $BUILDER_USER cannot create a user namespace here; mmdebstrap will run as root"
  fi
fi

# --- 3. the virtualenv --------------------------------------------------------
stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  say "creating $VENV and installing rebuild-verifier with its test dependencies"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -e '.[test]'
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi

# --- 4. a Docker engine -------------------------------------------------------
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

# --- 5. builder images --------------------------------------------------------
# The images of the recipes with a fixed package set (the Python recipes have two: bookworm's Python 3.11
# and trixie's 3.13); the debian-binary recipe's image is made per source package, from its build
# dependencies, when first needed.
"$VENV/bin/rebuild" image build --all
say "ready: $VENV/bin/rebuild"
