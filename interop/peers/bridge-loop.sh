#!/usr/bin/env bash
# The draft-14 -> moq-lite bridge, N times: cloudflare's moq-clock-ietf publishes a clock over
# https:// (WebTransport, draft-14) to `moqlink relay`; 1.5 s later `moqlink sub` subscribes over
# moql:// (moq-lite-02) and must print 2 objects within 8 s. Each try uses its own namespace.
#
#   interop/peers/bridge-loop.sh [N] [PORT] [BIN-DIR]     defaults: 50, 4710, target/debug
#
# Prints one line per failed try and `ok=X fail=Y`; exits 1 on any failure. Logs of failed tries
# stay in $OUT (default /tmp/moqlink-bridge-loop).
set -uo pipefail
N="${1:-50}"; PORT="${2:-4710}"; BIN="${3:-target/debug}/moqlink"
PEERS="${MOQLINK_PEERS:-$HOME/.cache/moqlink-peers}"
CLOCK="$PEERS/moq-clock-ietf/bin/moq-clock-ietf"
OUT="${OUT:-/tmp/moqlink-bridge-loop}"
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
mkdir -p "$OUT" && rm -f "$OUT"/*
"$BIN" relay --bind "127.0.0.1:$PORT" --dev > "$OUT/relay.log" 2>&1 &
relay=$!
trap 'kill $relay 2>/dev/null' EXIT
sleep 1
ok=0; fail=0
for i in $(seq 1 "$N"); do
  "$CLOCK" --publish --tls-disable-verify --namespace "bridge-$i" --track now \
    "https://127.0.0.1:$PORT" > "$OUT/clock-$i.log" 2>&1 &
  clock=$!
  sleep 1.5
  if timeout 8 "$BIN" sub "moql://127.0.0.1:$PORT" --tls-disable-verify --namespace "bridge-$i" \
      --track now --count 2 --versions lite-02 -v > "$OUT/sub-$i.out" 2> "$OUT/sub-$i.log"; then
    ok=$((ok + 1)); rm -f "$OUT/sub-$i.out" "$OUT/sub-$i.log" "$OUT/clock-$i.log"
  else
    fail=$((fail + 1)); echo "try $i failed (logs in $OUT)"
  fi
  kill "$clock"; wait "$clock" 2>/dev/null
done
echo "ok=$ok fail=$fail"
[ "$fail" -eq 0 ]
