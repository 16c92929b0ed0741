#!/usr/bin/env bash
# The whole pipeline on the bundled fixture group, with no accounts: starts the
# MongoDB-wire dev server and the mock Spotify on loopback, connects the five fixture members through
# the real sign-in path (PKCE, pasted redirect), fetches hourly over their listening (the March 2024 DST
# weekend, then three weeks of October-November 2024), converts, uploads, builds the collections,
# exports Parquet snapshots, runs the analytics, and prints what the group wants to know. Stops what
# it started. Re-runnable: each run starts afresh in $EARSHOT_DEMO_DIR (default ./data/demo).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$EARSHOT_ROOT"

# `scripts/demo.sh --airflow`: the same through the real DAGs (`airflow dags test`) instead of calling
# the binaries one by one. `scripts/demo.sh --serve`: finish by serving the dashboard on the demo's data
# (127.0.0.1:8080, or EARSHOT_DASHBOARD_BIND) until Ctrl-C.
WITH_AIRFLOW=false
SERVE=false
for arg in "$@"; do
  case "$arg" in
    --airflow) WITH_AIRFLOW=true ;;
    --serve) SERVE=true ;;
    *) echo "usage: scripts/demo.sh [--airflow] [--serve]" >&2; exit 2 ;;
  esac
done

ensure_debian_packages curl
ensure_devdb
use_cached_target
log "Building Earshot"
cargo build --locked --quiet --workspace --bins
BIN="$CARGO_TARGET_DIR/debug"

DEMO="${EARSHOT_DEMO_DIR:-$EARSHOT_ROOT/data/demo}"
rm -rf "$DEMO"
mkdir -p "$DEMO"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

# With --serve: the dashboard on the demo's data until Ctrl-C (it prints its URL).
serve_dashboard() {
  $SERVE || return 0
  log "Serving the dashboard (Ctrl-C stops it, and the demo's servers with it)"
  "$BIN/dashboard" &
  pids+=($!)
  wait "${pids[-1]}" || true
}

# Wait for the first line of a file a background process writes.
first_line() {
  for _ in $(seq 200); do
    if [ -s "$1" ]; then head -n1 "$1"; return; fi
    sleep 0.1
  done
  echo "timed out waiting for $1" >&2
  return 1
}

log "Starting the MongoDB-wire dev server and the mock Spotify on loopback"
"$EARSHOT_DEVDB_BIN" --dbpath "$DEMO/mongo" > "$DEMO/devdb.uri" 2> "$DEMO/devdb.log" &
pids+=($!)
"$BIN/earshot-mock-spotify" --now 2024-03-09T00:00:00Z > "$DEMO/mock.url" 2> "$DEMO/mock.log" &
pids+=($!)
MONGODB_URI="$(first_line "$DEMO/devdb.uri")"
MOCK="$(first_line "$DEMO/mock.url")"

# The mock registers a test app with this (test, not real) client id; PKCE needs no secret.
export SPOTIFY_API_BASE="$MOCK" SPOTIFY_ACCOUNTS_BASE="$MOCK"
export SPOTIFY_CLIENT_ID=earshot0test0client0id0000000000
export EARSHOT_TOKEN_KEY="$("$BIN/data-fetcher" keygen)"
export EARSHOT_STORAGE="$DEMO/storage" EARSHOT_GROUP_CONFIG="$EARSHOT_ROOT/fixtures/group.toml"
export MONGODB_URI EARSHOT_DATABASE=earshot_demo EARSHOT_LOG="${EARSHOT_LOG:-warn}"

# The story happens in 2024: the mock's clock says when, and data-fetcher runs under the same clock
# (EARSHOT_NOW, demo only), so raw pages, cursors and authorisation dates are dated in the story.
# The hourly loop sets it 584 times: with bash's own TCP (no curl to start each time).
MOCK_HOSTPORT="${MOCK#http://}"
set_clock() {
  local status
  exec 5<>"/dev/tcp/${MOCK_HOSTPORT%:*}/${MOCK_HOSTPORT##*:}"
  printf 'GET /mock/clock?set=%s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$1" "$MOCK_HOSTPORT" >&5
  IFS= read -r status <&5
  while IFS= read -r _ <&5; do :; done
  exec 5<&-
  [[ "$status" == *" 200 "* ]] || { echo "setting the mock's clock to $1: $status" >&2; return 1; }
  export EARSHOT_NOW="$1"
}
set_clock 2024-03-09T00:00:00Z

# A member signs in: data-fetcher prints the Spotify URL; the "browser" (curl, logged in to the mock as
# the member) approves; the redirect URL is pasted back, as on a headless machine.
connect() {
  local id=$1 fifo="$DEMO/auth.fifo" auth_log="$DEMO/auth-$1.log"
  rm -f "$fifo"
  mkfifo "$fifo"
  "$BIN/data-fetcher" auth --no-listen < "$fifo" 2> "$auth_log" &
  local pid=$!
  exec 3> "$fifo"
  for _ in $(seq 100); do grep -q '/authorize?' "$auth_log" && break; sleep 0.1; done
  local url back
  url="$(grep -o 'http://[^ ]*/authorize?[^ ]*' "$auth_log" | head -n1)"
  back="$(curl -fsS -o /dev/null -w '%{redirect_url}' "$url&mock_user=$id")"
  echo "$back" >&3
  exec 3>&-
  wait "$pid"
  grep -o 'Connected.*' "$auth_log" | sed 's/^/  /'
}

