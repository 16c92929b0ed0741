#!/usr/bin/env bash
# Bring a group's stores, written by an earlier build of Earshot, to the current shape (CHANGELOG.md,
# "Upgrading"): every raw file converted again, every converted file loaded again, every derived
# collection rebuilt, a fresh Parquet snapshot exported and analysed. Each step is idempotent, so the
# whole is: a second run changes no stored row. Run it once after installing a new build, before the
# next scheduled run (pause the DAGs meanwhile).
#
# It reads the deployment's environment, as the DAG's tasks do (EARSHOT_STORAGE, EARSHOT_GROUP_CONFIG,
# MONGODB_URI, EARSHOT_DATABASE; docs/reference.md), and runs the binaries of EARSHOT_BIN_DIR (default:
# those on PATH). Several groups: run it once per group config. Exits on the first step that fails
# (re-run it: the steps before it changed nothing the second time).
set -euo pipefail

bin="${EARSHOT_BIN_DIR:+${EARSHOT_BIN_DIR%/}/}"
step() {
  echo "==> $*" >&2
  "$@"
}

# Every kind json-converter converts (earshot-core's RawKind::ALL; tests/tests/it/upgrade.rs checks
# the list against it).
KINDS=(recently-played streaming-history spoken-history listens top-tracks top-artists)
for kind in "${KINDS[@]}"; do
  step "${bin}json-converter" "$kind" --force
done
step "${bin}data-upload" all --reload
step "${bin}create-collections" all --rebuild
step "${bin}gcs-export"
step "${bin}analytics" > /dev/null
echo "Upgraded: the stores are in the current shape." >&2
