#!/usr/bin/env bash
# The Postman collection (clients/tollgate.postman_collection.json) run by newman
# against the real tollgate binary on a free port and a throw-away demo database.
#
#     bash clients/run-newman.sh
#
# Installs what is missing: node and npm (apt, as root), newman (npm, into
# target/newman; never global). Builds the debug binary (a no-op when it is up to
# date). Exits with newman's status.
set -euo pipefail
cd "$(dirname "$0")/.."

NEWMAN_VERSION=6.2.2
STARTUP_LIMIT_TENTHS=100 # 10 s
NEWMAN_DIR=target/newman

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    if [[ $(id -u) -ne 0 ]]; then
        echo "clients/run-newman.sh: node and npm are missing; install them (apt-get install -y nodejs npm)" >&2
        exit 1
    fi
    echo "== installing node and npm (apt)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
NEWMAN=$NEWMAN_DIR/node_modules/.bin/newman
if [[ ! -x $NEWMAN ]]; then
    echo "== npm install newman@$NEWMAN_VERSION (into $NEWMAN_DIR)"
    mkdir -p "$NEWMAN_DIR"
    npm install --prefix "$NEWMAN_DIR" --no-audit --no-fund --loglevel=error "newman@$NEWMAN_VERSION"
fi

echo "== cargo build"
BIN=$(bash tests/cargo-bin.sh)

# No TOLLGATE_* setting from the caller's environment leaks into the server.
while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep '^TOLLGATE_' || true)
export TOLLGATE_PBKDF2_ITERATIONS=1000

# up URL: the server answers 200 there (node only: CI's image need not have curl).
up() {
    node -e 'fetch(process.argv[1]).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "$1" 2>/dev/null
}

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

PORT=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')
BASE="http://127.0.0.1:$PORT"

"$BIN" --db "$TMP/tollgate.db" serve --listen "127.0.0.1:$PORT" >"$TMP/server.log" 2>&1 &
SERVER_PID=$!

for ((i = 0; ; i++)); do
    if up "$BASE/healthz"; then break; fi
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
"$NEWMAN" run clients/tollgate.postman_collection.json \
    --env-var "baseUrl=$BASE" --bail --color off --disable-unicode || status=$?
if ((status != 0)); then
    echo "== server log" >&2
    tail -n 50 "$TMP/server.log" >&2
fi
exit "$status"
