#!/usr/bin/env bash
# CPU use of the app process on the load-test scenario (500 option positions quoted at 10 Hz):
# CPU time over a window after start-up, as a percentage of one core, and how many times a
# position lost its mark (the symptom of a backend that cannot keep up).
# Usage: scripts/measure-cpu.sh BIN [WARMUP_SECONDS] [WINDOW_SECONDS]   (run under scripts/headless.sh)
# The app runs on a fresh data directory, never the user's own.
set -euo pipefail
bin=${1:?usage: measure-cpu.sh BIN [WARMUP_SECONDS] [WINDOW_SECONDS]}
warmup=${2:-15}
window=${3:-20}
log=$(mktemp)
data=$(mktemp -d)
export LIBGL_ALWAYS_SOFTWARE=1 RUST_LOG=info NO_COLOR=1 TRADEGUARD_SIM_SCENARIO=load:500
"$bin" --data-dir "$data" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$log" "$data"' EXIT
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
sleep "$warmup"
a=$(ticks)
sleep "$window"
b=$(ticks)
hz=$(getconf CLK_TCK)
lost=$(grep -c "no usable mark" "$log" || true)
echo "app CPU ${warmup}-$((warmup + window)) s after launch: $(( (b - a) * 100 / window / hz ))% of one core; marks lost: $lost"
