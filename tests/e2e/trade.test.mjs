// Opening a strategy through the guard in the app (issue "Open strategies through the guard"):
// the Trade screen's chain on the simulated venue, an iron condor filled from it by two clicks,
// the preview (orders in send order, payoff, margin, stress verdict), the confirm, and the
// Orders tab showing the protective wings sent in the first step.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { APP_BIN, Session, startDriver, stopDriver } from "./webdriver.mjs";

process.env.TRADEGUARD_DATA_DIR = mkdtempSync(join(tmpdir(), "tradeguard-e2e-trade-"));
process.env.HOME = mkdtempSync(join(tmpdir(), "tradeguard-e2e-trade-home-"));
delete process.env.TRADEGUARD_CLOCK_START;

/** Replaces a React-controlled input's value as a person would: select all, then type. */
async function replace(session, css, text) {
  const el = await session.find(css);
  await session.click(el);
  await session.cmd("POST", `/element/${el}/value`, { text: `\uE010${"\uE003".repeat(12)}${text}` });
}

describe("Opening an iron condor from the Trade screen", () => {
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

  it("shows the live chain with IV and delta", async () => {
    await session.click(await session.waitFor('[data-testid="nav-trade"]', 30000));
    // The quotes arrive once the chain's strikes are subscribed.
    await session.waitForText('[data-testid="chain-565-put-bid"]', (t) => /^\d+\.\d+$/.test(t.trim()), 30000);
    const row = await session.waitForText('[data-testid="chain-row-575"]', (t) => /%/.test(t), 15000);
    assert.match(row, /0\.\d\d/, `a delta in the at-the-money row: ${row}`);
    await session.screenshot("trade-chain");
  });

  it("fills an iron condor by two clicks, previews it and places it on confirm", async () => {
    await replace(session, '[data-testid="ticket-width"]', "10");
    await session.click(await session.find('[data-testid="chain-565-put-bid"]'));
    await session.click(await session.find('[data-testid="chain-585-call-bid"]'));
    const legs = await session.waitForText('[data-testid="ticket-legs"]', (t) => (t.match(/SPY/g) ?? []).length === 4);
    for (const leg of ["555 P", "565 P", "585 C", "595 C"]) assert.ok(legs.includes(leg), `${leg} on the ticket: ${legs}`);
    await replace(session, '[data-testid="ticket-qty"]', "2");
    // First at the natural price, to read it; then a custom net 0.30 through it, as a trader
    // pays up to fill while the market moves (the demo runs at 10×).
    await session.click(await session.find('[data-testid="ticket-limit"] option[value="natural"]'));
    await session.click(await session.find('[data-testid="ticket-preview"]'));
    const natural = await session.waitForText('[data-testid="entry-net"]', (t) => /credit \d+\.\d+/.test(t), 15000);
    const credit = Number(natural.match(/credit (\d+\.\d+)/)[1]);
    await session.click(await session.find('[data-testid="entry-preview-cancel"]'));
    await session.click(await session.waitFor('[data-testid="ticket-limit"] option[value="custom"]'));
    await replace(session, '[data-testid="ticket-net"]', (-(credit - 0.3)).toFixed(2));
    await session.click(await session.find('[data-testid="ticket-preview"]'));

    await session.waitForText('[data-testid="entry-orders"]', (t) => /SELL/.test(t), 15000);
    const lines = [];
    for (const row of await session.findAll('[data-testid="entry-order"]')) {
      const attr = (name) => session.cmd("GET", `/element/${row}/attribute/${name}`);
      lines.push(`${await attr("data-step")} ${await attr("data-side")} ${await attr("data-qty")} ${await attr("data-label")}`);
    }
    const orders = lines.join(" | ");
    assert.equal(lines.length, 4, orders);
    assert.match(lines[0], /^1 BUY 2 /, `the wings go first: ${orders}`);
    assert.match(lines[1], /^1 BUY 2 /, orders);
    assert.match(lines[2], /^2 SELL 2 /, orders);
    assert.match(lines[3], /^2 SELL 2 /, orders);
    // The legs walk from their mids a tick at a time towards the asked net, never past it.
    const shown = await session.waitForText('[data-testid="entry-net"]', (t) => /credit/.test(t));
    const got = Number(shown.match(/credit (\d+\.\d+)/)[1]);
    assert.ok(got >= credit - 0.3 - 1e-9 && got < credit - 0.3 + 0.05, `asked ${credit - 0.3}, got ${shown}`);
    assert.match(await session.text(await session.find('[data-testid="entry-margin"]')), /Reg T/);
    assert.match(await session.text(await session.find('[data-testid="entry-stress"]')), /worst case .* of available funds/);
    assert.match(await session.text(await session.find('[data-testid="entry-verdict"]')), /would pass/);
    assert.match(await session.text(await session.find('[data-testid="entry-max-loss"]')), /\d/);
    await session.waitFor('[data-testid="entry-preview"] canvas');
    await session.screenshot("trade-preview");

    await session.click(await session.find('[data-testid="entry-preview-confirm"]'));
    const placed = await session.waitForText('[data-testid="entry-placed"]', (t) => /group \d+/.test(t), 15000);
    assert.match(placed, /Orders/);
  });

  it("the Orders tab shows the group filled, wings first; the strategy is on the dashboard", async () => {
    await session.click(await session.find('[data-testid="nav-orders"]'));
    const ids = ["P00555000", "P00565000", "C00585000", "C00595000"];
    await session.waitForText('[data-testid="executions"]', (t) => ids.every((id) => t.includes(id)), 30000);
    // Newest first: both sales are above both wings.
    const rows = [];
    for (const row of await session.findAll('[data-testid="execution"]')) rows.push(await session.text(row));
    const ours = rows.filter((r) => ids.some((id) => r.includes(id)));
    const firstSell = ours.findIndex((r) => /sell/i.test(r));
    const lastBuy = ours.map((r) => /buy/i.test(r)).lastIndexOf(true);
    assert.equal(ours.length, 4, ours.join(" | "));
    assert.ok(firstSell === 0 && lastBuy === 3 && /sell/i.test(ours[1]), `wings filled before the shorts: ${ours.join(" | ")}`);
    await session.screenshot("trade-orders");
    await session.click(await session.find('[data-testid="nav-dashboard"]'));
    const strategies = await session.waitForText(
      '[data-testid="strategies"]',
      (t) => (t.match(/iron condor/gi) ?? []).length >= 2,
      30000,
    );
    assert.match(strategies, /iron condor/i);
  });
});
