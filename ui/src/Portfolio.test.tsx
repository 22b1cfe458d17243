import { act, render, screen, within } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import type { Backend } from "./backend";
import type { PortfolioView, PositionRow } from "./bindings";
import { fakeBackend } from "./testing/fakeBackend";
import { PortfolioPanel, connectionLabel, formatMoney, samePosition } from "./Portfolio";

const row = (over: Partial<PositionRow>): PositionRow => ({
  key: "DU1:SPY",
  account: "DU1",
  label: "SPY",
  instrumentId: "SPY",
  kind: "stock",
  qty: 100,
  multiplier: 1,
  avgCost: "440.00",
  mark: "441.00",
  markStatus: "fresh",
  quoteAgeSecs: 2,
  marketValue: "44100.00",
  unrealizedPnl: "100.00",
  delta: null,
  ...over,
});

const view = (positions: PositionRow[]): PortfolioView => ({
  venue: "sim",
  connection: { state: "connected" },
  venueTime: "2025-03-04T15:00:00Z",
  accounts: [
    {
      account: "DU1",
      netLiquidation: "123456.78",
      maintenanceMargin: "20000",
      excessLiquidity: "103456.78",
      buyingPower: "400000",
    },
  ],
  positions,
  eventsApplied: 10,
  simActions: true,
});

function fake(initial: PortfolioView) {
  let push: ((v: PortfolioView) => void) | null = null;
  const backend: Backend = fakeBackend({
    portfolio: async () => ({ status: "ok", data: initial }),
    onPortfolio: async (cb) => {
      push = cb;
      return () => (push = null);
    },
  });
  return { backend, push: (v: PortfolioView) => push?.(v) };
}

describe("formatMoney", () => {
  it("groups, rounds for display and signs", () => {
    expect(formatMoney("123456.785")).toBe("123,456.79");
    expect(formatMoney("-20")).toBe("-20.00");
    expect(formatMoney("15.5", true)).toBe("+15.50");
    expect(formatMoney("0", true)).toBe("0.00");
    expect(formatMoney(null)).toBe("—");
  });
});

describe("connectionLabel", () => {
  it("names every state", () => {
    expect(connectionLabel({ state: "disconnected", reason: "socket closed" })).toBe("Disconnected: socket closed");
    expect(connectionLabel({ state: "stalled", silentMs: 12400 })).toBe("Stalled (12 s without data)");
  });
});

describe("PortfolioPanel", () => {
  it("lists positions with marks, ages and signed P&L, and account figures", async () => {
    const f = fake(
      view([
        row({}),
        row({ key: "k2", label: "SPY 21MAR25 590 P", qty: -2, markStatus: "stale", quoteAgeSecs: 45, unrealizedPnl: "-250.00" }),
      ]),
    );
    render(<PortfolioPanel backend={f.backend} />);
    const rows = await screen.findAllByTestId("position-row");
    expect(rows).toHaveLength(2);
    expect(within(rows[0]).getByText("+100")).toBeTruthy();
    expect(within(rows[0]).getByText("+100.00")).toBeTruthy();
    expect(within(rows[1]).getByText("-2")).toBeTruthy();
    expect(within(rows[1]).getByText(/stale 45 s/)).toBeTruthy();
    expect(within(rows[1]).getByText("-250.00").className).toContain("neg");
    expect(screen.getByText("123,456.78")).toBeTruthy();
    expect(screen.getByTestId("connection").textContent).toBe("Connected");
  });

  it("shows a position without a quote instead of hiding it", async () => {
    const f = fake(view([row({ mark: null, markStatus: "missing", quoteAgeSecs: null, unrealizedPnl: null })]));
    render(<PortfolioPanel backend={f.backend} />);
    const r = await screen.findByTestId("position-row");
    expect(within(r).getByText("no quote")).toBeTruthy();
    expect(within(r).getAllByText("—")).toHaveLength(2); // no delta, no P&L
  });

  it("applies pushed updates", async () => {
    const f = fake(view([row({})]));
    render(<PortfolioPanel backend={f.backend} />);
    await screen.findByTestId("position-row");
    act(() => f.push(view([row({}), row({ key: "k3", label: "SPY 21MAR25 580 P" })])));
    expect(screen.getAllByTestId("position-row")).toHaveLength(2);
    expect(screen.getByText("SPY 21MAR25 580 P")).toBeTruthy();
  });
});

