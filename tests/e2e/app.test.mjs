// Real-app end-to-end: the built desktop binary under Xvfb, driven through tauri-driver.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createServer } from "node:net";
import { createServer as createHttpServer } from "node:http";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { APP_BIN, Session, startDriver, stopDriver } from "./webdriver.mjs";

// Every run starts from an empty database (the app reads TRADEGUARD_DATA_DIR; tauri-driver
// passes its environment on to the app).
process.env.TRADEGUARD_DATA_DIR = mkdtempSync(join(tmpdir(), "tradeguard-e2e-"));
// "Start at login" writes ~/.config/autostart/Tradeguard.desktop: the app gets a throwaway home so
// the test never touches the machine's real login items.
process.env.HOME = mkdtempSync(join(tmpdir(), "tradeguard-e2e-home-"));

// Off-desk alerts: an ntfy channel (no secret needed) pointing at a receiver in this process,
// configured in the alerts file before the app starts, as Settings → Alerts writes it.
const ntfyHits = [];
const ntfy = await new Promise((resolve) => {
  const srv = createHttpServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      ntfyHits.push({ path: req.url, title: req.headers["title"] ?? "", priority: req.headers["priority"] ?? "", body });
      res.end("{}");
    });
  }).listen(0, "127.0.0.1", () => resolve(srv));
});
writeFileSync(
  join(process.env.TRADEGUARD_DATA_DIR, "alerts.toml"),
  `[[channel]]\nname = "phone"\ntype = "ntfy"\nserver = "http://127.0.0.1:${ntfy.address().port}"\ntopic = "tg-e2e"\n`,
);

/** Records freedesktop Notify calls on the session bus (scripts/headless.sh gives the run a private one). */
function monitorNotifications() {
  const child = spawn("dbus-monitor", ["--session", "interface='org.freedesktop.Notifications',member='Notify'"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d.toString()));
  return { child, text: () => out };
}

