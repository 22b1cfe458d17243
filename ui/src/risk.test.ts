import { describe, expect, it } from "vitest";
import { cellPnl, heatColour, isWorst, payoffMarkers, payoffSeries, stressTable } from "./risk";
import { riskView, stressCell } from "./testing/detail";

describe("payoffSeries", () => {
  it("orders points by price and keeps both P&L series aligned, gaps as null", () => {
    const risk = riskView({
      payoff: [
        { spot: 110, pnlExpiry: -500, pnlToday: -420 },
        { spot: 90, pnlExpiry: -500, pnlToday: -380 },
        { spot: null, pnlExpiry: 1, pnlToday: 1 },
        { spot: 100, pnlExpiry: 300, pnlToday: null },
      ],
    });
    expect(payoffSeries(risk)).toEqual({ price: [90, 100, 110], expiry: [-500, 300, -500], today: [-380, null, -420] });
  });

  it("marks the spot and each strike once", () => {
    expect(payoffMarkers(riskView({ spot: 101.5, strikes: [105, 95, null, 105] }))).toEqual({ spot: 101.5, strikes: [95, 105] });
    expect(payoffMarkers(riskView({ spot: null, strikes: [] }))).toEqual({ spot: null, strikes: [] });
  });
});

describe("stressTable", () => {
  it("lays out IV rows by price-move columns for the chosen spread multiplier", () => {
    const risk = riskView();
    const t = stressTable(risk, 1.5);
    expect(t.moves).toEqual([-15, 0, 15]);
    expect(t.rows.map((r) => r.volMult)).toEqual([1, 1.3, 1.5]);
    const row = t.rows[2];
    expect(row.cells.map((c) => [c?.movePct, c?.volMult, c?.spreadMult])).toEqual([
      [-15, 1.5, 1.5],
      [0, 1.5, 1.5],
      [15, 1.5, 1.5],
    ]);
    // One colour scale for the whole grid: the worst loss of every spread multiplier.
    expect(t.scale).toBe(Math.max(...risk.cells.map((c) => Math.abs(c.loss!))));
  });

  it("leaves a missing cell empty instead of shifting the row", () => {
    const risk = riskView();
    risk.cells = risk.cells.filter((c) => !(c.movePct === 0 && c.volMult === 1.3 && c.spreadMult === 1));
    const t = stressTable(risk, 1);
    expect(t.rows[1].cells[1]).toBeNull();
    expect(t.rows[1].cells[2]?.movePct).toBe(15);
  });

  it("finds the worst cell and colours gains green, losses red by size", () => {
    const risk = riskView();
    const worst = risk.cells.filter((c) => isWorst(c, risk.worst));
    expect(worst).toHaveLength(1);
    expect(cellPnl(stressCell(0, 1, 1, 250))).toBe(-250);
    expect(heatColour(-1000, 1000)).toBe("rgba(248, 81, 73, 0.72)");
    expect(heatColour(100, 1000)).toBe("rgba(63, 185, 80, 0.18)");
    expect(heatColour(null, 1000)).toBe("transparent");
  });
});
