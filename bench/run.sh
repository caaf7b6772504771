#!/usr/bin/env bash
# Coffer benchmark: one command. See bench/README.md.
#
#   bench/run.sh [--backend sqlite|postgres|both] [--profiles N] [--concurrency C]
#                [--duration S] [--warmup S] [--threads T] [--scenarios a,b,...]
#                [--out DIR] [--perf SCENARIO] [--keep] [--smoke] [--debug-build]
#                [--binary PATH]
#
# --smoke: seconds per scenario, 1 000 profiles, every scenario must answer without errors;
# no timing is asserted (CI runs it with --debug-build, reusing the test build: numbers from a
# debug binary mean nothing, the point is that the benchmark keeps working).
# --binary PATH: measure that coffer binary instead of building one (before/after runs: build
# the "before" commit, copy its target/release/coffer aside, pass it here).
# Builds the release binary, seeds a fresh database directly (`coffer bench-seed`), measures
# start-up, starts Coffer and drives each scenario with wrk (a separate process, loopback only)
# after a warm-up; writes <date>-<backend>[-<N>p].json/.md/.svg to the results directory.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BENCH="$ROOT/bench"

BACKENDS=both
PROFILES=100000
CONCURRENCY=64
DURATION=10
WARMUP=3
THREADS=2
SCENARIOS="healthz,get_profile,debit_token,debit_register,signed_get_profile,console_search,console_home,monri_customer"
OUT=""
PERF_SCENARIO=""
KEEP=0
SMOKE=0
BUILD=release
BINARY=""
PORT="${BENCH_PORT:-18181}"
PGHOST=127.0.0.1
PGPORT=5432
PGUSER=postgres
SKEW_DEFAULT=300

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }
ORIG_ARGS="$*"

while [ $# -gt 0 ]; do
  case "$1" in
    --backend) BACKENDS="$2"; shift 2 ;;
    --profiles) PROFILES="$2"; shift 2 ;;
    --concurrency) CONCURRENCY="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --warmup) WARMUP="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --scenarios) SCENARIOS="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --perf) PERF_SCENARIO="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --smoke) SMOKE=1; shift ;;
    --debug-build) BUILD=debug; shift ;;
    --binary) BINARY="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done

if [ "$SMOKE" = 1 ]; then
  # Seconds, small data, no timing asserted: only that every scenario answers without errors.
  PROFILES=1000; DURATION=2; WARMUP=1; CONCURRENCY=16
fi
case "$BACKENDS" in
  sqlite|postgres) ;;
  both) BACKENDS="sqlite postgres" ;;
  *) echo "--backend must be sqlite, postgres or both" >&2; exit 2 ;;
esac
if [ "$CONCURRENCY" -lt "$THREADS" ]; then THREADS="$CONCURRENCY"; fi

WORK="$(mktemp -d /tmp/coffer-bench.XXXXXX)"
if [ -z "$OUT" ]; then
  if [ "$SMOKE" = 1 ]; then OUT="$WORK/results"; else OUT="$BENCH/results"; fi
fi
mkdir -p "$OUT"

SERVER_PID=""
PG_DB=""
cleanup() {
  set +e
  stop_server
  if [ -n "$PG_DB" ]; then
    psql -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1
    PG_DB=""
  fi
  if [ "$KEEP" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '== %s\n' "$*" >&2; }

# ---- tools --------------------------------------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
  log "installing wrk (Debian package)"
  apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi
command -v python3 >/dev/null || { echo "python3 is required" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is required" >&2; exit 1; }

if [ -n "$BINARY" ]; then
  log "measuring $BINARY (not built here)"
elif [ "$BUILD" = release ]; then
  log "building the release binary"
  (cd "$ROOT" && cargo build --release --quiet)
else
  log "building the debug binary (--debug-build: for --smoke only, its numbers mean nothing)"
  (cd "$ROOT" && cargo build --quiet)
fi
BIN="${BINARY:-${CARGO_TARGET_DIR:-$ROOT/target}/$BUILD/coffer}"
[ -x "$BIN" ] || { echo "no binary at $BIN" >&2; exit 1; }

# ---- server -------------------------------------------------------------------------------
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

start_server() { # sets STARTUP_MS: process start to the first 200 on /healthz
  local t0 code
  t0=$(now_ms)
  "$BIN" serve >>"$RUN/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 3000); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/healthz" 2>/dev/null || true)
    if [ "$code" = 200 ]; then STARTUP_MS=$(( $(now_ms) - t0 )); return 0; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "Coffer exited during start-up; see $RUN/server.log" >&2; tail -20 "$RUN/server.log" >&2; return 1
    fi
    sleep 0.005
  done
  echo "Coffer did not answer /healthz within 30 s" >&2
  return 1
}

stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}

