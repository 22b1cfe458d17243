// The desktop app on a prop-firm futures account through ProjectX (issue "ProjectX venue and
// futures"): the API key stored in the OS keychain (a private Secret Service) with
// `tradeguard secret projectx`, the app started on the ProjectX venue against `fake-projectx`
// (crates/projectx/src/bin: 5 MNQ long, market orders filled at its quote) with a live rule
// `max_contracts = 2`: the guard auto-flattens the position to 2 with one order, and the
// dashboard shows the future and the rule's decision. Then the market falls through the
// `trailing_max_loss` floor: the guard flattens the account and locks opening orders, and the
// trader lifts the lock from the Guard card after reading why.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { startFake, storeSecret, withPrivateKeyring } from "./venues.mjs";
import { APP_BIN, Session, startDriver, stopDriver } from "./webdriver.mjs";

const USER = "trader";
const KEY = "fake-key";
const ACCOUNT = "50KTC-V2-FAKE-1";

const dataDir = mkdtempSync(join(tmpdir(), "tradeguard-e2e-projectx-"));
process.env.TRADEGUARD_DATA_DIR = dataDir;
process.env.HOME = mkdtempSync(join(tmpdir(), "tradeguard-e2e-projectx-home-"));
delete process.env.TRADEGUARD_CLOCK_START;

/** The fake's open positions and orders, read over its REST API as the adapter reads them. */
async function atFake(url) {
  const post = async (path, body, token) =>
    (
      await fetch(`${url}/api/${path}`, {
        method: "POST",
        headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify(body),
      })
    ).json();
  const { token } = await post("Auth/loginKey", { userName: USER, apiKey: KEY });
  const { positions } = await post("Position/searchOpen", { accountId: 7001 }, token);
  const { orders } = await post("Order/search", { accountId: 7001 }, token);
  return { positions, orders };
}

describe("Tradeguard on ProjectX: the API key in the keychain, an MNQ position over max contracts auto-flattened", () => {
  let driver;
  let session;
  let fake;
  let keyring;

  before(async () => {
    assert.ok(APP_BIN, "TRADEGUARD_APP_BIN must point at the built app (run through `make test-e2e`)");
    keyring = await withPrivateKeyring();
    const stored = storeSecret("projectx", USER, KEY);
    assert.match(stored, /venues\/projectx\/trader/);
    fake = await startFake("fake-projectx", "fake ProjectX");
    writeFileSync(
      join(dataDir, "settings.toml"),
      `[venue]\nkind = "projectx"\nprojectxUser = "${USER}"\nprojectxAccount = "${ACCOUNT}"\nprojectxApi = "${fake.url}"\n`,
    );
    writeFileSync(
      join(dataDir, "risk.toml"),
      'dry_run = false\n[[max_contracts]]\nid = "mnq-max-2"\naction = "flatten"\nmax_contracts = 2\n' +
        '[[trailing_max_loss]]\nid = "mll"\naction = "flatten"\nmax_loss = 2000\nstop_at = 50000\n',
    );
    driver = await startDriver();
    session = await Session.create(driver.base, APP_BIN);
  });

  after(async () => {
    try {
      await session?.close();
    } finally {
      if (driver) await stopDriver(driver.child);
      fake?.child.kill("SIGTERM");
      keyring?.bus.kill("SIGTERM");
    }
  });

  it("connects with the keychain's key and reduces 5 MNQ to the rule's 2 with one order", async () => {
    await session.waitForText('[data-testid="connection"]', (t) => t === "Connected", 60000);
    let at;
    for (let i = 0; i < 100; i++) {
      at = await atFake(fake.url);
      if (at.positions.length === 1 && at.positions[0].size === 2) break;
      await sleep(200);
    }
    assert.equal(at.positions[0]?.size, 2, `reduced to 2 at the fake: ${JSON.stringify(at)}`);
    const ours = at.orders.filter((o) => o.customTag?.startsWith("tg-"));
    assert.equal(ours.length, 1, `one order: ${JSON.stringify(at.orders)}`);
    assert.deepEqual([ours[0].side, ours[0].size, ours[0].type], [1, 3, 2], "sell 3 at market");
    // The row reads "MNQ 20261218 FUT", then its quantity, "+5" before and "+2" after (the
    // cells run together in the text).
    await session.waitForText('[data-testid="positions"]', (t) => t.includes("MNQ 20261218 FUT+2") && !t.includes("FUT+5"), 20000);
    await session.screenshot("projectx-max-contracts");
  });

  it("Settings shows the ProjectX venue with its key stored and a passing connection test", async () => {
    await session.click(await session.waitFor('[data-testid="nav-settings"]'));
    const radio = await session.waitFor('[data-testid="venue-projectx"]');
    assert.equal(await session.cmd("GET", `/element/${radio}/property/checked`), true);
    await session.click(await session.find('[data-testid="projectx-check-key"]'));
    await session.waitForText('[data-testid="projectx-key-status"]', (t) => t.includes("is in the OS keychain"));
    await session.click(await session.find('[data-testid="projectx-test"]'));
    await session.waitForText('[data-testid="projectx-test-status"]', (t) => t.includes(ACCOUNT), 20000);
    await session.screenshot("settings-projectx");
  });

  it("a loss through the trailing maximum loss flattens and locks opening orders; the trader unlocks after reading why", async () => {
    await session.click(await session.waitFor('[data-testid="nav-dashboard"]'));
    await session.waitForText('[data-testid="trading-state"]', (t) => t === "active", 20000);
    // 2 MNQ from 20 990 at 19 900: an open loss of 4 360 takes net liquidation under the floor.
    const moved = await fetch(`${fake.url}/fake/quote`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ contract: "CON.F.US.MNQ.Z26", bid: 19900, ask: 19900.25 }),
    });
    assert.equal(moved.status, 204);
    let at;
    for (let i = 0; i < 150; i++) {
      at = await atFake(fake.url);
      if (at.positions.length === 0) break;
      await sleep(200);
    }
    assert.equal(at.positions.length, 0, `flattened at the fake: ${JSON.stringify(at)}`);
    await session.waitForText(
      '[data-testid="trading-state"]',
      (t) => t.includes("opening orders locked") && t.includes("mll"),
      20000,
    );
    await session.screenshot("projectx-locked");
    await session.click(await session.find('[data-testid="unlock-trading"]'));
    await session.waitForText('[data-testid="unlock-dialog"]', (t) => t.includes("mll"));
    await session.click(await session.find('[data-testid="unlock-confirm"]'));
    await session.waitForText('[data-testid="trading-state"]', (t) => t === "active", 20000);
    const after = await atFake(fake.url);
    assert.equal(after.orders.filter((o) => o.customTag?.startsWith("tg-")).length, 2, "the reduction and the flatten, nothing else");
  });
});
