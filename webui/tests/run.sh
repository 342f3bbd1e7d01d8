#!/usr/bin/env bash
# Browser tests of the web UI against a real hearth binary, in a private network namespace.
#
#   HEARTH_BIN=/path/to/hearth [OUT=dir] [TESTS="shell chat voice"] webui/tests/run.sh
#   (a NAME without NAME.test.mjs runs NAME.mjs with plain node: a benchmark)
#   (or: run.sh /path/to/hearth)
#
# Each test file (NAME.test.mjs for NAME in TESTS) gets a fresh server and data directory.
# Needs: node + npm (playwright-core only, no browser download), /usr/bin/chromium (or CHROMIUM),
# iproute2, util-linux unshare, and root (or user namespaces) for `unshare -n`.
# Screenshots (phone 390x844 and desktop 1280x800) and server logs go to OUT (default webui/tests/out).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [[ "${HEARTH_IN_NETNS:-}" != 1 ]]; then
  HEARTH_BIN="${1:-${HEARTH_BIN:-}}"
  if [[ -z "$HEARTH_BIN" || ! -x "$HEARTH_BIN" ]]; then
    echo "run.sh: set HEARTH_BIN to a built hearth binary (go build -o /tmp/hearth ./cmd/hearth)" >&2
    exit 2
  fi
  HEARTH_BIN="$(realpath "$HEARTH_BIN")"
  OUT="${OUT:-$here/out}"
  mkdir -p "$OUT"
  OUT="$(realpath "$OUT")"

  cd "$here"
  if [[ ! -d node_modules/playwright-core ]]; then
    npm ci --no-audit --no-fund --loglevel=error
  fi

  TESTS="${TESTS:-shell chat voice relay transfer xss connect}"
  export HEARTH_BIN OUT TESTS HEARTH_IN_NETNS=1
  exec unshare --net bash "$here/run.sh"
fi

# From here on: inside the private network namespace.
# Loopback alone makes Chromium think it is offline, so add a veth pair as well; its private
# address is the "LAN" the TURN relay finds to announce.
ip link set lo up
ip link add h0 type veth peer name h1
ip addr add 127.0.0.1/32 dev h0
ip addr add 10.77.0.1/24 dev h0
# No IPv6 on the pair: its link-local addresses would appear a second or two later, after
# duplicate address detection, and Chromium drops requests in flight on such a network change.
sysctl -qw net.ipv6.conf.h0.disable_ipv6=1 net.ipv6.conf.h1.disable_ipv6=1 2>/dev/null || true
ip link set h0 up
ip link set h1 up
for _ in $(seq 1 50); do
  ip -o link show h0 | grep -q 'state UP' && break
  sleep 0.1
done

port=18443
data=""
server_pid=""
stop_server() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"
    wait "$server_pid" || true
  fi
  server_pid=""
  if [[ -n "$data" ]]; then rm -rf "$data"; fi
  data=""
}
trap stop_server EXIT

# start_server NAME: a fresh hearth on $port with its log in $OUT/server-NAME.log; sets SETUP_TOKEN.
start_server() {
  local log="$OUT/server-$1.log"
  data="$(mktemp -d -t hearth-webui-XXXXXX)"
  "$HEARTH_BIN" serve --data "$data" --listen "127.0.0.1:$port" --tls off --mdns=false --tailnet=false \
    --http-listen 127.0.0.1:18080 --turn-listen 127.0.0.1:13478 >"$log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
      echo "run.sh: hearth exited early; its log:" >&2
      cat "$log" >&2
      exit 1
    fi
    sleep 0.1
  done
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null
  SETUP_TOKEN="$("$HEARTH_BIN" admin setup-token --data "$data" | tr -d '[:space:]')"
  if [[ -z "$SETUP_TOKEN" ]]; then
    echo "run.sh: hearth admin setup-token printed nothing" >&2
    exit 1
  fi
}

cd "$here"
status=0
for name in $TESTS; do
  start_server "$name"
  if [[ -f "$name.test.mjs" ]]; then
    HEARTH_URL="http://127.0.0.1:$port" SETUP_TOKEN="$SETUP_TOKEN" OUT="$OUT" \
      node --test --test-reporter=spec "$name.test.mjs" || status=$?
  else
    # A benchmark (NAME.mjs): prints its figures, asserts nothing about them.
    HEARTH_URL="http://127.0.0.1:$port" SETUP_TOKEN="$SETUP_TOKEN" OUT="$OUT" \
      node "$name.mjs" || status=$?
  fi
  stop_server
done
exit "$status"
