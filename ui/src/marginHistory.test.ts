import { describe, expect, it } from "vitest";
import type { MarginSample } from "./bindings";
import { MARGIN_WINDOW_MS, marginChartData, marginReducer, samplesFromView, utilisation } from "./marginHistory";
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
    let s = marginReducer([], { kind: "append", samples: [sample("DU1", t0 + 5000, 0.3)] });
    s = marginReducer(s, { kind: "history", samples: [sample("DU1", t0 + 1000, 0.1), sample("DU1", t0, 0.05), sample("DU1", t0 + 5000, 0.29)] });
    expect(s.map((x) => x.utilisation)).toEqual([0.05, 0.1, 0.29]);

    s = marginReducer(s, { kind: "append", samples: [sample("DU1", t0 + 6000, 0.31)] });
    s = marginReducer(s, { kind: "append", samples: [sample("DU1", t0 + 6000, 0.32)] }); // same venue time: replaces
    expect(s.map((x) => x.utilisation)).toEqual([0.05, 0.1, 0.29, 0.32]);

    s = marginReducer(s, { kind: "append", samples: [sample("DU1", t0 + 1000 + MARGIN_WINDOW_MS, 0.4)] });
    expect(s.map((x) => x.atMs)).toEqual([t0 + 1000, t0 + 5000, t0 + 6000, t0 + 1000 + MARGIN_WINDOW_MS]);
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
