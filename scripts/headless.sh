#!/usr/bin/env bash
# Runs a command against a private X server (Xvfb) and a private session bus (dbus-daemon), then
# leaves nothing behind: the real-app E2E and the package test run under it.
#
# Why not `xvfb-run dbus-run-session -- CMD`: a CI run once passed every E2E test and then never
# returned (killed at its time limit). Whatever outlived the tests (WebKit helpers, the accessibility
# bus, a daemon stuck exiting) is out of reach there. Here everything runs in its own process session,
# is stopped with SIGTERM then SIGKILL at the end whatever happened, and the tests have a hard time
# limit, so the run always ends and its exit status is the tests' own.
#
# Usage: scripts/headless.sh CMD [ARGS...]
# HEADLESS_TIMEOUT: seconds CMD may take in all (default 600); exit status 124 when it ran out.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 CMD [ARGS...]" >&2; exit 2; }

# Become a session leader so that every descendant can be found, and stopped, by session id.
if [ -z "${HEADLESS_SESSION:-}" ]; then
  HEADLESS_SESSION=1 exec setsid --wait "$0" "$@"
fi

log() { echo "[headless] $*" >&2; }
work=$(mktemp -d)

# The other processes of this session, one pid per line (pgrep excludes itself; this shell and the
# subshell that asks are filtered out).
others() {
  pgrep -s "$$" >"$work/pids" || true
  grep -vx -e "$$" -e "$BASHPID" "$work/pids" || true
}

# Stop everything else in this session: SIGTERM, up to 2 s of grace, then SIGKILL.
stop_session() {
  local left
  left=$(others)
  if [ -n "$left" ]; then
    kill -TERM $left 2>/dev/null || true
    for _ in $(seq 20); do
      left=$(others)
      [ -z "$left" ] && break
      sleep 0.1
    done
    if [ -n "$left" ]; then
      log "still running 2 s after SIGTERM, killing: $(ps -o pid=,comm= -p "$(echo $left | tr ' ' ,)" | tr -s ' \n' ' ')"
      kill -KILL $left 2>/dev/null || true
    fi
  fi
  rm -rf "$work"
}
trap stop_session EXIT

# Wait up to 10 s for a daemon to write its first line into a file.
first_line() {
  local file=$1 what=$2
  for _ in $(seq 100); do
    if [ -s "$file" ] && [ "$(wc -l < "$file")" -ge 1 ]; then head -n1 "$file"; return; fi
    sleep 0.1
  done
  log "$what did not start"
  exit 1
}

Xvfb -displayfd 3 -screen 0 1280x900x24 -nolisten tcp 3>"$work/display" 2>"$work/xvfb.log" &
display=$(first_line "$work/display" Xvfb)
export DISPLAY=":$display"

dbus-daemon --session --nofork --nopidfile --print-address=3 3>"$work/bus" &
DBUS_SESSION_BUS_ADDRESS=$(first_line "$work/bus" dbus-daemon)
export DBUS_SESSION_BUS_ADDRESS

# No accessibility bus: GTK would start at-spi-bus-launcher, one more daemon to outlive the run.
export NO_AT_BRIDGE=1
# Xvfb has no GPU: WebKitGTK's DMA-BUF renderer under it left WebDriver screenshots hanging now
# and then; render in software through the shared-memory path instead.
export WEBKIT_DISABLE_DMABUF_RENDERER=1 LIBGL_ALWAYS_SOFTWARE=1
# A Secret Service on the bus, its login keyring unlocked and kept in this run's directory: the
# app asks the keychain for alert-channel secrets, and a keyring D-Bus starts on demand has no
# unlocked collection, so it would show a password prompt nobody answers (the app waiting on it,
# the prompt holding the screen). In this session (not daemonized), so it is stopped with it.
if command -v gnome-keyring-daemon >/dev/null 2>&1; then
  mkdir -p "$work/keyring"
  printf 'headless' | HOME="$work/keyring" XDG_DATA_HOME="$work/keyring" \
    gnome-keyring-daemon --foreground --unlock --components=secrets >/dev/null 2>&1 &
  for _ in $(seq 50); do
    dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
      org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q 'boolean true' && break
    sleep 0.1
  done
fi

log "X display $DISPLAY, session bus $DBUS_SESSION_BUS_ADDRESS"

set +e
timeout --kill-after=10 "${HEADLESS_TIMEOUT:-600}" "$@"
rc=$?
set -e
[ "$rc" = 124 ] && log "$1 did not finish within ${HEADLESS_TIMEOUT:-600} s"
exit "$rc"
