// Real-app end-to-end: the built desktop binary under Xvfb, driven through tauri-driver.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { APP_BIN, Session, startDriver, stopDriver } from "./webdriver.mjs";

describe("Tradeguard desktop app", () => {
  let driver;
  let session;

  before(async () => {
    assert.ok(APP_BIN, "TRADEGUARD_APP_BIN must point at the built app (run through `make test-e2e`)");
    driver = await startDriver();
    session = await Session.create(driver.base, APP_BIN);
  });

  after(async () => {
    try {
      await session?.close();
    } finally {
      if (driver) await stopDriver(driver.child);
    }
  });

  it("first screen shows name, version and a live value from the backend", async () => {
    const name = await session.waitForText('[data-testid="app-name"]', (t) => t === "Tradeguard");
    assert.equal(name, "Tradeguard");
    const version = await session.waitForText('[data-testid="app-version"]', (t) => /^v\d+\.\d+\.\d+/.test(t));
    assert.match(version, /^v\d+\.\d+\.\d+/);
    // The heartbeat event is pushed by the backend every second.
    const beat = await session.waitForText('[data-testid="heartbeat"]', (t) => /\d/.test(t));
    assert.match(beat, /s$/);
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
    await session.screenshot("positions");
  });

  it("clicking 'Check backend' makes a round trip to Rust and updates the DOM", async () => {
    const before = Number(await session.waitForText('[data-testid="requests"]', (t) => /^\d+$/.test(t)));
    const btn = await session.waitFor('[data-testid="refresh-status"]');
    await session.click(btn);
    const after = Number(
      await session.waitForText('[data-testid="requests"]', (t) => /^\d+$/.test(t) && Number(t) > before),
    );
    assert.equal(after, before + 1, "the backend counted exactly one more request");
    const uptime = await session.text(await session.find('[data-testid="uptime"]'));
    assert.match(uptime, /^\d+(\.\d)? s$|min/);
  });
});
