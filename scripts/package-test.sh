#!/usr/bin/env bash
# Install-and-launch test of the .deb: installs it into this machine with dpkg, starts the
# installed app on the simulated venue (run it under scripts/headless.sh: private X server and
# session bus), checks the window, single instance and close-to-tray, then removes the package
# and checks nothing of it is left. `make package-test` runs it (and `make test` runs that).
#
# Usage: scripts/package-test.sh PATH.deb
set -euo pipefail
[ $# -eq 1 ] && [ -f "$1" ] || { echo "usage: $0 PATH.deb" >&2; exit 2; }
deb=$1
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
APP=/usr/bin/tradeguard-app
data=$(mktemp -d)
app_pid=""
installed=""

log() { echo "[package-test] $*"; }
fail() {
  echo "[package-test] FAIL: $*" >&2
  if [ -d "$data/logs" ]; then
    echo "--- app log (last 40 lines)" >&2
    tail -n 40 "$data"/logs/*.log >&2 || true
  fi
  exit 1
}

cleanup() {
  [ -n "$app_pid" ] && kill -TERM "$app_pid" 2>/dev/null || true
  # Leave the machine as we found it, even when a check failed.
  [ -n "$installed" ] && $SUDO dpkg -r tradeguard >/dev/null 2>&1 || true
  rm -rf "$data"
}
trap cleanup EXIT

# Wait up to $1 seconds for a condition (the rest of the arguments) to hold.
wait_for() {
  local secs=$1
  shift
  for _ in $(seq $((secs * 10))); do
    "$@" && return 0
    sleep 0.1
  done
  return 1
}
main_window() { xwininfo -root -tree | awk '/"Tradeguard": \(/ {print $1; exit}'; }
map_state() { xwininfo -id "$1" | awk '/Map State:/ {print $3}'; }
has_window() { [ -n "$(main_window)" ]; }
is_state() { [ "$(map_state "$1")" = "$2" ]; }
logged() { grep -qs "$1" "$data"/logs/*.log; }
app_count() { pgrep -c -x tradeguard-app || true; }
# Exited (a zombie until reaped counts as exited).
gone() { [ ! -e "/proc/$1" ] || grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat"; }

dpkg -s tradeguard >/dev/null 2>&1 && log "tradeguard is installed already: this test replaces it and removes it at the end"
log "installing $(basename "$deb")"
$SUDO dpkg -i "$deb" >/dev/null || fail "dpkg -i refused the package"
installed=1
version=$(dpkg-query -W -f='${Version}' tradeguard)
log "installed version $version"

for f in "$APP" /usr/bin/tradeguard /usr/share/applications/tradeguard.desktop \
  /usr/share/icons/hicolor/32x32/apps/tradeguard.png /usr/share/icons/hicolor/512x512/apps/tradeguard.png; do
  [ -e "$f" ] || fail "$f is not installed"
done
grep -q '^Exec=tradeguard-app$' /usr/share/applications/tradeguard.desktop || fail "desktop entry does not start tradeguard-app"
[ "$(/usr/bin/tradeguard --version)" = "tradeguard $version" ] || fail "the CLI's version differs from the package's ($version)"

log "starting the installed app (data in $data)"
"$APP" --data-dir "$data" >"$data/app.out" 2>&1 &
app_pid=$!
wait_for 60 has_window || fail "no Tradeguard window within 60 s"
win=$(main_window)
wait_for 10 is_state "$win" IsViewable || fail "the window is not shown"
wait_for 60 logged "guarding the simulated venue" || fail "the app did not start guarding the simulated venue"
log "window $win is up and guarding the simulated venue"

log "second launch"
timeout 30 "$APP" --data-dir "$data" >"$data/second.out" 2>&1 || fail "the second launch did not exit cleanly"
[ "$(app_count)" = 1 ] || fail "a second instance is running ($(app_count) processes)"
logged "second launch: focusing the running Tradeguard" || fail "the running instance was not told about the second launch"

log "closing the window"
python3 "$(dirname "$0")/x11_close.py" "$win" || fail "could not send the close request"
wait_for 10 is_state "$win" IsUnMapped || fail "closing the window did not hide it"
kill -0 "$app_pid" 2>/dev/null || fail "closing the window stopped the app (and the guard)"
logged "hidden to the tray, the guard keeps running" || fail "hiding to the tray was not logged"

log "launching again brings the hidden window back"
timeout 30 "$APP" --data-dir "$data" >/dev/null 2>&1 || fail "the relaunch did not exit cleanly"
wait_for 10 is_state "$win" IsViewable || fail "a second launch did not show the hidden window"

kill -TERM "$app_pid"
wait_for 15 gone "$app_pid" || fail "the app did not stop on SIGTERM"
wait "$app_pid" 2>/dev/null || true
app_pid=""

log "removing the package"
$SUDO dpkg -r tradeguard >/dev/null || fail "dpkg -r failed"
installed=""
dpkg -s tradeguard >/dev/null 2>&1 && fail "dpkg still lists tradeguard as installed"
for f in "$APP" /usr/bin/tradeguard /usr/share/applications/tradeguard.desktop; do
  [ -e "$f" ] && fail "$f is still there after removal"
done
log "ok: installed, launched, single instance, close-to-tray, removed cleanly"
