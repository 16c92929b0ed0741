#!/usr/bin/env bash
# Run every test suite. Installs what the tests need (cmake, the dev MongoDB-wire server, a pinned
# Python venv with fake-gcs-server and pyspark, Java 17 if missing, Debian's Chromium and ChromeDriver
# for the dashboard's browser tests) idempotently, cached under
# $EARSHOT_CACHE (~/.cache/earshot).
# Extra arguments go to `cargo test` (e.g. `scripts/test.sh -- some_test_name`; see
# scripts/parallel_tests.py, which runs the test binaries side by side).
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

# Every test binary of the workspace, the doctests and the Airflow DAG tests (whose end-to-end test runs
# the binaries just built), side by side: most of a test's time is spent waiting on other processes
# (the dev server, Spark's JVM, Chromium, the pipeline's binaries). EARSHOT_TEST_JOBS sets how many at
# once (1: one after another, as `cargo test` runs them).
log "cargo test (workspace), the doctests and the Airflow DAG tests, ${EARSHOT_TEST_JOBS:-3} at once"
airflow_tests="cd airflow && EARSHOT_BIN_DIR='$CARGO_TARGET_DIR/debug' '$EARSHOT_AIRFLOW_VENV/bin/python' -m pytest -q -p no:cacheprovider tests"
"$EARSHOT_VENV/bin/python" scripts/parallel_tests.py --jobs "${EARSHOT_TEST_JOBS:-3}" \
  --durations "$EARSHOT_CACHE/test-durations.json" \
  --job "doctests=cargo test --workspace --locked --doc --quiet" \
  --job "airflow=$airflow_tests" \
  --workspace --locked "$@"

log "All test suites passed in $(( $(date +%s) - started )) s"
