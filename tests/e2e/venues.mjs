// Support for the venues that log in with a secret (Tradier's token, ProjectX's API key): a
// session bus and a Secret Service of a test's own, and their fake servers as processes.
import { execFileSync, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { APP_BIN } from "./webdriver.mjs";

/**
 * A session bus of this test's own, with a Secret Service on it (GNOME Keyring, unlocked, its
 * keyrings in this test's HOME). The shared bus of scripts/headless.sh may already carry a
 * keyring the app started earlier through D-Bus activation, one with no unlocked collection:
 * storing into it would wait for a password prompt nobody answers.
 */
export function privateKeyring() {
  const bus = spawn("dbus-daemon", ["--session", "--nofork", "--nopidfile", "--print-address=1"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let buf = "";
    bus.stdout.on("data", (d) => {
      buf += d.toString();
      const line = buf.split("\n")[0];
      if (buf.includes("\n") && line) resolve({ bus, address: line.trim() });
    });
    bus.on("exit", (code) => reject(new Error(`dbus-daemon exited with ${code}`)));
  });
}

/** Starts the bus and an unlocked GNOME Keyring on it; the app and children started from this
 * process use it. */
export async function withPrivateKeyring() {
  const keyring = await privateKeyring();
  process.env.DBUS_SESSION_BUS_ADDRESS = keyring.address;
  execFileSync("sh", ["-c", "printf test | gnome-keyring-daemon --unlock --components=secrets --daemonize >/dev/null"]);
  return keyring;
}

/**
 * Starts the fake venue `bin` (built beside the app) on a free port; resolves with the process
 * and its URL once its first line `<banner>: <url>` is out.
 */
export function startFake(bin, banner) {
  const child = spawn(join(dirname(APP_BIN), bin), ["0"], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    let buf = "";
    child.stdout.on("data", (d) => {
      buf += d.toString();
      const m = buf.match(new RegExp(`${banner}: (http://\\S+)`));
      if (m) resolve({ child, url: m[1] });
    });
    child.on("exit", (code) => reject(new Error(`${bin} exited with ${code}: ${buf}`)));
  });
}

/** Stores a venue's secret the way a trader does: `tradeguard secret <venue> --account <who>`,
 * the secret on standard input; returns what the command said. */
export function storeSecret(venue, who, secret) {
  return execFileSync(join(dirname(APP_BIN), "tradeguard"), ["secret", venue, "--account", who], {
    input: `${secret}\n`,
  }).toString();
}
