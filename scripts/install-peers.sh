#!/usr/bin/env bash
# Install the Debian packages whose programs the "peers" tests start for real
# (Go notary CLI + notary-server + notary-signer, the distribution registry, skopeo, PostgreSQL).
#
# Idempotent: a package is installed only when one of its programs is missing,
# and `apt-get update` runs at most once, and only if something is missing.
# Usage: scripts/install-peers.sh            (as root, or with sudo available)
set -euo pipefail

# One "PROGRAM PACKAGE" pair per line: PACKAGE is installed when PROGRAM is
# missing. PROGRAM is a name looked up on PATH, or a path glob (it contains a
# "/") that must match a file. Add more peers here.
# PostgreSQL's server binaries live in /usr/lib/postgresql/<ver>/bin, not on
# PATH, so they are checked by glob (the tests run the newest version found).
# The package also creates the "postgres" OS user that the tests run it as
# when they run as root.
PEERS=(
  "notary notary"
  "notary-server notary"
  "notary-signer notary"
  "docker-registry docker-registry"
  "skopeo skopeo"
  "chromium chromium"
  "openssl openssl"
  "/usr/lib/postgresql/*/bin/postgres postgresql"
  "/usr/lib/postgresql/*/bin/initdb postgresql"
)

# have PROGRAM: on PATH, or (a glob with a "/") matching at least one file.
have() {
  if [[ "$1" == */* ]]; then
    compgen -G "$1" >/dev/null
  else
    command -v "$1" >/dev/null 2>&1
  fi
}

missing=()
for pair in "${PEERS[@]}"; do
  read -r prog pkg <<<"$pair"
  if ! have "$prog"; then
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
  have "$prog" || { echo "install-peers: $prog still missing after installing $pkg" >&2; exit 1; }
done
echo "install-peers: done" >&2