if [ "$WITH_AIRFLOW" = true ]; then
  # One scheduled run at the end of the fixture listening: the friends connect then.
  set_clock 2024-11-11T09:00:00Z
fi
log "Connecting the five friends"
for id in ana.mx ben_k chloe-r dev.p emi; do connect "$id"; done

if [ "$WITH_AIRFLOW" = true ]; then
  ensure_airflow
  export AIRFLOW__CORE__DAGS_FOLDER="$EARSHOT_ROOT/airflow/dags" EARSHOT_BIN_DIR="$BIN"
  log "Airflow: earshot_recently_played, then earshot_daily (airflow dags test, SQLite metadata)"
  # Logical dates after the DAGs' start date; the mock serves the fixture group's 2024 listening.
  "$EARSHOT_AIRFLOW_VENV/bin/airflow" dags test earshot_recently_played 2026-01-02T09:00:00+00:00 > "$DEMO/airflow-hourly.log" 2>&1
  "$EARSHOT_AIRFLOW_VENV/bin/airflow" dags test earshot_daily 2026-01-02T00:00:00+00:00 > "$DEMO/airflow-daily.log" 2>&1
  grep -o 'Running command: .*earshot[^]]*' "$DEMO"/airflow-*.log | sed "s|$BIN/||; s/^/  /" | cut -c1-140 || true
  log "The answers, from the snapshot the DAG exported (its analytics task stored them in MongoDB)"
  "$BIN/analytics" --snapshot 20260102T000000Z --skip-mongodb
  echo
  echo "Task logs: $DEMO/airflow-hourly.log, $DEMO/airflow-daily.log; storage: $EARSHOT_STORAGE"
  serve_dashboard
  exit 0
fi

hourly() {
  local t end runs=0 at
  t=$(date -u -d "$1" +%s)
  end=$(date -u -d "$2" +%s)
  while [ "$t" -le "$end" ]; do
    TZ=UTC printf -v at '%(%Y-%m-%dT%H:%M:%SZ)T' "$t"
    set_clock "$at"
    "$BIN/data-fetcher" fetch --what recently-played --concurrency 5
    t=$((t + 3600)); runs=$((runs + 1))
  done
  echo "  $runs hourly runs from $1 to $2"
}

log "Fetching every hour, as Airflow would (plays beyond 50 in an hour are reported as gaps)"
hourly 2024-03-09T01:00:00Z 2024-03-12T08:00:00Z

log "Seven months later: Spotify ended every authorisation after 6 months (the run says so and exits 1)"
set_clock 2024-10-21T07:00:00Z
"$BIN/data-fetcher" fetch --what recently-played --concurrency 5 || echo "  data-fetcher exited $?: every member must reconnect"
"$BIN/data-fetcher" status
log "The friends reconnect"
for id in ana.mx ben_k chloe-r dev.p emi; do connect "$id"; done
hourly 2024-10-21T07:00:00Z 2024-11-11T09:00:00Z
"$BIN/data-fetcher" fetch --what top

log "Each friend imports the Extended Streaming History Spotify emailed them (my_spotify_data.zip)"
for id in ana.mx ben_k chloe-r dev.p emi; do
  "$BIN/data-fetcher" import --member "$id" "$EARSHOT_ROOT/fixtures/spotify/streaming_history/$id" | cut -c1-160 | sed 's/^/  /'
done

log "Converting, uploading (imported plays the API also has are merged), building the collections"
for kind in recently-played streaming-history top-tracks top-artists; do "$BIN/json-converter" "$kind"; done
"$BIN/data-upload" all | sed 's/^/  /'
log "Enriching the imported tracks, one GET /v1/tracks/{id} each (a removed track answers 404)"
"$BIN/data-fetcher" enrich | sed 's/^/  /'
"$BIN/create-collections" all

log "Exporting Parquet snapshots"
"$BIN/gcs-export" --snapshot 20241111T090000Z | sed 's/^/  /'

log "Members"
"$BIN/data-fetcher" status
echo
"$BIN/members" list
"$BIN/members" export --member emi --output "$DEMO/emi.zip"

log "Analytics (polars): the answers, stored in MongoDB analytics_* and reports/"
"$BIN/analytics" --engine polars
echo
echo "Charts: $(ls "$EARSHOT_STORAGE"/reports/*/*.png | tr '\n' ' ')"
log "The recap of October 2024 (the group's month in music)"
"$BIN/analytics" --engine polars --period 2024-10 >/dev/null
echo "  stored as a period run: the dashboard's recap page shows it (scripts/demo.sh --serve)"
echo "Raw pages, converted records, Parquet snapshots, reports and state: $EARSHOT_STORAGE"
serve_dashboard
