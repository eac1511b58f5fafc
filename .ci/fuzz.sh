#!/usr/bin/env bash
# Schemathesis over every operation of openapi.yaml against the real `serve` process: all
# checks, all phases (examples, coverage, fuzzing, stateful), bounded in examples and time.
# Fails on any failure. `serve` runs with no DATABASE_URL (a throw-away embedded PostgreSQL
# in a temporary DATA_DIR) and the mounted sandbox Dinero; its secrets are made up here.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_MAX_EXAMPLES=${FUZZ_MAX_EXAMPLES:-30}
FUZZ_TIME_LIMIT=${FUZZ_TIME_LIMIT:-480}

data_dir=$(mktemp -d "${TMPDIR:-/tmp}/dinero-bridge-fuzz.XXXXXX")
port=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
serve_pid=""
cleanup() {
  if [ -n "$serve_pid" ] && kill -0 "$serve_pid" 2>/dev/null; then
    kill -TERM "$serve_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$serve_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
  fi
  rm -rf "$data_dir"
}
trap cleanup EXIT

export DATA_DIR="$data_dir"
unset DATABASE_URL DINERO_API_URL DINERO_CLIENT_ID PLATFORM_WEBHOOK_URL
export APP_ENV=development
export AUTH_JWT_SECRET="fuzz-$(.venv/bin/python -c 'import secrets; print(secrets.token_hex(24))')"
export WEBHOOK_SECRET="whsec_$(.venv/bin/python -c 'import base64, secrets; print(base64.b64encode(secrets.token_bytes(24)).decode())')"
export TOKEN_ENCRYPTION_KEYS="$(.venv/bin/python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
export LOG_LEVEL=WARNING LOG_FORMAT=console

echo "fuzz: starting serve on 127.0.0.1:$port (DATA_DIR $data_dir)"
.venv/bin/dinero-bridge serve --host 127.0.0.1 --port "$port" >"$data_dir/serve.log" 2>&1 &
serve_pid=$!
ready=""
for _ in $(seq 1 120); do
  if ! kill -0 "$serve_pid" 2>/dev/null; then break; fi
  if .venv/bin/python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:$port/readyz', timeout=2).status != 200)" 2>/dev/null; then
    ready=1; break
  fi
  sleep 0.5
done
if [ -z "$ready" ]; then
  echo "fuzz: serve did not become ready; its log:" >&2
  cat "$data_dir/serve.log" >&2
  exit 1
fi

export FUZZ_BASE_URL="http://127.0.0.1:$port"
export FUZZ_TOKEN="$(.venv/bin/dinero-bridge dev-token --company demo --role admin --hours 1)"
# The demo company connected to the sandbox Dinero (API key), its chart synced and mapped, so
# categories, deposit accounts and data sources have something to show and change.
.venv/bin/python tests/fuzz/prepare.py "$FUZZ_BASE_URL" "$FUZZ_TOKEN"

status=0
started=$SECONDS
timeout --signal=INT --kill-after=10 "$FUZZ_TIME_LIMIT" \
  .venv/bin/schemathesis --config-file tests/fuzz/schemathesis.toml run openapi.yaml \
    --checks all --phases examples,coverage,fuzzing,stateful \
    --max-examples "$FUZZ_MAX_EXAMPLES" --seed "${FUZZ_SEED:-20261202}" --no-color \
  | tee "$data_dir/schemathesis.txt" || status=$?
if [ "$status" -ne 0 ]; then
  if [ "$status" -eq 124 ]; then echo "fuzz: schemathesis ran past ${FUZZ_TIME_LIMIT}s" >&2; fi
  echo "fuzz: failed (exit $status); the last of serve's log:" >&2
  tail -n 60 "$data_dir/serve.log" >&2
  exit 1
fi
if grep -q "Traceback\|unhandled_error" "$data_dir/serve.log"; then
  echo "fuzz: serve logged an unhandled error:" >&2
  grep -n -A30 "unhandled_error" "$data_dir/serve.log" | head -80 >&2
  exit 1
fi
cases=$(grep -E '^ +[0-9]+ generated, ' "$data_dir/schemathesis.txt" | tail -n 1 | sed 's/^ *//')
failures=$(grep -cE '^ +❌ ST[0-9]+' "$data_dir/schemathesis.txt" || true)
echo "fuzz: schemathesis summary: $cases; $failures failures (max $FUZZ_MAX_EXAMPLES examples per operation, $((SECONDS - started)) s)"
