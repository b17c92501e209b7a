#!/usr/bin/env bash
# Refresh the reference vectors in tests/vectors/ from the team's shared folder.
#
#   scripts/refresh-vectors.sh           copy ../shared/vectors (or $NOTAR_SHARED_DIR/vectors) into tests/vectors
#   scripts/refresh-vectors.sh --check   only compare; exit 1 if tests/vectors differs from the shared copy
#
# The tests read tests/vectors/ only and never need ../shared. This script copies the same subset that is
# checked in (see tests/vectors/README.md): everything the tests use from notary-0.7, and notation whole.
# Each copied folder is replaced as a whole, so files removed upstream disappear here too. Modes are
# normalised to 0644/0755 (the shared folder is read-only; git keeps only the executable bit anyway).
# Review the result with `git status tests/vectors` and commit it like any other change.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
shared=${NOTAR_SHARED_DIR:-$root/../shared}
src=$shared/vectors
dest=$root/tests/vectors

# Paths under vectors/ that are copied. Keep in sync with tests/vectors/README.md.
SUBSET=(
  notary-0.7/README.md
  notary-0.7/keys-example
  notary-0.7/notary-cli
  notary-0.7/docker-cli
  notation
)
# The top-level folders those paths live in: each is rebuilt from scratch.
TOPS=(notary-0.7 notation)

check=0
case "${1:-}" in
  "") ;;
  --check) check=1 ;;
  -h | --help)
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "refresh-vectors: unknown argument: $1 (try --help)" >&2
    exit 2
    ;;
esac

if [[ ! -d $src ]]; then
  echo "refresh-vectors: no shared vectors at $src (set NOTAR_SHARED_DIR); tests/vectors left unchanged" >&2
  exit 1
fi
missing=0
for rel in "${SUBSET[@]}"; do
  if [[ ! -e $src/$rel ]]; then
    echo "refresh-vectors: $src/$rel is missing; update SUBSET in $0 and tests/vectors/README.md" >&2
    missing=1
  fi
done
((missing == 0)) || exit 1

mkdir -p "$dest"
staging=$(mktemp -d "$dest/.refresh.XXXXXX")
trap 'rm -rf -- "$staging"' EXIT

for rel in "${SUBSET[@]}"; do
  mkdir -p "$staging/$(dirname "$rel")"
  cp -R -- "$src/$rel" "$staging/$rel"
done
find "$staging" -type d -exec chmod 0755 {} +
find "$staging" -type f -exec chmod 0644 {} +

if ((check)); then
  status=0
  for top in "${TOPS[@]}"; do
    if ! diff -r -- "$staging/$top" "$dest/$top" >&2; then
      status=1
    fi
  done
  if ((status)); then
    echo "refresh-vectors: tests/vectors differs from $src (run scripts/refresh-vectors.sh)" >&2
  else
    echo "refresh-vectors: tests/vectors matches $src"
  fi
  exit "$status"
fi

for top in "${TOPS[@]}"; do
  rm -rf -- "${dest:?}/$top"
  mv -- "$staging/$top" "$dest/$top"
done

echo "refresh-vectors: copied from $src:"
(cd "$dest" && du -sh -- "${TOPS[@]}")
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  ignored=$(cd "$root" && find tests/vectors -type f -print0 | git check-ignore --no-index --stdin -z | tr '\0' '\n' || true)
  if [[ -n $ignored ]]; then
    echo "refresh-vectors: warning: git ignores these files (fix .gitignore or the subset):" >&2
    echo "$ignored" >&2
  fi
  git -C "$root" status --short -- tests/vectors
fi
