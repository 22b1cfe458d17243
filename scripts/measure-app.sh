#!/usr/bin/env bash
# Launch the built app under Xvfb, report launch-to-first-paint and idle memory of the whole
# app (main process + WebKit web/network processes), then quit it.
# Usage: scripts/measure-app.sh BIN [IDLE_SECONDS]   (run under scripts/headless.sh; `make measure-app` does)
# The app runs on a fresh data directory (first start), never the user's own.
set -euo pipefail
bin=${1:?usage: measure-app.sh BIN [IDLE_SECONDS]}
idle=${2:-20}
log=$(mktemp)
data=$(mktemp -d)
export WEBKIT_DISABLE_DMABUF_RENDERER=1 LIBGL_ALWAYS_SOFTWARE=1 RUST_LOG=info NO_COLOR=1
"$bin" --data-dir "$data" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$log" "$data"' EXIT

for _ in $(seq 1 200); do
  grep -q "first screen rendered" "$log" && break
  sleep 0.05
done
paint=$(sed -n 's/.*first screen rendered.*ms=\([0-9]*\).*/\1/p' "$log" | head -1)
sleep "$idle"

tree() { echo "$1"; for c in $(pgrep -P "$1"); do tree "$c"; done; }
rss=0; pss=0; n=0
for p in $(tree "$pid"); do
  [ -r /proc/$p/smaps_rollup ] || continue
  r=$(awk '/^Rss:/ {print $2}' /proc/$p/smaps_rollup); s=$(awk '/^Pss:/ {print $2}' /proc/$p/smaps_rollup)
  rss=$((rss + ${r:-0})); pss=$((pss + ${s:-0})); n=$((n + 1))
done
echo "launch to first paint: ${paint:-unknown} ms"
echo "idle memory after ${idle} s, ${n} processes: RSS $((rss / 1024)) MiB, PSS $((pss / 1024)) MiB"
