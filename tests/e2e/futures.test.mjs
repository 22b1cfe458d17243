// The futures demo on the simulated venue, in the app (issue "ProjectX venue and futures"):
// Settings' "Futures demo" (a $50 000 account, 5 MNQ long and 2 MES short) with a live rule
// `max_contracts = 2`: the dashboard shows the futures and the guard reduces the MNQ to 2.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { APP_BIN, Session, startDriver, stopDriver } from "./webdriver.mjs";

const dataDir = mkdtempSync(join(tmpdir(), "tradeguard-e2e-futures-"));
process.env.TRADEGUARD_DATA_DIR = dataDir;
process.env.HOME = mkdtempSync(join(tmpdir(), "tradeguard-e2e-futures-home-"));
delete process.env.TRADEGUARD_CLOCK_START;

describe("The futures demo on the simulated venue", () => {
  let driver;
  let session;

  before(async () => {
    assert.ok(APP_BIN, "TRADEGUARD_APP_BIN must point at the built app (run through `make test-e2e`)");
    writeFileSync(join(dataDir, "settings.toml"), '[venue]\nkind = "sim"\nsimDemo = "futures"\n');
    writeFileSync(
      join(dataDir, "risk.toml"),
      'dry_run = false\n[[max_contracts]]\nid = "max-2"\naction = "flatten"\nmax_contracts = 2\n',
    );
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

  it("shows the futures and reduces 5 MNQ to the rule's 2; the MES is left alone", async () => {
    const table = await session.waitForText(
      '[data-testid="positions"]',
      (t) => t.includes("MNQ 20250321 FUT+2") && t.includes("MES 20250321 FUT-2"),
      60000,
    );
    assert.doesNotMatch(table, /MNQ 20250321 FUT\+5/);
    await session.screenshot("futures-demo");
  });
});
