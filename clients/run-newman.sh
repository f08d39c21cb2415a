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

source tests/demo-server.sh
serve_demo main ""

status=0
"$NEWMAN" run clients/tollgate.postman_collection.json \
    --env-var "baseUrl=$BASE" --bail --color off --disable-unicode || status=$?
if ((status != 0)); then
    echo "== server log" >&2
    tail -n 50 "$SERVER_LOG" >&2
fi
exit "$status"
