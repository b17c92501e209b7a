#!/usr/bin/env bash
# Install the Debian packages whose programs the "peers" tests start for real
# (Go notary CLI + notary-server, the distribution registry, skopeo).
#
# Idempotent: a package is installed only when one of its programs is missing,
# and `apt-get update` runs at most once, and only if something is missing.
# Usage: scripts/install-peers.sh            (as root, or with sudo available)
set -euo pipefail

# One "PROGRAM PACKAGE" pair per line: PACKAGE is installed when PROGRAM is not
# on PATH. Add more peers here.
# PostgreSQL (later): its server binaries live in /usr/lib/postgresql/<ver>/bin,
# not on PATH, so check a wrapper that is, e.g. "pg_ctlcluster postgresql".
PEERS=(
  "notary notary"
  "notary-server notary"
  "docker-registry docker-registry"
  "skopeo skopeo"
)

missing=()
for pair in "${PEERS[@]}"; do
  read -r prog pkg <<<"$pair"
  if ! command -v "$prog" >/dev/null 2>&1; then
    # add each package once, even if several of its programs are missing
    [[ " ${missing[*]-} " == *" $pkg "* ]] || missing+=("$pkg")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-peers: all peers present" >&2
  exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-peers: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO=(sudo)
fi

echo "install-peers: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"

# Fail loudly if a package did not provide what we need.
for pair in "${PEERS[@]}"; do
  read -r prog pkg <<<"$pair"
  command -v "$prog" >/dev/null 2>&1 || { echo "install-peers: $prog still missing after installing $pkg" >&2; exit 1; }
done
echo "install-peers: done" >&2