proc_kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$SERVER_PID/status"; }

# ---- scenario preparation (return non-zero and print a reason to skip) --------------------
prepare_healthz() { :; }
prepare_get_profile() { :; }
prepare_debit_token() { :; }
prepare_debit_register() { # $1: warmup|run
  # The seeded tokens are split in proportion to the two phases; each is used once.
  local total warm
  total=$(wc -l <"$SEED/card_tokens.txt")
  warm=$(( total * WARMUP / (WARMUP + DURATION) ))
  if [ "$warm" -lt "$THREADS" ]; then warm=$THREADS; fi
  head -n "$warm" "$SEED/card_tokens.txt" >"$SEED/card_tokens_warmup.txt"
  tail -n +"$(( warm + 1 ))" "$SEED/card_tokens.txt" >"$SEED/card_tokens_run.txt"
  export BENCH_CARD_TOKENS="card_tokens_$1.txt"
}
prepare_signed_get_profile() {
  # Signed right before each phase, with Date = now, so a phase must fit in the skew window.
  if [ "$DURATION" -ge $(( SKEW - 10 )) ]; then
    echo "--duration must be below COFFER_SIGNATURE_SKEW_SECONDS ($SKEW) minus 10 s"; return 1
  fi
  python3 "$BENCH/sign.py" --out "$SEED/signed_requests.txt" --profiles "$PROFILES" --count 5000
}
prepare_console_search() { :; }
prepare_console_home() { :; }
prepare_monri_customer() {
  # An OAuth access token (900 s) for demo-shop-cards, obtained right before each phase.
  local answer
  answer=$(curl -s -H 'Content-Type: application/json' -d '{"client_id":"acmeshopdemoauthenticitytoken00000000000","client_secret":"demo-shop-merchant-key","grant_type":"client_credentials","scopes":["customers"]}' "http://127.0.0.1:$PORT/v2/oauth")
  BENCH_MONRI_TOKEN=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["access_token"])' "$answer") \
    || { echo "POST /v2/oauth answered: $answer"; return 1; }
  export BENCH_MONRI_TOKEN
}

# CPU accounting, so that a run disturbed by other work on the machine shows it: jiffies of
# the whole machine (busy, idle) and of the Coffer process; wrk's own CPU comes from time(1).
HZ=$(getconf CLK_TCK)
machine_jiffies() { awk '/^cpu / { print $2+$3+$4+$7+$8+$9, $5+$6 }' /proc/stat; }
server_jiffies() { awk '{ print $14+$15 }' "/proc/$SERVER_PID/stat"; }

run_wrk() { # $1 scenario, $2 phase, $3 seconds, $4 output json
  BENCH_TAG="$2$(date +%s%N)" BENCH_OUT="$4" \
    /usr/bin/time -f '%U %S' -o "$RUN/$1.$2.time" wrk -t"$THREADS" -c"$CONCURRENCY" -d"${3}s" --timeout 10s \
    -s "$BENCH/scenarios/$1.lua" "http://127.0.0.1:$PORT" >"$RUN/$1.$2.txt" 2>&1
}

