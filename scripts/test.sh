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
use_cached_target
# The set-up steps that do not depend on each other run side by side: the Debian packages and the two
# venvs (downloads), then the dev server's build and the workspace's test build (both CPU).
build_tests() { cargo test --workspace --locked --no-run --quiet "$@"; }
python_envs() { ensure_venv && ensure_airflow; }
log "Set-up: Debian packages and the Python venvs, side by side"
side_by_side ensure_test_packages python_envs
log "Set-up: the dev server's build and the workspace's test build, side by side"
side_by_side ensure_devdb build_tests
ensure_devdb
ensure_venv
ensure_airflow
ensure_chromium
use_spark
log "Set-up done in $(( $(date +%s) - started )) s"

log "cargo fmt --check, ruff"
cargo fmt --all --check
"$EARSHOT_VENV/bin/ruff" check --quiet .
"$EARSHOT_VENV/bin/ruff" format --check --quiet .

# Every test binary of the workspace, the doctests and the Airflow DAG tests (whose end-to-end test runs
# the binaries just built), side by side: most of a test's time is spent waiting on other processes
# (the dev server, Spark's JVM, Chromium, the pipeline's binaries). EARSHOT_TEST_JOBS sets how many at
# once (1: one after another, as `cargo test` runs them).
log "cargo test (workspace), the doctests and the Airflow DAG tests, ${EARSHOT_TEST_JOBS:-3} at once"
airflow_pytest="cd airflow && EARSHOT_BIN_DIR='$CARGO_TARGET_DIR/debug' '$EARSHOT_AIRFLOW_VENV/bin/python' -m pytest -q -p no:cacheprovider"
# The longest binaries are cut where they wait longest (Spark, Chromium, the erase's runs), and each
# end-to-end Airflow module (its own dev server, mock Spotify and Airflow metadata) runs as a job of its
# own: the pool then keeps both cores busy to the end.
"$EARSHOT_VENV/bin/python" scripts/parallel_tests.py --jobs "${EARSHOT_TEST_JOBS:-3}" \
  --durations "$EARSHOT_CACHE/test-durations.json" --default-durations scripts/test-durations.json \
  --job "doctests=cargo test --workspace --locked --doc --quiet" \
  --job "airflow-dags=$airflow_pytest tests/test_dags.py" \
  --job "airflow-e2e=$airflow_pytest tests/test_e2e.py" \
  --job "airflow-e2e-groups=$airflow_pytest tests/test_e2e_groups.py" \
  --split "analytics test it=parity::spark_on_a_standalone_cluster" \
  --split "analytics test it=parity::spark_and_polars" \
  --split "dashboard test it=browser::" \
  --split "dashboard test it=http::" \
  --split "members test it=rights::" \
  --workspace --locked "$@"

log "All test suites passed in $(( $(date +%s) - started )) s"
