#!/usr/bin/env bash
# The browser end-to-end suite: real clients (axios, the Better Auth client SDK,
# a Twitch panel in an iframe) in Debian's headless Chromium against the real
# server binary, with oidc-provider as the OpenID provider.
#
#   bash tests/e2e/run.sh                          # everything
#   bash tests/e2e/run.sh scenarios/oauth.test.js  # one scenario (paths relative to tests/e2e)
#   TACHIGO_BIN=target/debug/tachigo-auth bash tests/e2e/run.sh   # another binary, no build
#
# Installs what is missing (Debian's chromium, the locked npm packages), builds
# the release binary when it is out of date, and exits non-zero on any failure.
# Screenshots of failures and each scenario's server log go to tests/e2e/test-results/.
set -euo pipefail
cd "$(dirname "$0")"
REPO_DIR=$(cd ../.. && pwd)
export DEBIAN_FRONTEND=noninteractive

step() { printf '\n--- e2e: %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

step "chromium"
if [ ! -x /usr/bin/chromium ]; then
  as_root=()
  [ "$(id -u)" -eq 0 ] || as_root=(sudo -n)
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
/usr/bin/chromium --version 2>/dev/null || true

step "npm packages"
command -v node >/dev/null || { echo "node is missing: the suite needs Node.js 20 or later"; exit 1; }
node --version
# npm keeps a copy of the lock it installed from in node_modules/.package-lock.json;
# reinstall only when there is none or the committed lockfile is newer.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi

# TACHIGO_BIN=/path/to/tachigo-auth runs the suite against that binary instead.
if [ -z "${TACHIGO_BIN:-}" ]; then
  step "server binary (cargo build --release -p tachigo-auth)"
  (cd "$REPO_DIR" && cargo build --release -p tachigo-auth)
fi

rm -rf test-results
mkdir -p test-results
# Every server the harness starts is listed in test-results/.pids; whatever is
# still running when the suite ends (a crash, a timeout) is killed here by id.
cleanup() {
  local code=$?
  if [ -f test-results/.pids ]; then
    while read -r pid; do
      if [ -n "$pid" ] && grep -q tachigo-auth "/proc/$pid/cmdline" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
      fi
    done < test-results/.pids
    rm -f test-results/.pids
  fi
  exit "$code"
}
trap cleanup EXIT

step "browser scenarios"
if [ "$#" -gt 0 ]; then files=("$@"); else files=(scenarios/*.test.js); fi
# One scenario at a time: the dashboard scenario waits on real token expiry.
timeout --kill-after=15 480 node --test --test-reporter=spec --test-concurrency=1 \
  --test-timeout=180000 "${files[@]}"