# ---- one backend --------------------------------------------------------------------------
run_backend() {
  local backend="$1" stamp name url
  stamp="$(date -u +%Y-%m-%d)"
  name="$stamp-$backend"
  if [ "$PROFILES" != 100000 ]; then name="$name-${PROFILES}p"; fi
  if [ "$SMOKE" = 1 ]; then name="smoke-$backend"; fi
  RUN="$WORK/$backend"; SEED="$RUN/seed"
  mkdir -p "$RUN" "$SEED"
  export BENCH_DIR="$BENCH" BENCH_DATA="$SEED" BENCH_THREADS="$THREADS" BENCH_PROFILES="$PROFILES"
  export COFFER_BIND="127.0.0.1:$PORT" COFFER_DATA_DIR="$RUN/data"
  SKEW="${COFFER_SIGNATURE_SKEW_SECONDS:-$SKEW_DEFAULT}"
  unset COFFER_DATABASE_URL COFFER_SESSION_KEY COFFER_VAULT_KEY
  if [ "$backend" = postgres ]; then
    if ! pg_isready -h "$PGHOST" -p "$PGPORT" -q 2>/dev/null; then
      log "PostgreSQL is not answering on $PGHOST:$PGPORT; trying to start the local cluster"
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
      for _ in $(seq 1 30); do pg_isready -h "$PGHOST" -p "$PGPORT" -q && break; sleep 1; done
    fi
    PG_DB="coffer_bench_$(date +%s)_$$"
    psql -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -v ON_ERROR_STOP=1 -qc "CREATE DATABASE $PG_DB"
    export COFFER_DATABASE_URL="postgres://$PGUSER@$PGHOST:$PGPORT/$PG_DB"
    COFFER_SESSION_KEY="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
    COFFER_VAULT_KEY="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
    export COFFER_SESSION_KEY COFFER_VAULT_KEY
  fi

  # Enough single-use card tokens for the withRegister scenario at ~4 000 registrations/s.
  local card_tokens=$(( (WARMUP + DURATION) * 4000 ))
  log "$backend: seeding $PROFILES profiles and $card_tokens card tokens"
  local t0 seed_ms
  t0=$(now_ms)
  # Card tokens live 3 h instead of the API's 30 min, so that a long run does not outlive them.
  "$BIN" bench-seed --profiles "$PROFILES" --card-tokens "$card_tokens" \
    --card-token-minutes 180 --out "$SEED" >"$RUN/seed.log" 2>&1 \
    || { cat "$RUN/seed.log" >&2; return 1; }
  seed_ms=$(( $(now_ms) - t0 ))
  local container
  container=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["container_id"])' "$SEED/seed.json")

  log "$backend: start-up time (3 starts)"
  local startups=()
  for i in 1 2 3; do
    start_server
    startups+=("$STARTUP_MS")
    if [ "$i" -lt 3 ]; then stop_server; fi
  done
  log "$backend: start-up ms ${startups[*]}"

  # Console session: CSRF token from GET /login, then POST /login as admin/admin-demo.
  local jar="$RUN/cookies.txt" csrf
  csrf=$(curl -s -c "$jar" -b "$jar" "http://127.0.0.1:$PORT/login" | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p')
  curl -s -o /dev/null -c "$jar" -b "$jar" --data-urlencode "csrf_token=$csrf" \
    --data-urlencode username=admin --data-urlencode password=admin-demo "http://127.0.0.1:$PORT/login"
  export BENCH_COOKIE="coffer_session=$(awk '$6 == "coffer_session" { print $7 }' "$jar")"
  export BENCH_CONTAINER="$container"
  # wrk counts only statuses >= 400 as errors: make sure the page answers 200, not a redirect
  # to /login, before measuring it.
  local page
  page=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $BENCH_COOKIE" "http://127.0.0.1:$PORT/containers/$container?q=bench-0")
  if [ "$page" != 200 ]; then echo "console login failed: /containers/$container answered $page" >&2; return 1; fi

  local sc reason
  for sc in ${SCENARIOS//,/ }; do
    if ! declare -F "prepare_$sc" >/dev/null; then echo "unknown scenario $sc" >&2; return 1; fi
    if ! "prepare_$sc" warmup >"$RUN/$sc.prepare.txt" 2>&1; then
      reason=$(cat "$RUN/$sc.prepare.txt")
      log "$backend: skip $sc: $reason"; echo "$reason" >"$RUN/$sc.skip"; continue
    fi
    log "$backend: $sc (warm-up ${WARMUP}s, then ${DURATION}s at $CONCURRENCY connections)"
    run_wrk "$sc" warmup "$WARMUP" "$RUN/$sc.warmup.json"
    "prepare_$sc" run >>"$RUN/$sc.prepare.txt" 2>&1
    local perf_pid=""
    if [ "$sc" = "$PERF_SCENARIO" ]; then
      # cpu-clock: this VM has no hardware counters; dwarf: the release build has no frame pointers.
      perf record -F 499 -e cpu-clock --call-graph dwarf,16384 -p "$SERVER_PID" -o "$RUN/perf.data" -- sleep "$DURATION" >/dev/null 2>&1 &
      perf_pid=$!
    fi
    local m0 s0 m1 s1
    m0=$(machine_jiffies); s0=$(server_jiffies)
    run_wrk "$sc" run "$DURATION" "$RUN/$sc.json"
    m1=$(machine_jiffies); s1=$(server_jiffies)
    read -r wu ws <"$RUN/$sc.run.time"
    python3 - "$m0" "$m1" "$s0" "$s1" "$wu" "$ws" "$HZ" >"$RUN/$sc.cpu.json" <<'PY'
import json, sys
(b0, i0), (b1, i1) = (map(int, a.split()) for a in sys.argv[1:3])
s0, s1, wu, ws, hz = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7])
busy, idle, coffer, wrk = (b1 - b0) / hz, (i1 - i0) / hz, (s1 - s0) / hz, wu + ws
print(json.dumps({"busy_s": round(busy, 2), "idle_s": round(idle, 2), "coffer_s": round(coffer, 2),
                  "wrk_s": round(wrk, 2), "other_s": round(max(0.0, busy - coffer - wrk), 2)}))
