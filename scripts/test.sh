#!/usr/bin/env bash
# Run every test suite. Installs what the tests need (cmake, the dev MongoDB-wire server, a pinned
# Python venv with fake-gcs-server and pyspark, Java 17 if missing, Debian's Chromium and ChromeDriver
# for the dashboard's browser tests) idempotently, cached under
# $EARSHOT_CACHE (~/.cache/earshot).
# Extra arguments go to `cargo test` (e.g. `scripts/test.sh -p earshot-core`).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$EARSHOT_ROOT"

started=$(date +%s)
ensure_devdb
ensure_venv
ensure_airflow
ensure_chromium
use_spark
use_cached_target

log "cargo fmt --check, ruff"
cargo fmt --all --check
"$EARSHOT_VENV/bin/ruff" check --quiet .
"$EARSHOT_VENV/bin/ruff" format --check --quiet .

log "cargo test (workspace)"
cargo test --workspace --locked "$@"

log "Airflow DAG tests (pytest)"
# The end-to-end test runs the binaries `cargo test` just built.
(cd "$EARSHOT_ROOT/airflow" && EARSHOT_BIN_DIR="$CARGO_TARGET_DIR/debug" "$EARSHOT_AIRFLOW_VENV/bin/python" -m pytest -q -p no:cacheprovider tests)

log "All test suites passed in $(( $(date +%s) - started )) s"
