// Opening a strategy through the guard in the app (issue "Open strategies through the guard"):
// the Trade screen's chain on the simulated venue, an iron condor filled from it by two clicks
// with a stop-loss attached, the preview (orders in send order, payoff, margin, stress verdict),
// the confirm, the Orders tab showing the protective wings sent in the first step, the strategy
// on the dashboard with its stop; a put credit spread with a stop the same way; then the market
// falls 3 % and the spread's stop exits once, through the hybrid exit (limit orders first),
// though the rules file is in dry-run, while the condor stays.
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

/**
 * Previews the ticket at the natural price to read its credit, then previews it again at a custom
 * net `through` under that credit, as a trader pays up to fill while the market moves (the demo
 * runs at 10×). Answers the natural credit; the second preview is open.
 */
async function previewPayingThrough(session, through) {
  await session.click(await session.find('[data-testid="ticket-limit"] option[value="natural"]'));
  await session.click(await session.find('[data-testid="ticket-preview"]'));
  const natural = await session.waitForText('[data-testid="entry-net"]', (t) => /credit \d+\.\d+/.test(t), 15000);
  const credit = Number(natural.match(/credit (\d+\.\d+)/)[1]);
  await session.click(await session.find('[data-testid="entry-preview-cancel"]'));
  await session.click(await session.waitFor('[data-testid="ticket-limit"] option[value="custom"]'));
  await replace(session, '[data-testid="ticket-net"]', (-(credit - through)).toFixed(2));
  await session.click(await session.find('[data-testid="ticket-preview"]'));
  return credit;
}

/** Fills the ticket on the Trade screen from the chain and opens its preview (paying `through`). */
async function ticket(session, { template, expiry, width, clicks, qty, stop, through }) {
  await session.click(await session.find('[data-testid="nav-trade"]'));
  await session.click(await session.waitFor(`[data-testid="ticket-template"] option[value="${template}"]`));
  await session.click(await session.find(`[data-testid="trade-expiry"] option[value="${expiry}"]`));
  await session.waitForText(`[data-testid="chain-${clicks[0]}"]`, (t) => /^\d+\.\d+$/.test(t.trim()), 30000);
  await replace(session, '[data-testid="ticket-width"]', String(width));
  for (const c of clicks) await session.click(await session.find(`[data-testid="chain-${c}"]`));
  await replace(session, '[data-testid="ticket-qty"]', String(qty));
  await replace(session, '[data-testid="ticket-stop"]', stop);
  return previewPayingThrough(session, through);
}

/**
 * Confirms the open preview, then waits for the strategy `name` on the dashboard with its exits.
 * At 10× the market can run from a limit between the preview and the send: the group then rolls
 * back (what filled is undone) and, as a trader would, the ticket is previewed and placed again
 * (`again`), at most three times in all.
 */
