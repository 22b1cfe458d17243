// A session bus and a Secret Service of a test's own, for the venues whose secret lives in the
// OS keychain (Tradier's token, ProjectX's API key).
import { execFileSync, spawn } from "node:child_process";

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
