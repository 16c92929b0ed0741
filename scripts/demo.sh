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
# (127.0.0.1:8080, or EARSHOT_DASHBOARD_BIND) until Ctrl-C. `scripts/demo.sh --timings FILE`: write
# how long the demo took after its build, each part of it, and one more run of each step with
# nothing new to do (a step's fixed cost), as JSON to FILE (scripts/bench.sh reports them).
WITH_AIRFLOW=false
SERVE=false
TIMINGS=""
while [ $# -gt 0 ]; do
  case "$1" in
    --airflow) WITH_AIRFLOW=true ;;
    --serve) SERVE=true ;;
    --timings) TIMINGS="${2:?--timings needs a file}"; shift ;;
    *) echo "usage: scripts/demo.sh [--airflow] [--serve] [--timings FILE]" >&2; exit 2 ;;
  esac
  shift
done

ensure_debian_packages curl
ensure_devdb
use_cached_target
log "Building Earshot"
cargo build --locked --quiet --workspace --bins --example hourly_replay
BIN="$CARGO_TARGET_DIR/debug"

# --timings: seconds since the build, per part (each `log` line starts a part), as JSON pairs.
STARTED=$EPOCHREALTIME
PART_STARTED=$EPOCHREALTIME
PART=""
PARTS=()
elapsed() { echo "$1 $2" | awk '{printf "%.2f", $2 - $1}'; }
part() {
  local now=$EPOCHREALTIME
  [ -n "$PART" ] && PARTS+=("\"$PART\": $(elapsed "$PART_STARTED" "$now")")
  PART="$1" PART_STARTED=$now
  [ -z "$1" ] || log "$1"
}

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
  part "Serving the dashboard (Ctrl-C stops it, and the demo's servers with it)"
  # A group password (`demo`) gives the demo sessions: a guest's, and each friend's own when they
  # sign in with Spotify (the mock) and open "Your data".
  local hash_file="$DEMO/dashboard-password.hash"
  echo demo | "$BIN/dashboard" hash-password > "$hash_file"
  local bind="${EARSHOT_DASHBOARD_BIND:-127.0.0.1:8080}"
  EARSHOT_DASHBOARD_PASSWORD_HASH_FILE="$hash_file" "$BIN/dashboard" &
  pids+=($!)
  cat <<EOT
  The group password is: demo
  A fixture friend signs in as themselves: open http://$bind/login and choose "Sign in with Spotify".
  The mock Spotify stands in for Spotify's consent page: to choose the friend, add &mock_user=ana.mx
  (or ben_k, chloe-r, dev.p, emi) to the end of its address and open it. You land on their "Your data".
EOT
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

part "Starting the MongoDB-wire dev server and the mock Spotify on loopback"
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
# Set with bash's own TCP (no curl to start each time).
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
part "Connecting the five friends"
for id in ana.mx ben_k chloe-r dev.p emi; do connect "$id"; done

if [ "$WITH_AIRFLOW" = true ]; then
  ensure_airflow
  export AIRFLOW__CORE__DAGS_FOLDER="$EARSHOT_ROOT/airflow/dags" EARSHOT_BIN_DIR="$BIN"
  part "Airflow: earshot_recently_played, then earshot_daily (airflow dags test, SQLite metadata)"
  # Logical dates after the DAGs' start date; the mock serves the fixture group's 2024 listening.
  "$EARSHOT_AIRFLOW_VENV/bin/airflow" dags test earshot_recently_played 2026-01-02T09:00:00+00:00 > "$DEMO/airflow-hourly.log" 2>&1
  "$EARSHOT_AIRFLOW_VENV/bin/airflow" dags test earshot_daily 2026-01-02T00:00:00+00:00 > "$DEMO/airflow-daily.log" 2>&1
  grep -o 'Running command: .*earshot[^]]*' "$DEMO"/airflow-*.log | sed "s|$BIN/||; s/^/  /" | cut -c1-140 || true
  part "The answers, from the snapshot the DAG exported (its analytics task stored them in MongoDB)"
  "$BIN/analytics" --snapshot 20260102T000000Z --skip-mongodb
  echo
  echo "Task logs: $DEMO/airflow-hourly.log, $DEMO/airflow-daily.log; storage: $EARSHOT_STORAGE"
  serve_dashboard
  exit 0
fi

