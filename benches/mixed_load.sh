#!/usr/bin/env bash
# The mixed-load test of issue 12: 64 connections for 5 minutes (by default) over a mix of
# layers, tiles, coverage and the recruiting list, with a write (`POST /people`) every 2 s;
# every 30 s it records requests, errors, p50 and p99 for each path of the mix and for the mix
# as a whole, and the server's RSS; at the end the same figures for the whole run. Loopback
# only, bounded in time. Needs wrk (Debian package `wrk`), python3 and a release build.
#
# wrk's `done()` sees one latency histogram per process, so each path gets its own wrk, all
# running at once, the connections split between them; each dumps its latency percentiles
# and a small script merges them (per path over the run, and for the whole mix).
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
# name|path: one wrk each.
paths=(
  "layers:blocks|/collections/blocks/items?limit=100"
  "layers:resources|/collections/resources/items?limit=100"
  "tile:blocks/14|/tiles/blocks/14/2808/6542.mvt"
  "tile:3-layers/13|/tiles/blocks,resources,school-readiness/13/1404/3271.mvt"
  "coverage|/coverage"
  "uncovered|/coverage/uncovered?limit=50"
)
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 not found" >&2; exit 1; }
[ "$conns" -ge "${#paths[@]}" ] || { echo "need at least ${#paths[@]} connections (one per path)" >&2; exit 1; }
# BELONG_BIN runs another build (e.g. an older release, for a before/after comparison).
bin=${BELONG_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet
  bin=target/release/belong
fi
work=$(mktemp -d)
server=
writer=
trap 'kill $server 2>/dev/null || true; kill $writer 2>/dev/null || true; rm -rf "$work"' EXIT
if [ -z "$db" ]; then
  db=$work/demo.db
  $bin -q --db "$db" demo load --dir data
fi
token=$($bin --db "$db" token create --role manager --name mixed-load 2>/dev/null | tail -1)
$bin --db "$db" serve --addr 127.0.0.1:0 > "$work/serve.out" 2> "$work/serve.err" &
server=$!
addr=
for _ in $(seq 1 600); do
  addr=$(sed -n 's#^listening on http://##p' "$work/serve.out")
  [ -n "$addr" ] && curl -sf "http://$addr/coverage" >/dev/null 2>&1 && break
  sleep 0.1
done
[ -n "$addr" ] || { echo "the server did not start:" >&2; cat "$work/serve.err" >&2; exit 1; }
url="http://$addr"
# A block's interior point to write residents at.
read -r lon lat < <(curl -s "$url/collections/blocks/items?limit=1&f=csv" | python3 -c '
import csv, sys
r = next(csv.DictReader(sys.stdin)); print(r["lon"], r["lat"])')

# Each wrk requests the path of its URL and, when done, prints its counts and its latency (µs)
# at 280 percentiles (every 1 % to 89 %, every 0.1 % to 99.9 %, every 0.01 % to 100 %): enough
# to merge distributions of different sizes at p99.
cat > "$work/dist.lua" <<'LUA'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d\n", summary.requests, e.connect + e.read + e.write + e.status + e.timeout))
  local function q(p) io.write(string.format("Q %.2f %d\n", p, latency:percentile(p))) end
  for i = 1, 89 do q(i) end
  for i = 900, 999 do q(i / 10) end
  for i = 9991, 10000 do q(i / 100) end
end
LUA

# Tables from the dumps: `window DIR N T RSS` for one window, `total DIR N` for the run.
cat > "$work/merge.py" <<'PY'
import bisect, glob, os, sys

def load(path):
    n = errors = 0
    ps, vs = [], []
    for line in open(path):
        f = line.split()
        if f[:1] == ["RESULT"]:
            n, errors = int(f[1]), int(f[2])
        elif f[:1] == ["Q"]:
            ps.append(float(f[1]))
            vs.append(int(f[2]))
    return n, errors, ps, vs

def percentile(dists, q):
    """Smallest latency L with at least q % of all requests at or under L (ms)."""
    dists = [d for d in dists if d[0] > 0 and d[3]]
    total = sum(d[0] for d in dists)
    if total == 0:
        return None
    for L in sorted({v for d in dists for v in d[3]}):
        under = 0.0
        for n, _, ps, vs in dists:
            i = bisect.bisect_right(vs, L)
            under += n * (ps[i - 1] / 100 if i else 0)
        if under >= q / 100 * total - 1e-9:
            return L / 1000
    return dists[0][3][-1] / 1000

def writes(path, start, end):
    """(count, failed, latencies ms) of the writes that started in [start, end)."""
    rows = []
    if os.path.exists(path):
        for line in open(path):
            f = line.split()
            if len(f) == 3 and start <= float(f[0]) < end:
                rows.append((f[1], float(f[2]) * 1000))
    lat = sorted(t for _, t in rows)
    return len(rows), sum(1 for c, _ in rows if c not in ("200", "201")), lat

def row(name, reqs, errs, secs, p50, p99):
    fmt = lambda v: "-" if v is None else f"{v:.1f}"
    rate = reqs / secs if secs else 0
    rate = f"{rate:.1f}" if rate < 10 else f"{rate:.0f}"
    print(f"  {name:<22} {reqs:>10} {errs:>7} {rate:>8} {fmt(p50):>9} {fmt(p99):>9}")

def table(names, dists_by_path, secs, write_stats):
    print(f"  {'path':<22} {'requests':>10} {'errors':>7} {'req/s':>8} {'p50 ms':>9} {'p99 ms':>9}")
    every = []
    for name, dists in zip(names, dists_by_path):
        every += dists
        row(name, sum(d[0] for d in dists), sum(d[1] for d in dists), secs, percentile(dists, 50), percentile(dists, 99))
    row("all GETs", sum(d[0] for d in every), sum(d[1] for d in every), secs, percentile(every, 50), percentile(every, 99))
    n, bad, lat = write_stats
    pick = lambda q: lat[min(len(lat) - 1, int(q / 100 * len(lat)))] if lat else None
    row("write: POST /people", n, bad, secs, pick(50), pick(99))

mode, work = sys.argv[1], sys.argv[2]
names = [p.split("|")[0] for p in open(os.path.join(work, "paths")).read().split("\n") if p]
if mode == "window":
    w, secs, start, end, rss = sys.argv[3], float(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]), sys.argv[7]
    print(f"t = {sys.argv[8]} s ({secs:.0f} s window), server RSS {rss} MB")
    dists = [[load(os.path.join(work, f"w{w}.{k}"))] for k in range(len(names))]
    table(names, dists, secs, writes(os.path.join(work, "writes"), start, end))
else:
    secs, start, end = float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
    print(f"whole run ({secs:.0f} s)")
    dists = [[load(f) for f in sorted(glob.glob(os.path.join(work, f"w*.{k}")))] for k in range(len(names))]
    table(names, dists, secs, writes(os.path.join(work, "writes"), start, end))
PY
printf '%s\n' "${paths[@]}" > "$work/paths"

# One resident every 2 s, for the whole run: `start-epoch status seconds` per write.
(
  n=0
  while true; do
    n=$((n + 1))
    at=$(date +%s.%N)
    r=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' -X POST "$url/people" \
      -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
      -d "{\"id\":\"load-$n-$RANDOM\",\"role\":\"resident\",\"lon\":$lon,\"lat\":$lat}" || echo "000 0")
    echo "$at $r" >> "$work/writes"
    sleep 2
  done
) &
writer=$!

