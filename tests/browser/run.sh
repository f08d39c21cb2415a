#!/usr/bin/env bash
# The web console (API.md §8) in a real Chromium: Debian's `chromium` driven by
# playwright-core from npm (never a downloaded browser), against the real tollgate
# binary on a free port and a throw-away demo database.
#
#     bash tests/browser/run.sh
#
# Installs what is missing: chromium (apt, when /usr/bin/chromium is absent; CI runs
# as root), node and npm (apt), playwright-core (npm ci in tests/browser). Builds the
# debug binary (a no-op when it is up to date). Screenshots of every main view go to
# target/browser/ (CI keeps them as artefacts). Exits with the test's status.
set -euo pipefail
cd "$(dirname "$0")/../.."

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
export DEBIAN_FRONTEND=noninteractive

apt_install() {
    if [[ $(id -u) -ne 0 ]]; then
        echo "tests/browser/run.sh: $* missing; install it (apt-get install -y $*) or run as root" >&2
        exit 1
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
if [[ ! -x /usr/bin/chromium ]]; then
    echo "== installing chromium (apt)"
    apt_install chromium
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "== installing node and npm (apt)"
    apt_install nodejs npm
fi
if [[ ! -d tests/browser/node_modules/playwright-core ]]; then
    echo "== npm ci (tests/browser)"
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

echo "== cargo build"
BIN=$(bash tests/cargo-bin.sh)

source tests/demo-server.sh

serve_demo main ""
MAIN_BASE=$BASE
# The second server: a base path (the page's relative URLs) and 8-second access
# tokens (the page asks for the secret again when its admin token expires).
serve_demo short /Jim_Test --access-ttl 8
SHORT_BASE=$BASE

OUT=target/browser
rm -rf "$OUT"
status=0
node tests/browser/console.test.mjs "$MAIN_BASE" "$OUT" "$SHORT_BASE" || status=$?
if ((status != 0)); then
    for log in "$TMP"/main.log "$TMP"/short.log; do
        echo "== $log" >&2
        tail -n 30 "$log" >&2
    done
fi
exit "$status"
