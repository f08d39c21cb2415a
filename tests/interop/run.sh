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

if [[ ! -x $VENV/bin/python ]]; then
    echo "== creating $VENV"
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    'requests>=2,<3' 'requests-oauthlib>=2,<3' 'authlib>=1,<2' 'pyjwt[crypto]>=2.8,<3'

echo "== cargo build"
BIN=$(bash tests/cargo-bin.sh)

source tests/demo-server.sh
serve_demo main ""

status=0
"$VENV/bin/python" tests/interop/interop.py "$BASE" || status=$?
if ((status != 0)); then
    echo "== server log" >&2
    tail -n 50 "$SERVER_LOG" >&2
fi

echo "== JWT access tokens (API.md §10): PyJWT with PyJWKClient"
serve_demo jwt "" --access-token-format jwt --access-ttl 3
jwt_status=0
"$VENV/bin/python" tests/interop/jwt_check.py "$BASE" || jwt_status=$?
if ((jwt_status != 0)); then
    echo "== server log" >&2
    tail -n 50 "$SERVER_LOG" >&2
    status=$jwt_status
fi
exit "$status"
