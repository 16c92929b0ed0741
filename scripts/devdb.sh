#!/usr/bin/env bash
# Build the MongoDB-wire dev server (earshot-devdb) if needed and print its path.
# Run it by hand: "$(scripts/devdb.sh)" --port 27017 --dbpath ./data/devdb
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ensure_devdb
echo "$EARSHOT_DEVDB_BIN"
