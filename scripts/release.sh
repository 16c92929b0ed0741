#!/usr/bin/env bash
# Build every shipped binary in release: the seven the Airflow DAGs run, plus `members` and `dashboard`
# (airflow/README.md, "Cloud Composer"). Not the test tools (the mock Spotify, the fixture generator).
# Extra arguments go to cargo (`--timings`, `--target ...`). The binaries land in
# ${CARGO_TARGET_DIR:-target}/release/.
#
#   scripts/release.sh
#   CARGO_TARGET_DIR=/tmp/empty scripts/release.sh --timings   # the cold build BENCHMARKS.md measures
set -euo pipefail
cd "$(dirname "$0")/.."

SHIPPED=(data-fetcher json-converter data-upload create-collections gcs-export analytics recap members dashboard)
packages=()
for name in "${SHIPPED[@]}"; do packages+=(-p "$name"); done
cargo build --release --locked "${packages[@]}" --bins "$@"
