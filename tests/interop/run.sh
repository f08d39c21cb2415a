#!/usr/bin/env bash
# Real Python OAuth 2.0 clients (requests-oauthlib, authlib) and the C# WebRequest
# flow against the real tollgate binary on a fresh demo database.
#
#     bash tests/interop/run.sh
#
# Needs python3 with venv and pip (packages come from PyPI into target/interop-venv)
# and the Rust toolchain: it builds the debug binary first (a no-op when it is up to
# date) and asks cargo where it is, so CARGO_TARGET_DIR is honoured.
# Exits with interop.py's status; its last line is `N passed, M failed`.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=target/interop-venv
STARTUP_LIMIT_TENTHS=100 # 10 s

if [[ ! -x $VENV/bin/python ]]; then
    echo "== creating $VENV"
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    'requests>=2,<3' 'requests-oauthlib>=2,<3' 'authlib>=1,<2'

echo "== cargo build"
BIN=$(bash tests/cargo-bin.sh)

# No TOLLGATE_* setting from the caller's environment leaks into the server.
while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep '^TOLLGATE_' || true)
export TOLLGATE_PBKDF2_ITERATIONS=1000

TMP=$(mktemp -d)
SERVER_PID=
cleanup() {
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

if ! "$BIN" init "$TMP/tollgate.db" --demo >"$TMP/init.log" 2>&1; then
    echo "tollgate init failed:" >&2
    cat "$TMP/init.log" >&2
    exit 1
fi

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
BASE="http://127.0.0.1:$PORT"

"$BIN" --db "$TMP/tollgate.db" serve --listen "127.0.0.1:$PORT" >"$TMP/server.log" 2>&1 &
SERVER_PID=$!

up() {
    "$VENV/bin/python" -c 'import sys, urllib.request
try:
    sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=1).status == 200 else 1)
except Exception:
    sys.exit(1)' "$BASE/healthz"
}
for ((i = 0; ; i++)); do
    if up; then break; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "tollgate exited before answering /healthz; its log:" >&2
        cat "$TMP/server.log" >&2
        exit 1
    fi
    if ((i >= STARTUP_LIMIT_TENTHS)); then
        echo "tollgate did not answer $BASE/healthz within 10 s; its log:" >&2
        cat "$TMP/server.log" >&2
        exit 1
    fi
    sleep 0.1
done
echo "== tollgate on $BASE (pid $SERVER_PID)"

status=0
"$VENV/bin/python" tests/interop/interop.py "$BASE" || status=$?
if ((status != 0)); then
    echo "== server log" >&2
    tail -n 50 "$TMP/server.log" >&2
fi
exit "$status"