PY
    if [ -n "$perf_pid" ]; then
      wait "$perf_pid" || true
      { echo "# perf record -F 499 -e cpu-clock --call-graph dwarf on Coffer during $sc ($name)"
        echo "# inclusive (children) share of CPU samples per function, >= 1%"
        perf report -i "$RUN/perf.data" --children --sort symbol -g none --percent-limit 1 --stdio 2>/dev/null \
          | grep -v '^#' | grep -v '^$' | sed 's/ \{3,\}/  /g' | cut -c1-200
        echo "# self share per library"
        perf report -i "$RUN/perf.data" --no-children --sort dso -g none --stdio 2>/dev/null | grep -v '^#' | grep -v '^$'
      } >"$OUT/$name-perf-$sc.txt" || true
      log "perf profile: $OUT/$name-perf-$sc.txt"
    fi
    echo "{\"rss_kb\":$(proc_kb VmRSS),\"hwm_kb\":$(proc_kb VmHWM)}" >"$RUN/$sc.mem.json"
  done
  local hwm; hwm=$(proc_kb VmHWM)
  stop_server

  cat >"$RUN/meta.json" <<EOF
{"backend":"$backend","build":"$BUILD","date":"$(date -u +%Y-%m-%dT%H:%M:%SZ)","smoke":$([ "$SMOKE" = 1 ] && echo true || echo false),
 "profiles":$PROFILES,"concurrency":$CONCURRENCY,"threads":$THREADS,"duration_s":$DURATION,"warmup_s":$WARMUP,
 "card_tokens":$card_tokens,"seed_ms":$seed_ms,"startup_ms":[$(IFS=,; echo "${startups[*]}")],
 "peak_rss_kb":$hwm,"signature_skew_s":$SKEW,"scenarios":"$SCENARIOS",
 "git_commit":"$(if [ -n "$BINARY" ]; then echo "binary $(basename "$BINARY")"; else echo "$(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- src migrations Cargo.toml Cargo.lock || echo -dirty)"; fi)",
 "command":"bench/run.sh $ORIG_ARGS"}
EOF
  local check=()
  if [ "$SMOKE" = 1 ]; then check=(--check); fi
  python3 "$BENCH/report.py" build --run "$RUN" --out "$OUT/$name" "${check[@]}"

  if [ -n "$PG_DB" ]; then
    psql -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
    PG_DB=""
  fi
}

for b in $BACKENDS; do run_backend "$b"; done
case "$OUT" in
  "$WORK"/*) [ "$KEEP" = 1 ] && log "results in $OUT" || log "results shown above (their directory goes with the work dir: --keep or --out DIR keeps them)" ;;
  *) log "results in $OUT" ;;
esac