describe("samePosition", () => {
  it("re-renders a row only when what it shows changed", () => {
    expect(samePosition(row({}), row({}))).toBe(true);
    expect(samePosition(row({ quoteAgeSecs: 2.1 }), row({ quoteAgeSecs: 1.9 }))).toBe(true); // both show "2 s"
    expect(samePosition(row({}), row({ quoteAgeSecs: 3 }))).toBe(false);
    expect(samePosition(row({}), row({ mark: "441.05" }))).toBe(false);
    expect(samePosition(row({}), row({ unrealizedPnl: "105.00" }))).toBe(false);
    expect(samePosition(row({}), row({ markStatus: "stale" }))).toBe(false);
  });
});

describe("SimulatorActions", () => {
  it("offers only short options and reports the backend's answer", async () => {
    const calls: Array<[string, number]> = [];
    const f = fake(
      view([
        row({}),
        row({ key: "p590", label: "SPY 21MAR25 590 P", instrumentId: "SPY   250321P00590000", kind: "option", qty: -2 }),
        row({ key: "p580", label: "SPY 21MAR25 580 P", instrumentId: "SPY   250321P00580000", kind: "option", qty: 2 }),
      ]),
    );
    f.backend.simForceAssignment = async (id, n) => {
      calls.push([id, n]);
      return { status: "ok", data: null };
    };
    render(<PortfolioPanel backend={f.backend} />);
    const buttons = await screen.findAllByTestId("sim-assign");
    expect(buttons).toHaveLength(1);
    await act(async () => buttons[0].click());
    expect(calls).toEqual([["SPY   250321P00590000", 1]]);
    expect(screen.getByTestId("sim-result").textContent).toContain("no execution");
  });

  it("moves the market of each underlying held, 3 % either way", async () => {
    const calls: Array<[string, number]> = [];
    const f = fake(view([row({ key: "p590", label: "SPY 21MAR25 590 P", instrumentId: "SPY   250321P00590000", kind: "option", qty: -2 })]));
    f.backend.simMoveMarket = async (symbol, bps) => {
      calls.push([symbol, bps]);
      return { status: "ok", data: "557.75" };
    };
    render(<PortfolioPanel backend={f.backend} />);
    const buttons = await screen.findAllByTestId("sim-move");
    expect(buttons.map((b) => b.getAttribute("data-symbol"))).toEqual(["SPY", "SPY"]);
    await act(async () => buttons[0].click());
    expect(calls).toEqual([["SPY", -300]]);
    expect(screen.getByTestId("sim-result").textContent).toBe("SPY moved −3 % to 557.75.");
  });

  it("is not offered when the build has no simulator actions (release)", async () => {
    const f = fake({
      ...view([row({ key: "p590", label: "SPY 21MAR25 590 P", instrumentId: "SPY   250321P00590000", kind: "option", qty: -2 })]),
      simActions: false,
    });
    render(<PortfolioPanel backend={f.backend} />);
    await screen.findByTestId("position-row");
    expect(screen.queryByTestId("sim-actions")).toBeNull();
  });
});

describe("event-to-paint probe", () => {
  it("records one latency per pushed portfolio, at the frame after the commit", async () => {
    const { resetPerfProbe } = await import("./perfProbe");
    resetPerfProbe();
    const frames: FrameRequestCallback[] = [];
    vi.stubGlobal("requestAnimationFrame", (cb: FrameRequestCallback) => frames.push(cb));
    try {
      const f = fake(view([row({})]));
      render(<PortfolioPanel backend={f.backend} />);
      await screen.findByTestId("position-row");
      expect(frames).toHaveLength(0); // the first read is not an event
      act(() => f.push(view([row({}), row({ key: "k3", label: "SPY 21MAR25 580 P" })])));
      expect(screen.getAllByTestId("position-row")).toHaveLength(2);
      expect(frames).toHaveLength(1);
      frames[0](performance.now() + 5);
      const perf = window.__tradeguardPerf!;
      expect(perf.eventToPaintMs).toHaveLength(1);
      expect(perf.eventToPaintMs[0]).toBeGreaterThanOrEqual(5);
    } finally {
      vi.unstubAllGlobals();
    }
  });
});

