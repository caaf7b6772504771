#!/usr/bin/env bash
# The simulated account updater at scale (README "Stored cards that stay alive"): seeds N bench
# profiles, each with one sealed card, into a fresh SQLite data dir (release build), then times
# `coffer account-updater --container <their container>`, which opens every card, asks the
# simulated updater about it and commits one batch per transaction.
#   bash bench/account_updater.sh [N]   (default 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-1000000}"
BIN="${BIN:-target/release/coffer}"
[ -x "$BIN" ] || cargo build --release
DIR="$(mktemp -d)"
trap 'rm -rf "$DIR"' EXIT
export COFFER_DATA_DIR="$DIR/data"
mkdir -p "$COFFER_DATA_DIR"
echo "== seeding $N profiles"
SEED="$("$BIN" bench-seed --profiles "$N" --card-tokens 0 --out "$DIR/out" 2>/dev/null | tail -1)"
echo "$SEED"
CID="$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['container_id'])" "$SEED")"
echo "== account updater on container $CID"
start=$(date +%s.%N)
"$BIN" account-updater --container "$CID" 2>&1 | tail -3
end=$(date +%s.%N)
python3 -c "import sys; s=float(sys.argv[2])-float(sys.argv[1]); print(f'wall time {s:.1f} s')" "$start" "$end"
