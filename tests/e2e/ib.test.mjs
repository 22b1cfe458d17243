// The desktop app on its Interactive Brokers venue, as a trader meets it (issue "On the trader's
// desk with IB"): the app starts before IB Gateway, keeps trying and connects the moment the
// gateway is up; an overnight assignment of the iron condor's short put is seen before the
// open, the strategy goes Broken with the delivered stock inside it and its emergency close is
// armed for the open; at the open (an injected clock: the app and the gateway start at 09:28:45
// New York on a trading day) the close goes out shorts first and ends flat; a gateway restart is
// a loud alert and its end is announced. The rules are live (not dry-run): the gateway must
// receive the emergency close's orders and nothing else.
//
// The gateway is `fake-ib-gateway` (crates/ibkr/src/bin): the project's fake TWS on a port,
// filling orders at the quote, driven through its stdin.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { APP_BIN, Session, startDriver, stopDriver } from "./webdriver.mjs";

const ACCOUNT = "DU1234567";
// Monday 11 January 2027, 75 s before the open: the app's clock and the gateway's both start here.
const CLOCK_START = "2027-01-11T09:28:45-05:00";

const dataDir = mkdtempSync(join(tmpdir(), "tradeguard-e2e-ib-"));
process.env.TRADEGUARD_DATA_DIR = dataDir;
process.env.HOME = mkdtempSync(join(tmpdir(), "tradeguard-e2e-ib-home-"));
process.env.TRADEGUARD_CLOCK_START = CLOCK_START;

/** A port nothing listens on (yet). */
async function freePort() {
  const srv = createServer();
  await new Promise((res) => srv.listen(0, "127.0.0.1", res));
  const { port } = srv.address();
  await new Promise((res) => srv.close(res));
  return port;
}