describe("positions windowing", () => {
  const many = (n: number) =>
    Array.from({ length: n }, (_, i) => row({ key: `k${i}`, label: `OPT ${String(i).padStart(3, "0")}`, kind: "option" }));
  const labels = () => screen.getAllByTestId("position-row").map((r) => r.firstElementChild!.textContent);
  const spacers = () => screen.queryAllByTestId("spacer-row").map((r) => Number.parseFloat(r.style.height));

  it("renders only a window of a long list and counts them all in data-total-rows", async () => {
    const f = fake(view(many(500)));
    render(<PortfolioPanel backend={f.backend} />);
    const rows = await screen.findAllByTestId("position-row");
    expect(rows.length).toBeGreaterThanOrEqual(30);
    expect(rows.length).toBeLessThan(60);
    expect(labels()[0]).toBe("OPT 000");
    expect(screen.getByTestId("positions").getAttribute("data-total-rows")).toBe("500");
    // Only a spacer below, standing in for every row not rendered (30 px each by default).
    expect(spacers()).toEqual([(500 - rows.length) * 30]);
  });

  it("moves the window on scroll, once per animation frame", async () => {
    const frames: FrameRequestCallback[] = [];
    vi.stubGlobal("requestAnimationFrame", (cb: FrameRequestCallback) => frames.push(cb));
    vi.stubGlobal("cancelAnimationFrame", () => {});
    try {
      const f = fake(view(many(500)));
      render(<PortfolioPanel backend={f.backend} />);
      await screen.findAllByTestId("position-row");
      // Let the window's effects run (the scroll listener is attached in one) before scrolling.
      await act(async () => {});
      const box = screen.getByTestId("positions-scroll");
      // Run the frames already asked for (first layout, the perf probe): a throttled handler
      // waiting on one of them would not ask again.
      for (let i = 0; i < 5 && frames.length > 0; i++) {
        const pending = frames.splice(0);
        act(() => pending.forEach((cb) => cb(performance.now())));
      }
      box.scrollTop = 300 * 30; // row 300 at the top
      box.dispatchEvent(new Event("scroll"));
      box.dispatchEvent(new Event("scroll"));
      expect(frames).toHaveLength(1); // two scroll events, one frame
      expect(labels()[0]).toBe("OPT 000"); // not before the frame
      act(() => frames[0](performance.now()));
      const shown = labels();
      expect(shown[0]).toBe("OPT 290"); // 10 rows of overscan above
      expect(shown).toContain("OPT 300");
      expect(shown).toContain("OPT 330");
      expect(shown).not.toContain("OPT 000");
      const [above, below] = spacers();
      expect(above).toBe(290 * 30);
      expect(above + shown.length * 30 + below).toBe(500 * 30);
      // A pushed update keeps the window where it is.
      act(() => f.push(view(many(500).map((p) => ({ ...p, mark: "442.00" })))));
      expect(labels()[0]).toBe("OPT 290");
    } finally {
      vi.unstubAllGlobals();
    }
  });

  it("renders a list of up to 100 rows fully, without spacers", async () => {
    const f = fake(view(many(100)));
    render(<PortfolioPanel backend={f.backend} />);
    expect(await screen.findAllByTestId("position-row")).toHaveLength(100);
    expect(screen.queryAllByTestId("spacer-row")).toHaveLength(0);
    expect(screen.getByTestId("positions").getAttribute("data-total-rows")).toBe("100");
    expect(screen.getByTestId("positions-scroll").className).not.toContain("windowed");
  });
});

describe("GatewayWait", () => {
  it("counts down to the next attempt to reach IB Gateway and retries at once on Retry", async () => {
    let push: ((w: import("./bindings").VenueWaiting) => void) | null = null;
    const retries: number[] = [];
    const backend = fakeBackend({
      portfolio: async () => ({ status: "error", error: { code: "unavailable", reason: "venue.waiting_for_gateway", message: "waiting for IB Gateway/TWS" } }),
      onVenueWaiting: async (cb) => {
        push = cb;
        return () => {};
      },
      retryVenueConnect: async () => {
        retries.push(1);
        return { status: "ok", data: null };
      },
    });
    render(<PortfolioPanel backend={backend} />);
    await act(async () => {});
    expect(screen.queryByTestId("gateway-wait")).toBeNull();
    const w = { address: "127.0.0.1:4002", attempt: 3, nextInSecs: 7, message: "nothing is listening on 127.0.0.1:4002", code: "ib.nothing_listening" };
    await act(async () => push!(w));
    expect(screen.getByTestId("gateway-wait").textContent).toContain("127.0.0.1:4002");
    expect(screen.getByTestId("gateway-wait-secs").textContent).toBe("7 s");
    await act(async () => push!({ ...w, nextInSecs: 6 }));
    expect(screen.getByTestId("gateway-wait-secs").textContent).toBe("6 s");
    await act(async () => screen.getByTestId("gateway-retry").click());
    expect(retries).toEqual([1]);
  });
});
