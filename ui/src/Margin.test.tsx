import { act, render, screen, within } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import type { Backend } from "./backend";
import type { MarginSample, PortfolioView } from "./bindings";
import { PortfolioPanel } from "./Portfolio";
import { timeRange } from "./Margin";
import { account, fail, fakeBackend, ok, portfolioView } from "./testing/fakeBackend";

// The chart itself cannot draw in jsdom: record the data the margin history hands to it.
const charts = vi.hoisted(() => [] as Array<{ label: string; data: unknown[][] }>);
vi.mock("./UPlotChart", () => ({
  UPlotChart: (p: { label: string; data: unknown[][] }) => {
    charts.push({ label: p.label, data: p.data });
    return <div data-testid="chart" />;
  },
}));

const lastMarginData = () => charts.filter((c) => c.label.startsWith("Margin utilisation")).at(-1)!.data;

function live(initial: PortfolioView, history: MarginSample[]) {
  let push: ((v: PortfolioView) => void) | null = null;
  const marginHistory = vi.fn(async () => ok(history));
  const backend: Backend = fakeBackend({
    portfolio: async () => ok(initial),
    onPortfolio: async (cb) => {
      push = cb;
      return () => (push = null);
    },
    marginHistory,
  });
  return { backend, marginHistory, push: (v: PortfolioView) => push?.(v) };
}

describe("Margin in the account figures", () => {
  it("shows margin used as a gauge with the excess liquidity", async () => {
    const view = portfolioView(["DU1", "DU2"]);
    view.accounts[1] = account("DU2", { netLiquidation: "50000.00", maintenanceMargin: "42500.00", excessLiquidity: "7500.00" });
    render(<PortfolioPanel backend={live(view, []).backend} />);
    const gauges = await screen.findAllByTestId("margin-gauge");
    expect(gauges.map((g) => within(g).getByTestId("margin-used").textContent)).toEqual(["20.0 %", "85.0 %"]);
    expect(gauges.map((g) => within(g).getByTestId("margin-excess").textContent)).toEqual(["$80,000.00", "$7,500.00"]);
    const meters = gauges.map((g) => within(g).getByRole("meter"));
    expect(meters.map((m) => m.getAttribute("aria-valuenow"))).toEqual(["20", "85"]);
    expect(meters[1].querySelector(".gauge-fill")?.className).toContain("high");
    expect(meters[0].querySelector(".gauge-fill")?.className).not.toContain("high");
  });

  it("charts utilisation from the history, then from every pushed portfolio", async () => {
    charts.length = 0;
    const t = Date.parse("2025-03-04T15:00:00Z");
    const history: MarginSample[] = [
      { account: "DU1", atMs: t - 20_000, netLiquidation: 100000, maintenanceMargin: 10000, excessLiquidity: 90000, utilisation: 0.1 },
      { account: "DU1", atMs: t - 10_000, netLiquidation: 100000, maintenanceMargin: 15000, excessLiquidity: 85000, utilisation: 0.15 },
    ];
    const f = live(portfolioView(["DU1"]), history);
    render(<PortfolioPanel backend={f.backend} />);
    await screen.findAllByTestId("margin-gauge");
    await act(async () => {});
    expect(f.marginHistory).toHaveBeenCalledTimes(1);
    // History, then the first read (venue time t, 20 %).
    expect(lastMarginData()).toEqual([[(t - 20_000) / 1000, (t - 10_000) / 1000, t / 1000], [10, 15, 20]]);

    const next = portfolioView(["DU1"], { venueTime: "2025-03-04T15:00:10Z" });
    next.accounts[0] = account("DU1", { netLiquidation: "100000.00", maintenanceMargin: "30000.00" });
    act(() => f.push(next));
    expect(lastMarginData()).toEqual([[(t - 20_000) / 1000, (t - 10_000) / 1000, t / 1000, t / 1000 + 10], [10, 15, 20, 30]]);
    expect(screen.getByTestId("margin-used").textContent).toBe("30.0 %");
    // A push later in the same step moves the chart's end to the live value.
    const later = portfolioView(["DU1"], { venueTime: "2025-03-04T15:00:12.500Z" });
    later.accounts[0] = account("DU1", { netLiquidation: "100000.00", maintenanceMargin: "35000.00" });
    act(() => f.push(later));
    expect(lastMarginData()).toEqual([[(t - 20_000) / 1000, (t - 10_000) / 1000, t / 1000, t / 1000 + 12.5], [10, 15, 20, 35]]);
    expect(screen.getByTestId("margin-used").textContent).toBe("35.0 %");
    expect(f.marginHistory).toHaveBeenCalledTimes(1);
  });

  it("shows why the history is missing and still charts the live samples", async () => {
    charts.length = 0;
    const f = live(portfolioView(["DU1"]), []);
    f.backend.marginHistory = async () => fail("unavailable", "engine.starting", "margin history not ready");
    render(<PortfolioPanel backend={f.backend} />);
    await screen.findAllByTestId("margin-gauge");
    await act(async () => {});
    expect(screen.getByTestId("margin-history-error").textContent).toContain("margin history not ready");
    expect(lastMarginData()[1]).toEqual([20]);
  });
});

describe("timeRange", () => {
  it("spans the samples, and a minute either side of a single one", () => {
    expect(timeRange([1000, 1010, 1600])).toEqual([1000, 1600]);
    expect(timeRange([1741100405])).toEqual([1741100345, 1741100465]);
    expect(timeRange([])).toEqual([0, 1]);
  });
});
