import { describe, expect, it } from "vitest";
import type { MarginSample } from "./bindings";
import { MARGIN_STEP_MS, MARGIN_WINDOW_MS, marginChartData, marginReducer, samplesFromView, utilisation } from "./marginHistory";
import { account, portfolioView } from "./testing/fakeBackend";

const sample = (account: string, atMs: number, utilisation: number): MarginSample => ({
  account,
  atMs,
  netLiquidation: 100000,
  maintenanceMargin: utilisation * 100000,
  excessLiquidity: 100000 - utilisation * 100000,
  utilisation,
});

describe("margin", () => {
  it("computes utilisation from the decimal strings of an account", () => {
    expect(utilisation(account("DU1", { netLiquidation: "125000.00", maintenanceMargin: "25000.00" }))).toBe(0.2);
    expect(utilisation(account("DU1", { netLiquidation: "-10.00" }))).toBe(0);
    expect(utilisation(account("DU1", { netLiquidation: "n/a" }))).toBeNull();
  });

  it("takes one sample per account from a pushed portfolio at the venue time", () => {
    const view = portfolioView(["DU1", "DU2"], { venueTime: "2025-03-04T15:00:00Z" });
    view.accounts[1] = account("DU2", { netLiquidation: "50000", maintenanceMargin: "40000" });
    const s = samplesFromView(view, 1);
    expect(s.map((x) => [x.account, x.atMs, x.utilisation])).toEqual([
      ["DU1", Date.parse("2025-03-04T15:00:00Z"), 0.2],
      ["DU2", Date.parse("2025-03-04T15:00:00Z"), 0.8],
    ]);
    expect(samplesFromView(portfolioView(["DU1"], { venueTime: null }), 1234)[0].atMs).toBe(1234);
  });

  it("merges the history with earlier pushes, appends, and keeps only the last two hours", () => {
    const t0 = 1_700_000_000_000;
    const step = MARGIN_STEP_MS;
    let s = marginReducer([], { kind: "append", samples: [sample("DU1", t0 + 5 * step, 0.3)] });
    s = marginReducer(s, { kind: "history", samples: [sample("DU1", t0 + step, 0.1), sample("DU1", t0, 0.05), sample("DU1", t0 + 5 * step, 0.29)] });
    expect(s.map((x) => x.utilisation)).toEqual([0.05, 0.1, 0.29]);

    s = marginReducer(s, { kind: "append", samples: [sample("DU1", t0 + 6 * step, 0.31)] });
    s = marginReducer(s, { kind: "append", samples: [sample("DU1", t0 + 6 * step, 0.32)] }); // same venue time: replaces
    expect(s.map((x) => x.utilisation)).toEqual([0.05, 0.1, 0.29, 0.32]);

    s = marginReducer(s, { kind: "append", samples: [sample("DU1", t0 + step + MARGIN_WINDOW_MS, 0.4)] });
    expect(s.map((x) => x.atMs)).toEqual([t0 + step, t0 + 5 * step, t0 + 6 * step, t0 + step + MARGIN_WINDOW_MS]);
  });

  it("keeps one sample per account per step however often portfolios are pushed, ending at the live value", () => {
    const t0 = 1_700_000_000_000; // a whole number of steps
    let s: MarginSample[] = [];
    // Four pushes a second for two hours of venue time, two accounts.
    const pushes = (2 * MARGIN_WINDOW_MS) / 250;
    for (let i = 0; i <= pushes; i++) {
      const t = t0 + i * 250;
      s = marginReducer(s, { kind: "append", samples: [sample("DU1", t, (i % 100) / 100), sample("DU2", t, 0.5)] });
    }
    const perAccount = MARGIN_WINDOW_MS / MARGIN_STEP_MS + 1;
    expect(s.filter((x) => x.account === "DU1")).toHaveLength(perAccount);
    expect(s.filter((x) => x.account === "DU2")).toHaveLength(perAccount);
    const last = s.filter((x) => x.account === "DU1").at(-1)!;
    expect(last.atMs).toBe(t0 + pushes * 250);
    expect(last.utilisation).toBe((pushes % 100) / 100);
    // Each kept sample is the newest of its step.
    const du1 = s.filter((x) => x.account === "DU1");
    expect(du1.slice(0, -1).every((x) => ((x.atMs as number) + 250) % MARGIN_STEP_MS === 0)).toBe(true);
  });

  it("thins a dense history to the newest sample of each step, per account", () => {
    const t0 = 1_700_000_000_000;
    const history = [0, 1000, 9000, 10_000, 15_000].flatMap((d) => [sample("DU1", t0 + d, d / 1e5), sample("DU2", t0 + d, 0.5)]);
    history.push(sample("DU2", t0 + 19_000, 0.6)); // DU2 alone later in the second step
    const s = marginReducer([], { kind: "history", samples: history });
    expect(s.map((x) => [x.account, (x.atMs as number) - t0])).toEqual([
      ["DU1", 9000],
      ["DU2", 9000],
      ["DU1", 15_000],
      ["DU2", 19_000],
    ]);
  });

  it("aligns accounts on one time axis (seconds) with gaps where an account has no sample", () => {
    const data = marginChartData([sample("DU1", 2000, 0.2), sample("DU2", 2000, 0.5), sample("DU1", 3000, 0.25)], ["DU1", "DU2"]);
    expect(data).toEqual([
      [2, 3],
      [20, 25],
      [50, null],
    ]);
  });
});
