#!/usr/bin/env bash
# Debit latency under a sign-in flood (issue 12): debit_token's p50 alone, then the same load
# while a second wrk floods POST /login with wrong passwords from 20 addresses (the first 600
# are checked with argon2, then the addresses lock). SQLite, release build, loopback.
#
#   bench/login_flood.sh [--duration S] [--concurrency C]
#
# Prints the debit p50/p99 idle and under the flood, their ratio, and the flood's request count.
# Honours CARGO_TARGET_DIR and BENCH_PORT (default 18182).
set -euo pipefail
BENCH="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$BENCH")"
DURATION=10
CONCURRENCY=16
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION="$2"; shift 2 ;;
    --concurrency) CONCURRENCY="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
PORT="${BENCH_PORT:-18182}"
(cd "$ROOT" && cargo build --release --quiet)
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/coffer"
WORK="$(mktemp -d /tmp/coffer-flood.XXXXXX)"
SERVER_PID=""
cleanup() { set +e; [ -n "$SERVER_PID" ] && kill "$SERVER_PID" && wait "$SERVER_PID"; rm -rf "$WORK"; }
trap cleanup EXIT
for v in $(env | sed -n 's/^\(COFFER_[A-Z_0-9]*\)=.*/\1/p'); do unset "$v"; done
export COFFER_BIND="127.0.0.1:$PORT" COFFER_DATA_DIR="$WORK/data"
export COFFER_TRUSTED_PROXY_HEADER=X-Forwarded-For RUST_LOG=warn
export BENCH_DIR="$BENCH" BENCH_DATA="$WORK/seed" BENCH_THREADS=1 BENCH_PROFILES=1000
mkdir -p "$BENCH_DATA"
"$BIN" bench-seed --profiles 1000 --card-tokens 10 --out "$BENCH_DATA" >"$WORK/seed.log" 2>&1
"$BIN" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 600); do
  curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && break; sleep 0.05
done
jar="$WORK/cookies.txt"
BENCH_CSRF=$(curl -s -c "$jar" "http://127.0.0.1:$PORT/login" | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p')
BENCH_COOKIE="coffer_session=$(awk '$6 == "coffer_session" { print $7 }' "$jar")"
export BENCH_CSRF BENCH_COOKIE

debit() { # $1 output json
  BENCH_TAG="$(date +%s%N)" BENCH_OUT="$1" wrk -t1 -c"$CONCURRENCY" -d"${DURATION}s" --timeout 10s \
    -s "$BENCH/scenarios/debit_token.lua" "http://127.0.0.1:$PORT" >/dev/null
}
debit "$WORK/warmup.json"
debit "$WORK/idle.json"
BENCH_OUT="$WORK/flood.json" wrk -t1 -c20 -d"$((DURATION + 2))s" --timeout 30s \
  -s "$BENCH/scenarios/login_flood.lua" "http://127.0.0.1:$PORT" >/dev/null &
FLOOD=$!
sleep 1
debit "$WORK/under_flood.json"
wait "$FLOOD"
python3 - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
idle, busy, flood = (json.load(open(f"{w}/{n}.json")) for n in ("idle", "under_flood", "flood"))
p = lambda r, q: r["latency_us"][q] / 1000
print(f"debit idle:        p50 {p(idle,'p50'):.2f} ms  p99 {p(idle,'p99'):.2f} ms  "
      f"{idle['requests']} requests, {sum(idle['errors'].values())} errors")
print(f"debit under flood: p50 {p(busy,'p50'):.2f} ms  p99 {p(busy,'p99'):.2f} ms  "
      f"{busy['requests']} requests, {sum(busy['errors'].values())} errors")
print(f"p50 ratio: {p(busy,'p50') / p(idle,'p50'):.2f} (target: at most 3)")
print(f"flood: {flood['requests']} sign-ins, p50 {p(flood,'p50'):.2f} ms "
      f"(422 wrong password for the first 600, then 429 locked, 503 when the hashing queue is full)")
PY