# --timings: the demo's time and parts, then each step run again with nothing new (the mock's clock
# unchanged, no new file, no new ledger entry), each timed alone.
write_timings() {
  [ -n "$TIMINGS" ] || return 0
  local total idle=() step started
  total=$(elapsed "$STARTED" "$EPOCHREALTIME")
  part ""
  local -A steps=(
    ["data-fetcher fetch"]="$BIN/data-fetcher fetch --what recently-played --concurrency 5"
    ["json-converter recently-played"]="$BIN/json-converter recently-played"
    ["data-upload recently-played"]="$BIN/data-upload recently-played"
    ["create-collections recently-played"]="$BIN/create-collections recently-played"
  )
  # Each five times, the median, to the millisecond: one run rounded to 10 ms said little of a 15 ms step.
  local runs
  for step in "data-fetcher fetch" "json-converter recently-played" "data-upload recently-played" "create-collections recently-played"; do
    runs=()
    for _ in 1 2 3 4 5; do
      started=$EPOCHREALTIME
      ${steps[$step]} > /dev/null
      runs+=("$(echo "$started $EPOCHREALTIME" | awk '{printf "%.3f", $2 - $1}')")
    done
    idle+=("\"$step\": $(printf '%s\n' "${runs[@]}" | sort -n | sed -n 3p)")
  done
  local IFS=,
  printf '{"after_build": %s, "parts": {%s}, "nothing_to_do": {%s}}\n' "$total" "${PARTS[*]}" "${idle[*]}" > "$TIMINGS"
  echo "Timings: $TIMINGS"
}

# Every hour from $1 to $2, one `data-fetcher fetch --what recently-played` each, as Airflow would
# run them: in one process (crates/data-fetcher/examples/hourly_replay.rs), which sets the mock's
# clock and runs the fetcher's own `Fetcher::run` for each hour. About 530 process start-ups were
# most of the demo's time (issue #40).
hourly() {
  "$BIN/examples/hourly_replay" "$1" "$2"
  set_clock "$2"
}

part "Fetching every hour, as Airflow would (plays beyond 50 in an hour are reported as gaps)"
hourly 2024-03-09T01:00:00Z 2024-03-12T08:00:00Z

part "Seven months later: Spotify ended every authorisation after 6 months (the run says so and exits 1)"
set_clock 2024-10-21T07:00:00Z
"$BIN/data-fetcher" fetch --what recently-played --concurrency 5 || echo "  data-fetcher exited $?: every member must reconnect"
"$BIN/data-fetcher" status
part "The friends reconnect"
for id in ana.mx ben_k chloe-r dev.p emi; do connect "$id"; done
hourly 2024-10-21T07:00:00Z 2024-11-11T09:00:00Z
"$BIN/data-fetcher" fetch --what top

part "Each friend imports the Extended Streaming History Spotify emailed them (my_spotify_data.zip)"
for id in ana.mx ben_k chloe-r dev.p emi; do
  "$BIN/data-fetcher" import --member "$id" "$EARSHOT_ROOT/fixtures/spotify/streaming_history/$id" | cut -c1-160 | sed 's/^/  /'
done

part "Fern is not on Spotify (spotify = false): her players scrobble; here her ListenBrainz export comes in"
# A scrobbler would POST the same listens to the dashboard's /1/submit-listens with her listen token.
"$BIN/data-fetcher" import --member fern --format listenbrainz "$EARSHOT_ROOT/fixtures/listens/fern.jsonl" | sed 's/^/  /'

part "Converting, uploading (imported plays the API also has are merged), building the collections"
for kind in recently-played streaming-history spoken-history listens top-tracks top-artists; do "$BIN/json-converter" "$kind"; done
"$BIN/data-upload" all | sed 's/^/  /'
part "Enriching the imported tracks, one GET /v1/tracks/{id} each (a removed track answers 404)"
"$BIN/data-fetcher" enrich | sed 's/^/  /'
"$BIN/create-collections" all

part "Exporting Parquet snapshots"
"$BIN/gcs-export" --snapshot 20241111T090000Z | sed 's/^/  /'

part "Members"
"$BIN/data-fetcher" status
echo
"$BIN/members" list
"$BIN/members" export --member emi --output "$DEMO/emi.zip"

part "Analytics (polars): the answers, stored in MongoDB analytics_* and reports/"
"$BIN/analytics" --engine polars
echo
echo "Charts: $(ls "$EARSHOT_STORAGE"/reports/*/*.png | tr '\n' ' ')"
part "The recap of October 2024 (the group's month in music)"
"$BIN/analytics" --engine polars --period 2024-10 >/dev/null
echo "  stored as a period run: the dashboard's recap page shows it (scripts/demo.sh --serve)"
echo "Raw pages, converted records, Parquet snapshots, reports and state: $EARSHOT_STORAGE"
part "The weekly recap of 28 Oct - 3 Nov 2024, as it would be posted to the group's chat (--dry-run)"
"$BIN/analytics" --engine polars --period 2024-W44 >/dev/null
"$BIN/recap" --period 2024-W44 --dry-run | sed 's/^/  /'
write_timings
serve_dashboard
