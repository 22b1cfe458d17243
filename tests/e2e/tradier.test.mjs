// The desktop app on its Tradier venue (issue "Tradier venue"): the access token stored in the
// OS keychain (a private Secret Service on the test's own session bus) with `tradeguard secret`,
// the app started on the Tradier venue against `fake-tradier` (crates/tradier/src/bin: the
// project's fake Tradier on a port, seed 000's iron condor, market orders filled at its quotes):
// the positions and the condor show, Settings shows the Tradier venue with its token stored and
// a passing connection test, and a confirmed flatten of the condor ends flat at the fake.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { startFake, storeSecret, withPrivateKeyring } from "./venues.mjs";
import { APP_BIN, Session, startDriver, stopDriver } from "./webdriver.mjs";

const ACCOUNT = "VA000001";
const TOKEN = "fake-token";

const dataDir = mkdtempSync(join(tmpdir(), "tradeguard-e2e-tradier-"));
process.env.TRADEGUARD_DATA_DIR = dataDir;
process.env.HOME = mkdtempSync(join(tmpdir(), "tradeguard-e2e-tradier-home-"));
// A weekday in the regular session, whatever the hour the test runs at: the confirmed flatten
// goes out at once (outside the session it is rightly armed for the open).
process.env.TRADEGUARD_CLOCK_START = "2026-12-07T10:30:00-05:00";

/** The fake's positions, read over its REST API as the adapter reads them. */
async function positionsAt(url) {
  const res = await fetch(`${url}/accounts/${ACCOUNT}/positions`, {
    headers: { Authorization: `Bearer ${TOKEN}`, Accept: "application/json" },
  });
  return (await res.json()).positions;
}

describe("Tradeguard on Tradier: token in the keychain, the condor shown, a flatten that ends flat", () => {
  let driver;
  let session;
  let fake;
  let keyring;

  before(async () => {
    assert.ok(APP_BIN, "TRADEGUARD_APP_BIN must point at the built app (run through `make test-e2e`)");
    // A bus and an unlocked Secret Service of this test's own (the app started by tauri-driver
    // from this process uses it too), and the token stored the way a trader does.
    keyring = await withPrivateKeyring();
    const stored = storeSecret("tradier", ACCOUNT, TOKEN);
    assert.match(stored, /venues\/tradier\/VA000001/);
    fake = await startFake("fake-tradier", "fake Tradier");
    writeFileSync(
      join(dataDir, "settings.toml"),
      `[venue]\nkind = "tradier"\ntradierAccount = "${ACCOUNT}"\ntradierUrl = "${fake.url}"\n`,
    );
    // No rules, not in dry-run: a confirmed flatten goes out.
    writeFileSync(join(dataDir, "risk.toml"), "dry_run = false\n");
    driver = await startDriver();
    session = await Session.create(driver.base, APP_BIN);
  });

  after(async () => {
    try {
      await session?.close();
    } finally {
      if (driver) await stopDriver(driver.child);
      fake?.child.kill("SIGTERM");
      // The keyring daemon leaves with its bus.
      keyring?.bus.kill("SIGTERM");
    }
  });

  it("connects with the keychain's token: the venue, the positions and the condor", async () => {
    await session.waitForText('[data-testid="connection"]', (t) => t === "Connected", 60000);
    const condor = await session.waitForText('[data-testid="strategies"]', (t) => t.includes("iron condor"), 30000);
    assert.match(condor, /SPY 20DEC30/);
    const table = await session.waitForText('[data-testid="positions"]', (t) => t.includes("SPY 20DEC30 440 P"), 20000);
    for (const leg of ["435 P", "460 C", "465 C"]) assert.ok(table.includes(`SPY 20DEC30 ${leg}`), `${leg}: ${table}`);
    await session.screenshot("tradier-connected");
  });

  it("Settings shows the Tradier venue: the token is stored, the connection test names the account", async () => {
    await session.click(await session.waitFor('[data-testid="nav-settings"]'));
    const radio = await session.waitFor('[data-testid="venue-tradier"]');
    assert.equal(await session.cmd("GET", `/element/${radio}/property/checked`), true, "the Tradier venue is the saved one");
    await session.click(await session.find('[data-testid="tradier-check-token"]'));
    await session.waitForText('[data-testid="tradier-token-status"]', (t) => t.includes("is in the OS keychain"));
    await session.click(await session.find('[data-testid="tradier-test"]'));
    const ok = await session.waitForText('[data-testid="tradier-test-status"]', (t) => t.includes(ACCOUNT), 20000);
    assert.match(ok, /\d+ ms/);
    await session.screenshot("settings-tradier");
    await session.click(await session.waitFor('[data-testid="nav-dashboard"]'));
  });

  it("a confirmed flatten of the condor ends flat at Tradier", async () => {
    const condor = '[data-testid="strategy"][data-strategy-name*="iron condor"]';
    await session.click(await session.waitFor(`${condor} [data-testid="strategy-flatten"]`));
    const orders = await session.waitForText('[data-testid="flatten-orders"]', (t) => /BUY/.test(t));
    assert.ok(orders.indexOf("BUY") < orders.indexOf("SELL"), `buys first: ${orders}`);
    await session.click(await session.find('[data-testid="flatten-confirm"]'));
    const status = await session.waitForText('[data-testid="flatten-status"]', (t) => /done/i.test(t), 60000);
    assert.match(status, /done/i);
    await session.screenshot("tradier-flatten-done");
    let held;
    for (let i = 0; i < 50; i++) {
      held = await positionsAt(fake.url);
      if (held === "null") break;
      await sleep(200);
    }
    assert.equal(held, "null", `flat at the fake Tradier: ${JSON.stringify(held)}`);
  });
});
