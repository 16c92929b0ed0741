#!/usr/bin/env bash
# Earshot's benchmarks: every pipeline step on synthetic groups of 10k, 1M and 10M plays, each side
# by side with its baseline (a Python converter, pymongo upserts, Spark local[2], DuckDB) in one run,
# with peak memory. Results go to $EARSHOT_BENCH_DIR (default ~/.cache/earshot/bench) and their
# tables into BENCHMARKS.md.
#
#   scripts/bench.sh                      # 10k and 1M plays, 3 runs of each step
#   scripts/bench.sh --sizes 10k,10kx1000 # analytics on 1000 renamed copies of the 10k snapshot (10M plays)
#   scripts/bench.sh --sizes 10M          # 10M plays through every step (about 20 GB of raw JSON)
#   scripts/bench.sh --repeats 5 --sizes 10k
#   scripts/bench.sh --sizes 1M,1M-markets --steps convert   # the converter rows alone, on 2026 and market-heavy pages
#   scripts/bench.sh --sizes 10k,1M --steps hourly            # load and build a history, one more hour on top; at 1M an import and an erase; the demo
#   scripts/bench.sh --sizes 1M --steps export                # load and build the set, then time gcs-export (its time and memory)
#   scripts/bench.sh --steps loop                             # cold and warm CI, the demo, the cold release build (BENCHMARKS.md, "The loop")
#
# EARSHOT_BENCH_MONGODB_URI points it at a real mongod instead of the dev server (which runs out of
# memory building the collections of 1M plays). Needs the disk for the set (1M: about 6 GB in all;
# 10M: about 50 GB) and a quiet machine.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$EARSHOT_ROOT"

# The loop (a new user's and a developer's waits: cold and warm CI, the demo, a fetch with nothing new,
# the cold release build), measured from a clean clone and rendered into BENCHMARKS.md's "The loop":
#   scripts/bench.sh --steps loop [--purge-apt]     # about an hour on 2 cores; needs a quiet machine
if [[ " $* " == *" --steps loop "* ]]; then
  ensure_venv
  loop_args=()
  for arg in "$@"; do
    case "$arg" in --steps|loop) ;; *) loop_args+=("$arg") ;; esac
  done
  exec "$EARSHOT_VENV/bin/python" scripts/bench/loop.py --out "${EARSHOT_BENCH_DIR:-$EARSHOT_CACHE/bench}/loop.json" \
    --report BENCHMARKS.md "${loop_args[@]}"
fi

ensure_debian_packages time
ensure_devdb
ensure_venv
# The Spark driver gets the memory a single machine can spare (its default, 1 GiB, fails at 10M plays).
export EARSHOT_SPARK_SUBMIT="${EARSHOT_SPARK_SUBMIT:-$EARSHOT_VENV/bin/spark-submit --master local[2] --driver-memory 8g --conf spark.ui.enabled=false --conf spark.sql.shuffle.partitions=4}"
# Spark with its full JIT: the tests start it C1-only (lib.sh), which is quicker to start and slower at 10M plays.
export SPARK_SUBMIT_OPTS="${SPARK_SUBMIT_OPTS:--Xss16m}"
use_spark
BENCH_VENV="$EARSHOT_CACHE/bench-venv"
ensure_locked_venv "$BENCH_VENV" "$EARSHOT_ROOT/scripts/requirements-bench.lock"
use_cached_target

# The converter rows alone need only the converter and the set generator (no polars build).
packages=(--workspace)
[[ " $* " == *" --steps convert "* ]] && packages=(-p json-converter -p earshot-testkit)
[[ " $* " == *" --steps hourly "* ]] && packages=(-p json-converter -p earshot-testkit -p data-upload -p create-collections -p data-fetcher -p members -p gcs-export)
log "Building Earshot (release)"
cargo build --release --locked --quiet "${packages[@]}" --bins
EARSHOT_ROUNDTRIP_BIN="$(cargo bench --locked --quiet -p json-converter --bench serde_roundtrip --no-run \
  --message-format=json | "$BENCH_VENV/bin/python" -c \
  'import json, sys; ms = [json.loads(line) for line in sys.stdin]; print(next(m["executable"] for m in ms if m.get("target", {}).get("name") == "serde_roundtrip" and m.get("executable")))')"
export EARSHOT_ROUNDTRIP_BIN EARSHOT_RELEASE_BIN="$CARGO_TARGET_DIR/release"
export EARSHOT_BENCH_DIR="${EARSHOT_BENCH_DIR:-$EARSHOT_CACHE/bench}"
# Warnings and errors only: the steps' progress logs are not what is measured.
export EARSHOT_LOG="${EARSHOT_LOG:-warn}"

log "Benchmarking (work folder $EARSHOT_BENCH_DIR)"
"$BENCH_VENV/bin/python" scripts/bench/run.py "$@"
if [[ " $* " == *" --steps hourly "* ]]; then
  # The demo as a new user runs it (debug build, untimed), three times: its time after the build and
  # each step's fixed cost (scripts/demo.sh --timings).
  rm -f "$EARSHOT_BENCH_DIR"/demo-*.json
  for run in 1 2 3; do
    log "The demo, run $run of 3"
    EARSHOT_DEMO_DIR="$EARSHOT_BENCH_DIR/demo" bash scripts/demo.sh --timings "$EARSHOT_BENCH_DIR/demo-$run.json" > "$EARSHOT_BENCH_DIR/demo-$run.log" 2>&1
  done
  "$BENCH_VENV/bin/python" scripts/bench/run.py --report BENCHMARKS.md --section hourly
else
  "$BENCH_VENV/bin/python" scripts/bench/run.py --report BENCHMARKS.md
fi