async function placeUntilHeld(session, name, again) {
  for (let attempt = 1; ; attempt++) {
    await session.waitForText('[data-testid="entry-verdict"]', (t) => /would pass/.test(t), 15000);
    await session.click(await session.find('[data-testid="entry-preview-confirm"]'));
    await session.waitForText('[data-testid="entry-placed"]', (t) => /group \d+/.test(t), 15000);
    await session.click(await session.find('[data-testid="nav-dashboard"]'));
    try {
      return await session.waitFor(`[data-testid="strategy"][data-strategy-name*="${name}"] [data-testid="strategy-exits"]`, 20000);
    } catch (e) {
      await session.click(await session.find('[data-testid="nav-orders"]'));
      const groups = await session.waitForText('[data-testid="groups"]', (t) => /open/.test(t), 15000);
      assert.ok(attempt < 3 && /rolled back/.test(groups), `attempt ${attempt}: ${name} not held: ${groups} (${e})`);
      await again();
    }
  }
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
    // The monthly: its wings keep a bid when the market moves (the stop's limits need one).
    const condor = { template: "iron_condor", expiry: "2025-03-21", width: 10, clicks: ["565-put-bid", "585-call-bid"], qty: 2, stop: "0.5", through: 0.3 };
    await session.click(await session.find('[data-testid="trade-expiry"] option[value="2025-03-21"]'));
    await session.waitForText('[data-testid="chain-565-put-bid"]', (t) => /^\d+\.\d+$/.test(t.trim()), 30000);
    await replace(session, '[data-testid="ticket-width"]', "10");
    await session.click(await session.find('[data-testid="chain-565-put-bid"]'));
    await session.click(await session.find('[data-testid="chain-585-call-bid"]'));
    const legs = await session.waitForText('[data-testid="ticket-legs"]', (t) => (t.match(/SPY/g) ?? []).length === 4);
    for (const leg of ["555 P", "565 P", "585 C", "595 C"]) assert.ok(legs.includes(leg), `${leg} on the ticket: ${legs}`);
    await replace(session, '[data-testid="ticket-qty"]', "2");
    await replace(session, '[data-testid="ticket-stop"]', "0.5");
    const credit = await previewPayingThrough(session, 0.3);

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
    assert.match(await session.text(await session.find('[data-testid="entry-exits"]')), /stop-loss at a loss of 0\.50 × the entry premium/);
    await session.waitFor('[data-testid="entry-preview"] canvas');
    await session.screenshot("trade-preview");

    await placeUntilHeld(session, "555/565/585/595", () => ticket(session, condor));
  });

  it("the Orders tab shows the group filled, wings first; the strategy is on the dashboard", async () => {
    await session.click(await session.find('[data-testid="nav-orders"]'));
    const ids = ["250321P00555000", "250321P00565000", "250321C00585000", "250321C00595000"];
    await session.waitForText('[data-testid="executions"]', (t) => ids.every((id) => t.includes(id)), 30000);
    // Newest first: both sales are above both wings.
    const rows = [];
    for (const row of await session.findAll('[data-testid="execution"]')) rows.push(await session.text(row));
    const ours = rows.filter((r) => ids.some((id) => r.includes(id)));
    // The four of the open that filled (a rolled-back attempt's trades are older).
    const last = ours.slice(0, 4);
    assert.equal(last.length, 4, ours.join(" | "));
    assert.ok(/sell/i.test(last[0]) && /sell/i.test(last[1]) && /buy/i.test(last[2]) && /buy/i.test(last[3]), `wings filled before the shorts: ${ours.join(" | ")}`);
    await session.screenshot("trade-orders");
    await session.click(await session.find('[data-testid="nav-dashboard"]'));
    const exits = await session.waitForText('[data-testid="strategy-exits"]', (t) => /stop-loss/.test(t), 30000);
    assert.match(exits, /stop-loss at a loss of 0\.50 × the entry premium \(hybrid exit\)/);
    const row = await session.waitFor('[data-testid="strategy"][data-strategy-name*="555/565/585/595"]', 15000);
    assert.match(await session.text(row), /iron condor/i);
    await session.screenshot("trade-strategy-with-stop");
  });

  it("opens a put credit spread with a stop at half its credit the same way", async () => {
    const spread = { template: "vertical", expiry: "2025-03-21", width: 5, clicks: ["575-put-bid"], qty: 1, stop: "0.5", through: 0.3 };
    await ticket(session, spread);
    const legs = await session.text(await session.find('[data-testid="ticket-legs"]'));
    assert.ok(legs.includes("570 P") && legs.includes("575 P"), legs);
    await session.waitForText('[data-testid="entry-verdict"]', (t) => /would pass/.test(t), 15000);
    await placeUntilHeld(session, "575/570", () => ticket(session, spread));
  });

  it("the market falls 3 %: the spread's stop exits once, limit orders first, in dry-run too; the condor stays", async () => {
    await session.click(await session.waitFor('[data-testid="sim-actions"] summary'));
    await session.click(await session.waitFor('[data-testid="sim-move"][data-symbol="SPY"][data-bps="-300"]'));
    await session.waitForText('[data-testid="sim-result"]', (t) => /SPY moved −3 %/.test(t), 15000);
    // The spread leaves the dashboard once its stop has closed it; the condor (a smaller loss
    // against its credit) stays, with its stop.
    const deadline = Date.now() + 60000;
    while ((await session.findAll('[data-testid="strategy"][data-strategy-name*="575/570"]')).length > 0) {
      assert.ok(Date.now() < deadline, "the stop closed the spread within a minute");
      await new Promise((r) => setTimeout(r, 250));
    }
    await session.waitFor('[data-testid="strategy"][data-strategy-name*="555/565/585/595"] [data-testid="strategy-exits"]');
    await session.click(await session.find('[data-testid="nav-orders"]'));
    await session.waitForText('[data-testid="groups"]', (t) => /flatten/i.test(t), 15000);
    const groups = [];
    for (const g of await session.findAll('[data-testid="group"]')) {
      groups.push({ id: await session.cmd("GET", `/element/${g}/attribute/data-group`), text: await session.text(g) });
    }
    const exits = groups.filter((g) => /flatten/i.test(g.text));
    assert.ok(
      exits.length >= 1 && exits.length <= 2,
      `one exit (its limits, then market for what they left): ${groups.map((g) => g.text).join(" | ")}`,
    );
    // The first exit group (newest first: the last listed) was limit orders, the hybrid exit's first stage.
    const first = exits[exits.length - 1];
    await session.click(await session.find(`[data-testid="group"][data-group="${first.id}"] [data-testid="group-toggle"]`));
    const legs = await session.waitForText('[data-testid="legs"]', (t) => /LMT/.test(t), 15000);
    for (const leg of ["570 P", "575 P"]) assert.ok(legs.includes(leg), `${leg} in the exit: ${legs}`);
    assert.doesNotMatch(legs, /MKT/, `limits first: ${legs}`);
    await session.screenshot("trade-stop-exit");
    await session.click(await session.find('[data-testid="nav-audit"]'));
    await session.waitForText('[data-testid="audit-screen"]', (t) => /entry-stop:ep-/.test(t), 15000);
  });
});