describe("Tradeguard desktop app", () => {
  let driver;
  let session;
  let notifications;

  before(async () => {
    assert.ok(APP_BIN, "TRADEGUARD_APP_BIN must point at the built app (run through `make test-e2e`)");
    assert.ok(process.env.DBUS_SESSION_BUS_ADDRESS, "run under a private session bus (scripts/headless.sh, via make test-e2e)");
    notifications = monitorNotifications();
    driver = await startDriver();
    session = await Session.create(driver.base, APP_BIN);
  });

  after(async () => {
    try {
      await session?.close();
    } finally {
      if (driver) await stopDriver(driver.child);
      notifications?.child.kill("SIGTERM");
      ntfy.close();
    }
  });

  it("first screen shows name and version from the backend", async () => {
    const name = await session.waitForText('[data-testid="app-name"]', (t) => t === "Tradeguard");
    assert.equal(name, "Tradeguard");
    const version = await session.waitForText('[data-testid="app-version"]', (t) => /^v\d+\.\d+\.\d+/.test(t));
    assert.match(version, /^v\d+\.\d+\.\d+/);
    const file = await session.screenshot("first-screen");
    console.log(`screenshot: ${file}`);
  });

  it("first screen shows live positions from the simulated venue", async () => {
    const venue = await session.waitForText('[data-testid="venue"]', (t) => t.includes("sim"));
    assert.match(venue, /Connected/);
    const table = await session.waitForText('[data-testid="positions"]', (t) => t.includes("SPY 21MAR25 590 P"));
    // The demo account: an iron condor, a put credit spread, a short strangle and stock.
    for (const leg of ["540 P", "550 P", "600 C", "610 C", "580 P", "590 P", "530 P", "620 C"]) {
      assert.ok(table.includes(`SPY 21MAR25 ${leg}`), `missing leg ${leg}`);
    }
    // Marks are live: the venue clock moves (10x), so the displayed venue time changes.
    const later = await session.waitForText('[data-testid="venue"]', (t) => t !== venue, 10000);
    assert.notEqual(later, venue);
    // Every periodic guard task is checking on time.
    const health = await session.waitForText('[data-testid="guard-health"]', (t) => t === "enforcing", 15000);
    assert.equal(health, "enforcing");
    assert.match(await session.text(await session.find('[data-testid="rules-path"]')), /risk\.toml$/);
    // First start: the starter rules run in global dry-run, and the card says so.
    assert.match(await session.text(await session.waitFor('[data-testid="dry-run"]')), /DRY-RUN/);
    await session.screenshot("positions");
  });

  it("Settings' About card: a live heartbeat, and Refresh makes one round trip to Rust", async () => {
    // The Dashboard holds the trader's positions only (no developer card).
    assert.equal((await session.findAll('[data-testid="refresh-status"]')).length, 0);
    await session.click(await session.waitFor('[data-testid="nav-settings"]'));
    // The heartbeat event is pushed by the backend every second.
    const beat = await session.waitForText('[data-testid="heartbeat"]', (t) => /\d/.test(t));
    assert.match(beat, /s$/);
    const before = Number(await session.waitForText('[data-testid="requests"]', (t) => /^\d+$/.test(t)));
    const btn = await session.waitFor('[data-testid="refresh-status"]');
    await session.click(btn);
    const after = Number(
      await session.waitForText('[data-testid="requests"]', (t) => /^\d+$/.test(t) && Number(t) > before),
    );
    assert.equal(after, before + 1, "the backend counted exactly one more request");
    const uptime = await session.text(await session.find('[data-testid="uptime"]'));
    assert.match(uptime, /^\d+(\.\d)? s$|min/);
    await session.click(await session.waitFor('[data-testid="nav-dashboard"]'));
  });

  it("the iron condor's detail shows its payoff chart, the stress grid against the margin buffer and the rules", async () => {
    await session.click(await session.waitFor('[data-testid="nav-dashboard"]'));
    const condor = '[data-testid="strategy"][data-strategy-name*="iron condor"]';
    await session.waitFor(condor, 20000);
    await session.click(await session.find(`${condor} [data-testid^="strategy-details-"]`));
    const name = await session.waitForText('[data-testid="detail-name"]', (t) => t.includes("iron condor"));
    assert.match(name, /SPY/);
    // uPlot drew the payoff chart (a canvas inside the detail screen).
    await session.waitFor('[data-testid="strategy-detail"] canvas', 15000);
    const summary = await session.waitForText('[data-testid="stress-summary"]', (t) => /Worst case/.test(t), 15000);
    assert.match(summary, /margin buffer/);
    const cells = await session.findAll('[data-testid="stress-row"]');
    assert.equal(cells.length, 3, "one row per IV shock");
    // The starter rules apply to it (profit target, stop loss, ...), each with its distance.
    const rules = await session.waitForText('[data-testid="detail-rules"]', (t) => /profit target/.test(t));
    assert.match(rules, /stop loss/);
    await sleep(1000);
    await session.screenshot("strategy-detail");
    await session.click(await session.find('[data-testid="detail-back"]'));
    await session.waitFor('[data-testid="strategies"]');
  });

  it("flattening the iron condor: preview lists the exact orders, confirm closes it, progress shows in place", async () => {
    // Leave dry-run (the starter rules' default) with no rules at all, through the rules file the
    // guard reloads without a restart; the DRY-RUN badge goes away when it has.
    await session.click(await session.waitFor('[data-testid="nav-dashboard"]'));
    await session.waitForText('[data-testid="rules-path"]', (t) => t.endsWith("risk.toml"));
    assert.equal((await session.findAll('[data-testid="dry-run"]')).length, 1, "dry-run before the edit");
    writeFileSync(join(process.env.TRADEGUARD_DATA_DIR, "risk.toml"), "dry_run = false\n");
    for (let i = 0; i < 100 && (await session.findAll('[data-testid="dry-run"]')).length > 0; i++) await sleep(200);
    assert.equal((await session.findAll('[data-testid="dry-run"]')).length, 0, "the guard left dry-run");

    const strategies = await session.waitForText('[data-testid="strategies"]', (t) => t.includes("iron condor"));
    const condor = '[data-testid="strategy"][data-strategy-name*="iron condor"]';
    await session.waitFor(condor).catch((e) => {
      throw new Error(`${e.message}\nstrategies shown: ${strategies}`);
    });
    await session.click(await session.find(`${condor} [data-testid="strategy-flatten"]`));
    const title = await session.waitForText('[data-testid="flatten-title"]', (t) => t.includes("iron condor"));
    assert.match(title, /Flatten SPY .*iron condor/);
    const orders = await session.waitForText('[data-testid="flatten-orders"]', (t) => /BUY/.test(t));
    // Shorts are bought back before the protection is sold.
    for (const leg of ["550 P", "600 C", "540 P", "610 C"]) assert.ok(orders.includes(leg), `order for ${leg}: ${orders}`);
    assert.ok(orders.indexOf("BUY") < orders.indexOf("SELL"), `buys first: ${orders}`);
    await session.screenshot("flatten-preview");
    await session.click(await session.find('[data-testid="flatten-confirm"]'));
    const status = await session.waitForText('[data-testid="flatten-status"]', (t) => /done/i.test(t), 30000);
    assert.match(status, /done/i);
    await session.screenshot("flatten-done");
    await session.click(await session.waitFor('[data-testid="flatten-close"]'));
    // The condor's legs are gone from the positions.
    const table = await session.waitForText('[data-testid="positions"]', (t) => !t.includes("SPY 21MAR25 540 P"), 15000);
    for (const leg of ["540 P", "550 P", "600 C", "610 C"]) {
      assert.ok(!table.includes(`SPY 21MAR25 ${leg}`), `leg ${leg} still open`);
    }
    assert.ok(table.includes("SPY 21MAR25 530 P"), "the strangle is untouched");
    await session.screenshot("dashboard-after-flatten");
  });

  it("the Orders tab shows the flatten's order group with every leg filled, and its executions", async () => {
    await session.click(await session.waitFor('[data-testid="nav-orders"]'));
    const groups = await session.waitForText('[data-testid="groups"]', (t) => /flatten|close/i.test(t) && /completed/i.test(t), 15000);
    assert.match(groups, /completed/i);
    await session.click(await session.find('[data-testid="group"] [data-testid="group-toggle"]'));
    const legs = await session.waitForText('[data-testid="legs"]', (t) => /filled/i.test(t));
    for (const leg of ["550 P", "600 C", "540 P", "610 C"]) assert.ok(legs.includes(leg), `leg ${leg} in the group: ${legs}`);
    const executions = await session.waitForText('[data-testid="executions"]', (t) => /SPY/.test(t), 15000);
    assert.match(executions, /buy/i);
    await session.screenshot("orders");
    await session.click(await session.find('[data-testid="nav-dashboard"]'));
  });

  it("an assignment in the simulated venue raises the banner and an OS notification; acknowledge clears it", async () => {
    const summary = await session.waitFor('[data-testid="sim-actions"] summary');
    await session.click(summary);
    const button = await session.waitFor('[data-testid="sim-assign"][data-instrument*="P00590000"]');
    const clickedAt = Date.now();
    await session.click(button);
    const banner = await session.waitForText('[data-testid="critical-banner"]', (t) => t.includes("SPY 21MAR25 590 P"), 15000);
    assert.match(banner, /ASSIGNMENT/);
    assert.match(banner, /emergency close/i);
    const bannerMs = Date.now() - clickedAt;
    // The desktop notification went out on the session bus.
    let text = "";
    for (let i = 0; i < 50 && !/ASSIGNMENT: SPY 21MAR25 590 P/.test(text); i++) {
      await sleep(100);
      text = notifications.text();
    }
    assert.match(text, /ASSIGNMENT: SPY 21MAR25 590 P/, "a Notify call with the assignment title");
    console.log(`assignment click -> banner in ${bannerMs} ms`);
    await session.screenshot("assignment-banner");
    // Acknowledge every critical alert of this assignment; the banner row goes away.
    // No banner at all once no critical alert is open.
    const rows = async () =>
      session
        .find('[data-testid="critical-banner"]')
        .then((b) => session.text(b))
        .catch(() => "");
    for (let i = 0; i < 10 && (await rows()).includes("SPY 21MAR25 590 P"); i++) {
      // The banner goes away with its last critical alert, possibly between the two reads.
      const ack = await session.find('[data-testid="critical-banner"] button').catch(() => null);
      if (!ack) break;
      await session.click(ack);
      await sleep(300);
    }
    assert.ok(!(await rows()).includes("SPY 21MAR25 590 P assigned"), "the acknowledged assignment left the banner");
    const history = await session.waitForText('[data-testid="alert-list"]', (t) => t.includes("SPY 21MAR25 590 P"));
    assert.match(history, /acknowledged/, "the alert stays in the history, acknowledged");
  });

  it("the assignment reached the phone channel; Settings → Alerts shows it sent and its Test button delivers", async () => {
    for (let i = 0; i < 100 && !ntfyHits.some((h) => h.title.includes("ASSIGNMENT")); i++) await sleep(100);
    const hit = ntfyHits.find((h) => h.title.includes("ASSIGNMENT"));
    assert.ok(hit, `the assignment was pushed to ntfy; got ${JSON.stringify(ntfyHits.map((h) => h.title))}`);
    assert.equal(hit.path, "/tg-e2e");
    assert.equal(hit.priority, "5");
    assert.match(hit.body, /What to do:/);
    await session.click(await session.waitFor('[data-testid="nav-settings"]'));
    const state = await session.waitForText('[data-testid="channel-state-phone"]', (t) => /[1-9]\d* sent/.test(t));
    assert.match(state, /sent/);
    const before = ntfyHits.length;
    await session.click(await session.find('[data-testid="channel-phone"] button'));
    for (let i = 0; i < 100 && ntfyHits.length === before; i++) await sleep(100);
    assert.ok(ntfyHits.slice(before).some((h) => h.title.includes("test message")), "the Test button sent a test message");
    await session.screenshot("settings-alerts");
    await session.click(await session.find('[data-testid="nav-dashboard"]'));
  });

  it("settings show where files live; start at login writes the autostart entry; diagnostics export a file", async () => {
    await session.click(await session.waitFor('[data-testid="nav-settings"]'));
    const dataDir = await session.waitForText('[data-testid="settings-data-dir"]', (t) => t.length > 0);
    assert.equal(dataDir, process.env.TRADEGUARD_DATA_DIR);
    const logDir = await session.text(await session.find('[data-testid="settings-log-dir"]'));
    assert.equal(logDir, join(process.env.TRADEGUARD_DATA_DIR, "logs"));
    assert.ok(readdirSync(logDir).some((f) => /^tradeguard\..*\.log$/.test(f)), "a log file in the log folder");
    await session.screenshot("settings");

    const autostart = join(process.env.HOME, ".config", "autostart");
    const entries = () => (existsSync(autostart) ? readdirSync(autostart).filter((f) => f.endsWith(".desktop")) : []);
    assert.deepEqual(entries(), [], "start at login is off by default");
    const toggle = await session.waitFor('[data-testid="start-at-login"]');
    await session.click(toggle);
    await session.click(await session.find('[data-testid="save-settings"]'));
    await session.waitFor('[data-testid="settings-saved"]');
    assert.equal(entries().length, 1, "an autostart entry after turning start at login on");
    const entry = readFileSync(join(autostart, entries()[0]), "utf8");
    assert.match(entry, /Exec=.*tradeguard-app/);
    assert.match(readFileSync(join(process.env.TRADEGUARD_DATA_DIR, "settings.toml"), "utf8"), /startAtLogin = true/);

    await session.click(await session.find('[data-testid="export-diagnostics"]'));
    const path = await session.waitForText('[data-testid="diagnostics-path"]', (t) => t.endsWith(".txt"));
    const report = readFileSync(path, "utf8");
    assert.match(report, /# Tradeguard diagnostics/);
    assert.match(report, /## Guard health and last reconciliation/);

    // IB venue: a connection test against a port nothing listens on says what failed, with its code.
    const closedPort = await new Promise((resolve) => {
      const srv = createServer().listen(0, "127.0.0.1", () => {
        const { port } = srv.address();
        srv.close(() => resolve(port));
      });
    });
    await session.click(await session.waitFor('[data-testid="venue-ib"]'));
    const port = await session.waitFor('[data-testid="venue-port"]');
    await session.type(port, String(closedPort));
    // A WebDriver clear of a React-controlled field can be undone by a render in flight (the port
    // was then appended to "4002"): set the value as an input event would until React holds it.
    const setValue = `const [el, v] = arguments;
      Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value").set.call(el, v);
      el.dispatchEvent(new Event("input", { bubbles: true }));`;
    for (let i = 0; i < 20 && (await session.cmd("GET", `/element/${port}/property/value`)) !== String(closedPort); i++) {
      await session.cmd("POST", "/execute/sync", {
        script: setValue,
        args: [{ "element-6066-11e4-a52f-4a5bf97b0f1d": port }, String(closedPort)],
      });
      await sleep(200);
    }
    // React has the typed value (not only the DOM) once the field shows it and the button is enabled.
    for (let i = 0; i < 50 && (await session.cmd("GET", `/element/${port}/property/value`)) !== String(closedPort); i++) await sleep(100);
    assert.equal(await session.cmd("GET", `/element/${port}/property/value`), String(closedPort));
    await sleep(300);
    await session.click(await session.find('[data-testid="venue-test"]'));
    const failure = await session.waitForText('[data-testid="venue-test-error"]', (t) => t.includes(String(closedPort)), 30000);
    assert.match(failure, /ib\./, "the adapter's error code is shown");
    await session.screenshot("settings-venue");
    await session.click(await session.find('[data-testid="venue-sim"]'));

    // Off again: the entry goes away.
    await session.click(await session.find('[data-testid="start-at-login"]'));
    await session.click(await session.find('[data-testid="save-settings"]'));
    for (let i = 0; i < 30 && entries().length > 0; i++) await sleep(100);
    assert.deepEqual(entries(), [], "no autostart entry after turning it off");
    await session.click(await session.find('[data-testid="nav-dashboard"]'));
  });

});
