#!/usr/bin/env bash
# Runs the README's tour as written: extracts the ```sh blocks between `<!-- tour -->` and
# `<!-- /tour -->` in README.md and runs them, top to bottom, in a fresh temporary directory (with the
# repository's datasets/ and examples/ linked in) against the release binary. Any failing command
# fails the script, naming the line.
#   scripts/readme_tour.sh            # builds nothing: uses target/release/nsl (NSL_BIN to override)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
bin="${NSL_BIN:-$repo/target/release/nsl}"
test -x "$bin" || { echo "error: $bin missing: run cargo build --release first" >&2; exit 1; }
work="$(mktemp -d "${TMPDIR:-/tmp}/nsl-tour.XXXXXX")"
trap 'rm -rf "$work"' EXIT
ln -s "$repo/datasets" "$work/datasets"
ln -s "$repo/examples" "$work/examples"
# The tour's shell blocks: lines inside ```sh fences within the tour markers.
awk '
  /<!-- tour -->/ { tour = 1; next }
  /<!-- \/tour -->/ { tour = 0; next }
  tour && /^```sh/ { block = 1; next }
  tour && /^```/ { block = 0; next }
  tour && block { print }
' "$repo/README.md" > "$work/tour.sh"
commands=$(grep -c '^nsl ' "$work/tour.sh" || true)
[ "$commands" -gt 0 ] || { echo "error: no tour commands found in README.md" >&2; exit 1; }
echo "README tour: $commands commands, in $work, with $bin"
cd "$work"
export bin
start=$SECONDS
# Each command's output goes to tour.log; a line per command says it ran and how long it took; the
# first failure stops the tour, naming the command, with the end of the log.
runner='nsl() {
  local s=$SECONDS
  if ! "$bin" --quiet "$@" >> tour.log 2>&1; then echo "error: the README tour failed at: nsl $*" >&2; return 1; fi
  echo "ok ($((SECONDS - s)) s): nsl $*" | cut -c1-160
}'
bash -euo pipefail -c "$runner; source ./tour.sh" || { tail -n 30 tour.log >&2; exit 1; }
echo "README tour: all $commands commands ran in $((SECONDS - start)) s"