/** The fake gateway process: its stdout lines, and commands to its stdin. */
function startGateway(port) {
  const bin = process.env.TRADEGUARD_FAKE_GATEWAY ?? join(dirname(APP_BIN), "fake-ib-gateway");
  const child = spawn(bin, ["--port", String(port), "--account", ACCOUNT, "--clock-start", CLOCK_START], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = [];
  let buf = "";
  child.stdout.on("data", (d) => {
    buf += d.toString();
    const parts = buf.split("\n");
    buf = parts.pop();
    for (const l of parts) {
      lines.push(l);
      console.log(`gateway: ${l}`);
    }
  });
  return {
    child,
    lines,
    send: (cmd) => child.stdin.write(`${cmd}\n`),
    orders: () => lines.filter((l) => l.startsWith("order ")).map((l) => l.split(" ").slice(2).join(" ")),
    async waitLine(pred, timeoutMs = 10000) {
      const end = Date.now() + timeoutMs;
      while (Date.now() < end) {
        const hit = lines.find(pred);
        if (hit) return hit;
        if (child.exitCode !== null) throw new Error(`fake-ib-gateway exited with ${child.exitCode}`);
        await sleep(50);
      }
      throw new Error(`gateway never said it; it said:\n${lines.join("\n")}`);
    },
  };
}

describe("Tradeguard on IB: gateway after the app, an overnight assignment through the open, a restart", () => {
  let driver;
  let session;
  let gateway;
  let port;

  before(async () => {
    assert.ok(APP_BIN, "TRADEGUARD_APP_BIN must point at the built app (run through `make test-e2e`)");
    port = await freePort();
    writeFileSync(
      join(dataDir, "settings.toml"),
      `[venue]\nkind = "ib"\nibHost = "127.0.0.1"\nibPort = ${port}\nibClientId = 11\nibAccount = "${ACCOUNT}"\n`,
    );
    // The starter rules, live: with rules sending orders, none may race the assignment guard.
    const starter = readFileSync(new URL("../../config/risk.example.toml", import.meta.url), "utf8");
    const live = starter.replace(/^dry_run = true$/m, "dry_run = false");
    assert.notEqual(live, starter, "the starter rules' global dry_run line was found");
    writeFileSync(join(dataDir, "risk.toml"), `${live}\n[assignment]\nopen_delay_secs = 5\n`);
    driver = await startDriver();
    session = await Session.create(driver.base, APP_BIN);
  });

  after(async () => {
    try {
      await session?.close();
    } finally {
      if (driver) await stopDriver(driver.child);
      gateway?.child.kill("SIGTERM");
    }
  });

  it("with no gateway yet it says where it waits, when it tries next, and offers Retry", async () => {
    const wait = await session.waitForText('[data-testid="gateway-wait"]', (t) => t.includes(`127.0.0.1:${port}`), 30000);
    assert.match(wait, /next attempt in/);
    await session.waitFor('[data-testid="gateway-retry"]');
    await session.screenshot("ib-waiting-for-gateway");
  });

  it("the gateway comes up after the app: connected within seconds, the condor recognised", async () => {
    gateway = startGateway(port);
    await gateway.waitLine((l) => l.startsWith("ready "));
    const up = Date.now();
    // The retry backoff tops out at 30 s; the first attempts come every 2, 4, 8 s.
    await session.waitForText('[data-testid="connection"]', (t) => t === "Connected", 40000);
    console.log(`connected ${((Date.now() - up) / 1000).toFixed(1)} s after the gateway came up`);
    const condor = await session.waitForText('[data-testid="strategies"]', (t) => t.includes("iron condor"), 20000);
    assert.match(condor, /SPY 15JAN27/);
    assert.equal((await session.findAll('[data-testid="gateway-wait"]')).length, 0, "the waiting notice went away");
    await session.screenshot("ib-connected");
  });

  it("an overnight assignment before the open: Broken, the stock inside it, the close armed with a countdown", async () => {
    gateway.send("assign 440P 2");
    await gateway.waitLine((l) => l.startsWith("assigned "));
    const badge = await session.waitForText('[data-testid="strategy-badge"]', (t) => /broken/i.test(t), 20000);
    assert.match(badge, /assigned/i);
    assert.doesNotMatch(badge, /broken\.assigned/, "trader words, not the code");
    const countdown = await session.waitForText('[data-testid="emergency-countdown"]', (t) => /goes out in/.test(t), 20000);
    console.log(countdown);
    assert.match(
      await session.text(await session.find('[data-testid="emergency-how"]')),
      /market orders 5 s after the open/,
    );
    // One strategy: the delivered shares are inside the Broken one, not a strategy of their own.
    const rows = await session.findAll('[data-testid="strategy"]');
    assert.equal(rows.length, 1, "one strategy row");
    await session.click(await session.find('[data-testid="strategy-expand"]'));
    const legs = await session.waitForText('[data-testid="strategy-legs"]', (t) => /SPY\b/.test(t));
    assert.doesNotMatch(legs, /440 P/, "the assigned leg is gone");
    assert.match(legs, /200/);
    const banner = await session.waitForText('[data-testid="critical-banner"]', (t) => /assign/i.test(t), 20000);
    assert.match(banner, /SPY 15JAN27 440 P/);
    assert.match(banner, /at Mon 09:30:05 ET/, "the release time itself, not only a countdown that goes stale");
    // Nothing goes out before the open: no rule raced the assignment guard.
    assert.deepEqual(gateway.orders(), [], "no order before the open");
    await session.screenshot("ib-assignment-armed");
  });

  it("at the open the close goes out shorts first and ends flat; the gateway received nothing else", async () => {
    await session.waitFor('[data-testid="emergency-close"][data-phase="completed"]', 120000);
    const done = await session.text(await session.find('[data-testid="emergency-close"]'));
    assert.match(done, /SPY 15JAN27 iron condor 435\/440\/460\/465/, "named as the tables name it");
    assert.doesNotMatch(done, /\d{12,}/, "no internal id");
    const orders = gateway.orders();
    console.log(orders);
    assert.deepEqual(
      [...orders].sort(),
      ["BUY 2 SPY 20270115 460C", "SELL 2 SPY 20270115 435P", "SELL 2 SPY 20270115 465C", "SELL 200 SPY"].sort(),
      "the emergency close's four orders, each once",
    );
    assert.equal(orders[0], "BUY 2 SPY 20270115 460C", "the short call is bought back first");
    await session.screenshot("ib-closed-at-open");
  });

  it("a gateway restart is a critical alert after a few seconds, and its end is announced", async () => {
    gateway.send("down");
    await gateway.waitLine((l) => l === "down");
    await session.waitForText('[data-testid="connection"]', (t) => t !== "Connected", 20000);
    const banner = await session.waitForText(
      '[data-testid="critical-banner"]',
      (t) => /connection/i.test(t) && /lost/i.test(t),
      30000,
    );
    console.log(banner);
    await session.screenshot("ib-connection-lost");
    gateway.send("up");
    await session.waitForText('[data-testid="connection"]', (t) => t === "Connected", 60000);
    await session.waitForText('[data-testid="alert-list"]', (t) => /restored/i.test(t), 20000);
    await session.screenshot("ib-connection-restored");
    assert.equal(gateway.orders().length, 4, "no order after the restart");
  });
});
