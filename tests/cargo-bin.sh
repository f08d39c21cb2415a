#!/usr/bin/env bash
# Builds the debug tollgate when its sources changed and prints the executable's
# path, wherever cargo puts it (CARGO_TARGET_DIR, .cargo/config.toml): cargo's
# own build messages name it. Compiler output goes to standard error.
#
#     BIN=$(bash tests/cargo-bin.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --bin tollgate --message-format=json-render-diagnostics |
    python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "tollgate":
        print(m["executable"])
        sys.exit(0)
sys.exit("cargo build named no tollgate executable")'
