import { act, fireEvent, render, screen, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { App } from "./App";
import type { Result } from "./backend";
import type { StrategyRow } from "./bindings";
import type { FlattenRequest } from "./FlattenDialog";
import { badgeLabel, kindLabel, sameStrategy, StrategiesPanel, useStrategies } from "./Strategies";
import { fakeBackend, fail, guardView, leg, ok, portfolioView, preview, strategy } from "./testing/fakeBackend";

const condor = strategy({
  legs: [
    leg({ label: "SPY 21MAR25 540 P", qty: 1, avgPrice: "0.55", mark: "0.40", pnl: "-15.00", delta: 0.04 }),
    leg({ label: "SPY 21MAR25 550 P", qty: -1, avgPrice: "1.60", mark: "1.25", pnl: "35.00", delta: -0.09 }),
  ],
});
const strangle = strategy({
  id: "42",
  name: "SPY strangle 560/620",
  kind: "strangle",
  badge: "broken: assignment",
  broken: true,
  entryCredit: "420.00",
  pnl: "-1250.00",
  legs: [leg({ label: "SPY 21MAR25 620 C", qty: -1, mark: null, pnl: null, delta: null })],
});
const spread = strategy({ id: "7", account: "DU2", name: "QQQ put spread", kind: "vertical", badge: "closing", entryCredit: "-95.00" });

function panel(rows: StrategyRow[] | null, over: Partial<Parameters<typeof StrategiesPanel>[0]> = {}) {
  const onFlatten = vi.fn<(r: FlattenRequest) => void>();
  render(<StrategiesPanel rows={rows} error={null} accounts={["DU1"]} forcedUnwind={[]} onFlatten={onFlatten} {...over} />);
  return onFlatten;
}

afterEach(() => {
  vi.useRealTimers();
});

describe("StrategiesPanel", () => {
  it("shows the exits attached at entry under the strategy's name, and only there", () => {
    const withStop = strategy({ id: "9", exits: ["stop-loss at a loss of 2.00 × the entry premium (hybrid exit)"] });
    panel([withStop, spread], { accounts: ["DU1", "DU2"] });
    const shown = screen.getAllByTestId("strategy-exits");
    expect(shown).toHaveLength(1);
    expect(shown[0].textContent).toContain("stop-loss at a loss of 2.00");
    expect(sameStrategy(withStop, { ...withStop, exits: [] })).toBe(false);
  });

  it("lists strategies by account with name, kind, state, entry credit and P&L; Broken stands out", () => {
    panel([condor, strangle, spread], { accounts: ["DU1", "DU2"] });
    const rows = screen.getAllByTestId("strategy");
    expect(rows.map((r) => r.getAttribute("data-strategy-name"))).toEqual([condor.name, "SPY strangle 560/620", "QQQ put spread"]);
    expect(rows.map((r) => r.getAttribute("data-badge"))).toEqual(["open", "broken: assignment", "closing"]);
    const accounts = screen.getAllByTestId("strategy-account");
    expect(accounts.map((a) => a.getAttribute("data-account"))).toEqual(["DU1", "DU2"]);
    expect(within(accounts[1]).getAllByTestId("strategy")).toHaveLength(1);

    const cells = (r: HTMLElement) => Array.from(r.querySelectorAll("td")).map((td) => td.textContent);
    expect(cells(rows[0]).slice(1, 6)).toEqual([condor.name, "iron condor", "Open", "+310.00", "+45.00"]);
    expect(cells(rows[1]).slice(3, 6)).toEqual(["Broken: assignment", "+420.00", "-1,250.00"]);
    expect(cells(rows[2])[4]).toBe("-95.00");
    expect(rows[1].className).toContain("broken");
    expect(within(rows[1]).getByTestId("strategy-badge").className).toContain("broken");
    expect(within(rows[0]).getByTestId("strategy-badge").className).not.toContain("broken");
    expect(within(rows[1]).getByTestId("strategy-flatten").className).toContain("danger");
  });

  it("expands the legs of a strategy", () => {
    panel([condor, strangle]);
    expect(screen.queryByTestId("strategy-legs")).toBeNull();
    const expand = within(screen.getAllByTestId("strategy")[0]).getByTestId("strategy-expand");
    expect(expand.getAttribute("aria-expanded")).toBe("false");
    fireEvent.click(expand);
    expect(expand.getAttribute("aria-expanded")).toBe("true");
    const legs = within(screen.getByTestId("strategy-legs")).getAllByTestId("strategy-leg");
    expect(legs.map((l) => Array.from(l.querySelectorAll("td")).map((td) => td.textContent))).toEqual([
      ["SPY 21MAR25 540 P", "+1", "0.55", "0.40", "-15.00", "0.04"],
      ["SPY 21MAR25 550 P", "-1", "1.60", "1.25", "+35.00", "-0.09"],
    ]);
    fireEvent.click(within(screen.getAllByTestId("strategy")[1]).getByTestId("strategy-expand"));
    const second = screen.getAllByTestId("strategy-legs")[1];
    expect(within(second).getByTestId("strategy-leg").textContent).toContain("no quote");
    fireEvent.click(expand);
    expect(screen.getAllByTestId("strategy-legs")).toHaveLength(1);
  });

  it("asks for a flatten of one strategy (by its decimal id), of an account, and for the forced-unwind switch", () => {
    const onFlatten = panel([condor, spread], { accounts: ["DU1", "DU2"], forcedUnwind: ["DU2"] });
    fireEvent.click(within(screen.getAllByTestId("strategy")[0]).getByTestId("strategy-flatten"));
    expect(onFlatten).toHaveBeenLastCalledWith({ kind: "strategy", strategyId: "18446744073709551615", name: condor.name });
    const flattenAll = screen.getAllByTestId("flatten-all");
    expect(flattenAll.map((b) => b.getAttribute("data-account"))).toEqual(["DU1", "DU2"]);
    fireEvent.click(flattenAll[1]);
    expect(onFlatten).toHaveBeenLastCalledWith({ kind: "account", account: "DU2" });

    const [du1, du2] = screen.getAllByTestId("forced-unwind");
    expect(du1.getAttribute("role")).toBe("switch");
    expect(du1.getAttribute("aria-checked")).toBe("false");
    expect(du2.getAttribute("aria-checked")).toBe("true");
    fireEvent.click(du1);
    expect(onFlatten).toHaveBeenLastCalledWith({ kind: "forcedUnwind", account: "DU1", on: true });
    fireEvent.click(du2);
    expect(onFlatten).toHaveBeenLastCalledWith({ kind: "forcedUnwind", account: "DU2", on: false });
  });

  it("shows an account without strategies (it can still be flattened) and a read error", () => {
    panel([], { accounts: ["DU1"], error: { code: "unavailable", reason: "engine.starting", message: "not ready" } });
    expect(screen.getByTestId("strategy-account").textContent).toContain("No strategy");
    expect(screen.getByTestId("flatten-all").getAttribute("data-account")).toBe("DU1");
    expect(screen.getByTestId("strategies-error").textContent).toContain("unavailable · engine.starting");
  });

  it("helpers", () => {
    expect(kindLabel("iron_condor")).toBe("iron condor");
    expect(badgeLabel("broken: assignment")).toBe("Broken: assignment");
  });
});

function Polled({ backend }: { backend: Parameters<typeof useStrategies>[0] }) {
  const { rows, error } = useStrategies(backend, 1000);
  return <StrategiesPanel rows={rows} error={error} accounts={[]} forcedUnwind={[]} onFlatten={() => {}} />;
}

describe("useStrategies", () => {
  it("polls (here once a second), keeps the last rows through an error, and stops on unmount", async () => {
    vi.useFakeTimers();
    const answers: Result<StrategyRow[]>[] = [ok([condor]), fail("unavailable", "venue.disconnected", "lost"), ok([condor, strangle])];
    let i = 0;
    const strategies = vi.fn(async () => answers[Math.min(i++, answers.length - 1)]);
    const { unmount } = render(<Polled backend={fakeBackend({ strategies })} />);
    await act(async () => {});
    expect(screen.getAllByTestId("strategy")).toHaveLength(1);
    await act(async () => {
      await vi.advanceTimersByTimeAsync(1000);
    });
    expect(screen.getAllByTestId("strategy")).toHaveLength(1);
    expect(screen.getByTestId("strategies-error")).toBeTruthy();
    await act(async () => {
      await vi.advanceTimersByTimeAsync(1000);
    });
    expect(screen.getAllByTestId("strategy")).toHaveLength(2);
    expect(screen.queryByTestId("strategies-error")).toBeNull();
    unmount();
    await vi.advanceTimersByTimeAsync(5000);
    expect(strategies).toHaveBeenCalledTimes(3);
  });
});

describe("useStrategies events", () => {
  it("applies pushed rows at once and keeps only a slow fallback poll", async () => {
    vi.useFakeTimers();
    let push: ((rows: StrategyRow[]) => void) | null = null;
    const unlisten = vi.fn();
    const strategies = vi.fn(async () => ok([condor]));
    const backend = fakeBackend({
      strategies,
      onStrategies: async (cb) => {
        push = cb;
        return unlisten;
      },
    });
    function Live() {
      const { rows, error } = useStrategies(backend);
      return <StrategiesPanel rows={rows} error={error} accounts={[]} forcedUnwind={[]} onFlatten={() => {}} />;
    }
    const { unmount } = render(<Live />);
    await act(async () => {});
    expect(screen.getAllByTestId("strategy").map((r) => r.getAttribute("data-badge"))).toEqual(["open"]);

    act(() => push!([{ ...condor, badge: "closing", pnl: "80.00" }, strangle]));
    const rows = screen.getAllByTestId("strategy");
    expect(rows.map((r) => r.getAttribute("data-badge"))).toEqual(["closing", "broken: assignment"]);
    expect(rows[0].querySelectorAll("td")[5].textContent).toBe("+80.00");

    // One read at mount; the next only after the 10 s fallback.
    await act(async () => {
      await vi.advanceTimersByTimeAsync(9000);
    });
    expect(strategies).toHaveBeenCalledTimes(1);
    await act(async () => {
      await vi.advanceTimersByTimeAsync(1000);
    });
    expect(strategies).toHaveBeenCalledTimes(2);
    unmount();
    expect(unlisten).toHaveBeenCalled();
  });

  it("re-renders only the strategies whose figures changed", () => {
    expect(sameStrategy(condor, { ...condor, legs: condor.legs.map((l) => ({ ...l })) })).toBe(true);
    expect(sameStrategy(condor, { ...condor, pnl: "46.00" })).toBe(false);
    expect(sameStrategy(condor, { ...condor, legs: [condor.legs[0], { ...condor.legs[1], mark: "1.30" }] })).toBe(false);
  });

  it("opens the details of a strategy by its id", () => {
    const onDetails = vi.fn();
    render(<StrategiesPanel rows={[condor, strangle]} error={null} accounts={["DU1"]} forcedUnwind={[]} onFlatten={() => {}} onDetails={onDetails} />);
    fireEvent.click(screen.getByTestId("strategy-details-42"));
    expect(onDetails).toHaveBeenCalledWith("42");
  });
});

describe("Dashboard flatten actions", () => {
  it("Flatten… on a strategy opens its preview; the forced-unwind switch previews the opposite state", async () => {
    const previewFlatten = vi.fn(async () => ok(preview()));
    const previewForcedUnwind = vi.fn(async (account: string, on: boolean) => ok(preview({ title: `Forced unwind ${account} ${on}` })));
    const backend = fakeBackend({
      portfolio: async () => ok(portfolioView(["DU1", "DU2"])),
      guardStatus: async () => ok(guardView({ forcedUnwind: ["DU2"] })),
      strategies: async () => ok([condor, strangle]),
      previewFlatten,
      previewForcedUnwind,
    });
    render(<App backend={backend} />);
    await act(async () => {});
    expect(screen.getAllByTestId("strategy")).toHaveLength(2);

    await act(async () => fireEvent.click(within(screen.getAllByTestId("strategy")[1]).getByTestId("strategy-flatten")));
    expect(previewFlatten).toHaveBeenCalledWith({ kind: "strategy", strategyId: "42" });
    expect(screen.getByTestId("flatten-dialog")).toBeTruthy();
    fireEvent.click(screen.getByTestId("flatten-cancel"));
    expect(screen.queryByTestId("flatten-dialog")).toBeNull();

    const du2 = screen.getAllByTestId("forced-unwind").find((b) => b.getAttribute("data-account") === "DU2")!;
    expect(du2.getAttribute("aria-checked")).toBe("true");
    await act(async () => fireEvent.click(du2));
    expect(previewForcedUnwind).toHaveBeenLastCalledWith("DU2", false);
    expect(screen.getByTestId("flatten-title").textContent).toBe("Forced unwind DU2 false");
    fireEvent.keyDown(document, { key: "Escape" });

    const du1 = screen.getAllByTestId("forced-unwind").find((b) => b.getAttribute("data-account") === "DU1")!;
    await act(async () => fireEvent.click(du1));
    expect(previewForcedUnwind).toHaveBeenLastCalledWith("DU1", true);
    expect(screen.getByTestId("flatten-confirm").textContent).toBe("Turn forced unwind on");
  });
});

describe("strategies windowing", () => {
  const many = (n: number) => Array.from({ length: n }, (_, i) => ({ ...condor, id: `s${i}`, name: `condor ${String(i).padStart(3, "0")}` }));
  const names = () => screen.getAllByTestId("strategy").map((r) => r.getAttribute("data-strategy-name"));

  it("renders a window of 250 strategies; an expanded row stays expanded when scrolled out and back", () => {
    const frames: FrameRequestCallback[] = [];
    vi.stubGlobal("requestAnimationFrame", (cb: FrameRequestCallback) => frames.push(cb));
    vi.stubGlobal("cancelAnimationFrame", () => {});
    try {
      panel(many(250));
      const shown = names();
      expect(shown[0]).toBe("condor 000");
      expect(shown.length).toBeLessThan(60);
      expect(document.querySelector(".strategies-table")!.getAttribute("data-total-rows")).toBe("250");
      fireEvent.click(screen.getByRole("button", { name: "Show legs of condor 001" }));
      expect(screen.getAllByTestId("strategy-legs")).toHaveLength(1);

      const box = screen.getByTestId("strategies-scroll");
      const scrollTo = (y: number) => {
        box.scrollTop = y;
        box.dispatchEvent(new Event("scroll"));
        act(() => frames.splice(0).forEach((f) => f(performance.now())));
      };
      scrollTo(200 * 36);
      expect(names()).not.toContain("condor 001");
      expect(names()).toContain("condor 200");
      expect(screen.queryAllByTestId("strategy-legs")).toHaveLength(0);
      scrollTo(0);
      expect(names()).toContain("condor 001");
      expect(screen.getAllByTestId("strategy-legs")).toHaveLength(1);
      expect(screen.getByRole("button", { name: "Hide legs of condor 001" }).getAttribute("aria-expanded")).toBe("true");
    } finally {
      vi.unstubAllGlobals();
    }
  });

  it("renders up to 100 strategies fully", () => {
    panel(many(100));
    expect(screen.getAllByTestId("strategy")).toHaveLength(100);
    expect(screen.queryAllByTestId("spacer-row")).toHaveLength(0);
  });
});
