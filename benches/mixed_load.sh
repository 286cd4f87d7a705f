#!/usr/bin/env bash
# The mixed-load test of issue 12: 64 connections for 5 minutes (by default) over a mix of
# layers, tiles, coverage and the recruiting list, with a write (`POST /people`) every 2 s;
# every 30 s it records requests, errors, p99 and the server's RSS. Loopback only, bounded in
# time. Needs wrk (Debian package `wrk`) and a release build.
#
# Usage: [BELONG_BIN=path] benches/mixed_load.sh [SECONDS] [CONNECTIONS] [DB]
#   DB defaults to a fresh copy of the demo (500 blocks); give a county database
#   (`belong demo generate --blocks 110000 --residents 1000000` then `demo load`) for that scale.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-300}
conns=${2:-64}
db=${3:-}
period=30
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
# BELONG_BIN runs another build (e.g. an older release, for a before/after comparison).
bin=${BELONG_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet
  bin=target/release/belong
fi
work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; kill $writer 2>/dev/null || true; rm -rf "$work"' EXIT
if [ -z "$db" ]; then
  db=$work/demo.db
  $bin -q --db "$db" demo load --dir data
fi
token=$($bin --db "$db" token create --role manager --name mixed-load 2>/dev/null | tail -1)
$bin --db "$db" serve --addr 127.0.0.1:0 > "$work/serve.out" 2> "$work/serve.err" &
server=$!
for _ in $(seq 1 600); do
  addr=$(sed -n 's#^listening on http://##p' "$work/serve.out")
  [ -n "$addr" ] && curl -sf "http://$addr/coverage" >/dev/null 2>&1 && break
  sleep 0.1
done
url="http://$addr"
# A block's interior point to write residents at.
read -r lon lat < <(curl -s "$url/collections/blocks/items?limit=1&f=csv" | python3 -c '
import csv, sys
r = next(csv.DictReader(sys.stdin)); print(r["lon"], r["lat"])')

cat > "$work/mix.lua" <<'LUA'
local paths = {
  "/collections/blocks/items?limit=100",
  "/collections/resources/items?limit=100",
  "/tiles/blocks/14/2808/6542.mvt",
  "/tiles/blocks,resources,school-readiness/13/1404/3271.mvt",
  "/coverage",
  "/coverage/uncovered?limit=50",
}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %.1f %.1f\n", summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
LUA

# One resident every 2 s, for the whole run; each write's latency is kept.
(
  n=0
  while true; do
    n=$((n + 1))
    curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -X POST "$url/people" \
      -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
      -d "{\"id\":\"load-$n-$RANDOM\",\"role\":\"resident\",\"lon\":$lon,\"lat\":$lat}" >> "$work/writes"
    sleep 2
  done
) &
writer=$!

rss() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$server/status"; }
echo "mixed load on $url: $conns connections, $secs s, a write every 2 s (load: $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%8s %10s %8s %8s %9s %9s %8s\n' "t (s)" requests errors "req/s" "p50 ms" "p99 ms" "RSS MB"
echo "0 - - - - - $(rss)" | awk '{printf "%8s %10s %8s %8s %9s %9s %8s\n", $1, $2, $3, $4, $5, $6, $7}'
elapsed=0
while [ "$elapsed" -lt "$secs" ]; do
  step=$(( secs - elapsed < period ? secs - elapsed : period ))
  out=$(wrk -t2 -c"$conns" -d"${step}s" -s "$work/mix.lua" "$url" | grep '^RESULT')
  elapsed=$((elapsed + step))
  read -r _ reqs errs p50 p99 <<< "$out"
  printf '%8s %10s %8s %8s %9s %9s %8s\n' "$elapsed" "$reqs" "$errs" "$((reqs / step))" "$p50" "$p99" "$(rss)"
done
kill $writer 2>/dev/null || true
writes=$(wc -l < "$work/writes")
bad=$(grep -vc '^20[01] ' "$work/writes" || true)
p50w=$(awk '{print $2 * 1000}' "$work/writes" | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]}')
maxw=$(awk '{print $2 * 1000}' "$work/writes" | sort -n | tail -1)
echo "writes: $writes ($bad failed), p50 ${p50w} ms, max ${maxw} ms; threads at the end: $(ls /proc/$server/task | wc -l)"
