#!/usr/bin/env bash
# Runs the control room's browser tests against the real `chainsim demo`.
# Called by scripts/test; also fine to run by hand: tests/browser/run.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$here"

if [ ! -d node_modules/playwright-core ]; then
  npm ci --no-audit --no-fund
fi

bin="${CHAINSIM_BIN:-$root/target/release/chainsim}"
if [ ! -x "$bin" ]; then
  (cd "$root" && cargo build --release --bin chainsim)
fi
export CHAINSIM_BIN="$bin"

chromium="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  if [ "${CI:-}" = "true" ]; then
    echo "browser tests: no Chromium at $chromium; with CI=true that is a failure" >&2
    exit 1
  fi
  echo "browser tests: no Chromium at $chromium; skipped (install the Debian package chromium)" >&2
  exit 0
fi
export CHROMIUM="$chromium"

# One file at a time: each starts its own network, and CI has two cores.
exec node --test --test-concurrency=1 "$here"/*.test.mjs
