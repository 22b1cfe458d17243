#!/usr/bin/env bash
# Installs what `make run` / `make test` need and a fresh Debian 12 machine lacks.
# Idempotent and quick when everything is present. Uses sudo when not root.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[deps] %s\n' "$*"; }

APT_PACKAGES=(
  # Tauri (WebKitGTK, GTK, tray)
  libwebkit2gtk-4.1-dev libgtk-3-dev librsvg2-dev libayatana-appindicator3-dev libsoup-3.0-dev libssl-dev pkg-config
  # Real-app tests: virtual display, WebDriver for WebKitGTK, a private session bus
  xvfb xauth webkit2gtk-driver dbus-x11
  # Package test: window state (xwininfo)
  x11-utils
  # Alert channel secrets: a Secret Service on the tests' private session bus
  gnome-keyring
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  log "installing apt packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# UI packages: npm ci when node_modules is missing or older than the lock file.
if [ ! -d ui/node_modules ] || [ ui/package-lock.json -nt ui/node_modules/.package-lock.json ]; then
  log "npm ci in ui/"
  (cd ui && npm ci --no-audit --no-fund --loglevel=error)
fi

# tauri-driver: the WebDriver bridge the real-app E2E tests talk to.
if ! command -v tauri-driver >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/tauri-driver" ]; then
  log "cargo install tauri-driver"
  cargo install tauri-driver --version '^2' --locked --quiet
fi
