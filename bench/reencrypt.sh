#!/usr/bin/env bash
# Re-encryption at scale (README "Keys"): seeds N bench profiles, each with one sealed card, into a
# fresh SQLite data dir, or the fresh PostgreSQL database of COFFER_DATABASE_URL (release build), rotates the data key of their root tenant (Acme Group)
# with `coffer rotate-vault-key --tenant`, which re-encrypts every record, and reports the time.
#   bash bench/reencrypt.sh [N]   (default 1000000)
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
"$BIN" bench-seed --profiles "$N" --card-tokens 0 --out "$DIR/out" 2>&1 | tail -1
if [ -n "${COFFER_DATABASE_URL:-}" ]; then
  # PostgreSQL: a fresh database named by COFFER_DATABASE_URL, with COFFER_VAULT_KEY set.
  ROOT="$(psql "$COFFER_DATABASE_URL" -Atc "SELECT id FROM tenants WHERE name='Acme Group'")"
else
  ROOT="$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT id FROM tenants WHERE name='Acme Group'\").fetchone()[0])" "$COFFER_DATA_DIR/coffer.db")"
fi
echo "== rotating the data key of Acme Group ($ROOT) and re-encrypting"
start=$(date +%s.%N)
"$BIN" rotate-vault-key --tenant "$ROOT" 2>&1 | grep -v "^\s*$" | tail -4
end=$(date +%s.%N)
python3 -c "import sys; s=float(sys.argv[2])-float(sys.argv[1]); print(f'wall time {s:.1f} s')" "$start" "$end"