rss() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$server/status"; }
echo "mixed load on $url: $conns connections over ${#paths[@]} paths, $secs s, a write every 2 s"
echo "(load average before: $(cut -d' ' -f1-3 /proc/loadavg); server RSS $(rss) MB)"
n=${#paths[@]}
run_start=$(date +%s.%N)
elapsed=0
window=0
while [ "$elapsed" -lt "$secs" ]; do
  step=$(( secs - elapsed < period ? secs - elapsed : period ))
  window=$((window + 1))
  start=$(date +%s.%N)
  pids=()
  for k in "${!paths[@]}"; do
    path=${paths[k]#*|}
    c=$(( conns / n + (k < conns % n ? 1 : 0) ))
    wrk -t1 -c"$c" -d"${step}s" --timeout 10s -s "$work/dist.lua" "$url$path" > "$work/w$window.$k" 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}"
  end=$(date +%s.%N)
  elapsed=$((elapsed + step))
  python3 "$work/merge.py" window "$work" "$window" "$step" "$start" "$end" "$(rss)" "$elapsed"
done
kill $writer 2>/dev/null || true
writer=
python3 "$work/merge.py" total "$work" "$secs" "$run_start" "$(date +%s.%N)"
echo "server threads at the end: $(ls /proc/$server/task | wc -l); load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
