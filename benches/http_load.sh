#!/usr/bin/env bash
# Load test of the HTTP service (a benchmark, not a test): starts the release binary on the demo
# catchment and drives it with wrk (Debian package `wrk`) on this machine, then does the same on
# a county-scale generated set (110,000 blocks) with neighbourhood-sized bbox queries.
# Targets (2 cores, load tool on the same machine): >= 2,000 req/s for the full 500-block layer,
# p99 <= 25 ms at 32 connections, zero errors; >= 10,000 req/s for cached vector tiles.
# Usage: benches/http_load.sh [seconds per run, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
cargo build --release --quiet
bin=target/release/belong
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

serve() { # db -> sets $url
  "$bin" -q --db "$1" serve --addr 127.0.0.1:0 >"$work/serve.log" 2>&1 &
  for _ in $(seq 1 600); do
    url=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/serve.log" | head -1 || true)
    [ -n "$url" ] && return 0
    sleep 0.1
  done
  echo "server did not start:" >&2; cat "$work/serve.log" >&2; exit 1
}

load() { # label path
  echo "== $1: GET $2 (32 connections, 2 threads, ${secs}s)"
  wrk -t2 -c32 -d"${secs}s" --latency "$url$2" | grep -E 'Requests/sec|Latency  |99%|50%|Non-2xx|Socket errors|requests in'
}

echo "# demo catchment (500 blocks)"
serve "$work/demo.db"
load "blocks layer, 1000 limit" "/collections/blocks/items?limit=1000"
load "coverage summary" "/coverage"
load "bbox around HQ" "/collections/blocks/items?bbox=-118.290,34.036,-118.280,34.046&limit=1000"
# Vector tiles (issue 4): cached tiles must serve at >= 10,000 req/s. The first request cuts the
# tile; every later one is a cache hit.
load "cached z14 blocks tile over HQ" "/tiles/blocks/14/2808/6542.mvt"
load "cached z14 multi-layer tile over HQ" "/tiles/blocks,resources,school-readiness/14/2808/6542.mvt"
kill %1; wait 2>/dev/null || true

echo "# county scale (110,000 blocks, 1,000,000 residents)"
"$bin" -q demo generate --out "$work/county" --blocks 110000 --residents 1000000
"$bin" -q --db "$work/county.db" import blocks "$work/county/blocks.shp"
"$bin" -q --db "$work/county.db" import residents "$work/county/residents.csv"
"$bin" -q --db "$work/county.db" import ambassadors "$work/county/ambassadors.csv"
serve "$work/county.db"
load "county bbox, a neighbourhood (~1 km)" "/collections/blocks/items?bbox=-118.295,34.035,-118.285,34.045&limit=1000"
load "county coverage summary" "/coverage"
load "county first page" "/collections/blocks/items?limit=100"
load "county cached z12 blocks tile (densest)" "/tiles/blocks/12/702/1637.mvt"
