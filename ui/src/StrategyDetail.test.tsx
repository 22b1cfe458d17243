import { act, fireEvent, render, screen, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { App } from "./App";
import type { Backend, Result } from "./backend";
import type { StrategyDetail, StrategyRow } from "./bindings";
import { StrategyDetailScreen } from "./StrategyDetail";
import { ruleDistance, riskView, strategyDetail, gridLoss } from "./testing/detail";
import { fail, fakeBackend, leg, ok, portfolioView, preview, strategy } from "./testing/fakeBackend";

afterEach(() => vi.useRealTimers());

const cells = (row: HTMLElement) => Array.from(row.querySelectorAll("td")).map((td) => td.textContent);

function screenWith(backend: Backend, over: { onBack?: () => void; onFlatten?: () => void } = {}) {
  const onBack = over.onBack ?? vi.fn();
  const onFlatten = over.onFlatten ?? vi.fn();
  render(<StrategyDetailScreen backend={backend} strategyId="42" onBack={onBack} onFlatten={onFlatten} />);
  return { onBack, onFlatten };
}

describe("Strategy detail from the dashboard", () => {
  it("opens from the strategies panel, shows a spinner until the first read, and goes back with the button and Escape", async () => {
    let answer: (r: Result<StrategyDetail>) => void = () => {};
    const strategyDetailCall = vi.fn(() => new Promise<Result<StrategyDetail>>((res) => (answer = res)));
    const backend = fakeBackend({
      portfolio: async () => ok(portfolioView(["DU1"])),
      strategies: async () => ok([strategy({ id: "42" })]),
      strategyDetail: strategyDetailCall,
    });
    render(<App backend={backend} />);
    await act(async () => {});
    await act(async () => fireEvent.click(screen.getByTestId("strategy-details-42")));
    expect(strategyDetailCall).toHaveBeenCalledWith("42");
    expect(screen.getByTestId("detail-loading").textContent).toContain("Loading the strategy");
    expect(screen.queryByTestId("strategies")).toBeNull();

    await act(async () => answer(ok(strategyDetail({ strategy: strategy({ id: "42" }) }))));
    expect(screen.queryByTestId("detail-loading")).toBeNull();
    expect(screen.getByTestId("detail-name").textContent).toBe("SPY iron condor 540/550/600/610");

    fireEvent.click(screen.getByTestId("detail-back"));
    expect(screen.queryByTestId("strategy-detail")).toBeNull();
    expect(screen.getByTestId("strategies")).toBeTruthy();

    await act(async () => fireEvent.click(screen.getByTestId("strategy-details-42")));
    expect(screen.getByTestId("strategy-detail")).toBeTruthy();
    fireEvent.keyDown(document, { key: "Escape" });
    expect(screen.queryByTestId("strategy-detail")).toBeNull();
  });

  it("Flatten… opens the flatten preview over the detail; Escape then closes the dialog, not the screen", async () => {
    const previewFlatten = vi.fn(async () => ok(preview()));
    const broken = strategy({ id: "42", name: "SPY strangle 560/620", badge: "broken: assignment", broken: true });
    const backend = fakeBackend({
      portfolio: async () => ok(portfolioView(["DU1"])),
      strategies: async () => ok([broken]),
      strategyDetail: async () => ok(strategyDetail({ strategy: broken })),
      previewFlatten,
    });
    render(<App backend={backend} />);
    await act(async () => {});
    await act(async () => fireEvent.click(screen.getByTestId("strategy-details-42")));
    const badge = screen.getByTestId("detail-badge");
    expect(badge.textContent).toBe("Broken: assignment");
    expect(badge.className).toContain("broken");
    expect(screen.getByTestId("detail-flatten").className).toContain("danger");

    await act(async () => fireEvent.click(screen.getByTestId("detail-flatten")));
    expect(previewFlatten).toHaveBeenCalledWith({ kind: "strategy", strategyId: "42" });
    expect(screen.getByTestId("flatten-dialog")).toBeTruthy();
    fireEvent.keyDown(document, { key: "Escape" });
    expect(screen.queryByTestId("flatten-dialog")).toBeNull();
    expect(screen.getByTestId("strategy-detail")).toBeTruthy();
  });
});

describe("StrategyDetailScreen", () => {
  it("says what an assignment does to the strategy and records the person's choice (wheel, delivered shares)", async () => {
    const calls: unknown[] = [];
    const plan = strategyDetail().assignment;
    screenWith(
      fakeBackend({
        strategyDetail: async () => ok(strategyDetail({ strategy: strategy({ id: "42" }) })),
        setAssignmentChoice: async (c) => {
          calls.push(c);
          return ok({ ...plan, wheel: c.wheel, intended: c.wheel, stockChoice: c.stock, stock: c.stock ?? plan.stock, text: "An assignment is the plan: an alert with what was delivered or called away; nothing is closed, and delivered shares are kept." });
        },
      }),
    );
    await act(async () => {});
    expect(screen.getByTestId("assignment-plan-text").textContent).toContain("An assignment breaks it");
    expect((screen.getByTestId("assignment-stock") as HTMLSelectElement).value).toBe("default");
    expect(screen.getByTestId("assignment-stock").textContent).toContain("default for iron condor (close)");
    await act(async () => {
      fireEvent.click(screen.getByTestId("assignment-wheel"));
    });
    expect(calls).toEqual([{ strategyId: "42", wheel: true, stock: null }]);
    await act(async () => {
      fireEvent.change(screen.getByTestId("assignment-stock"), { target: { value: "keep" } });
    });
    expect(calls[1]).toEqual({ strategyId: "42", wheel: true, stock: "keep" });
    expect(screen.getByTestId("assignment-plan-text").textContent).toContain("An assignment is the plan");
    expect((screen.getByTestId("assignment-wheel") as HTMLInputElement).checked).toBe(true);
  });

  it("shows why an assignment choice was not recorded", async () => {
    screenWith(
      fakeBackend({
        strategyDetail: async () => ok(strategyDetail()),
        setAssignmentChoice: async () => fail("unavailable", "assignment.stopped", "the assignment guard is not running"),
      }),
    );
    await act(async () => {});
    await act(async () => {
      fireEvent.click(screen.getByTestId("assignment-wheel"));
    });
    expect(screen.getByTestId("assignment-choice-error").textContent).toContain("the assignment guard is not running");
    expect((screen.getByTestId("assignment-wheel") as HTMLInputElement).checked).toBe(false);
  });

  it("shows the header, legs and net Greeks as a trader reads them", async () => {
    const s = strategy({
      id: "42",
      account: "DU7",
      entryCredit: "1310.00",
      pnl: "-1250.5",
      legs: [
        leg({ label: "SPY 21MAR25 540 P", qty: 2, avgPrice: "0.55", mark: "0.40", pnl: "-30.00", delta: 0.04 }),
        leg({ label: "SPY 21MAR25 550 P", qty: -2, avgPrice: "1.60", mark: null, pnl: null, delta: null }),
      ],
    });
    screenWith(fakeBackend({ strategyDetail: async () => ok(strategyDetail({ strategy: s, greeks: { delta: -3.24, gamma: 0.5, vega: -1234.5, theta: 14.75, complete: false } })) }));
    await act(async () => {});
    expect(screen.getByTestId("detail-meta").textContent).toBe("iron condor · account DU7");
    expect(screen.getByTestId("detail-badge").textContent).toBe("Open");
    expect(screen.getByTestId("detail-pnl").textContent).toBe("−$1,250.50");
    expect(screen.getByTestId("detail-pnl").className).toContain("neg");
    expect(screen.getByTestId("detail-credit").textContent).toBe("+$1,310.00");

    const legs = screen.getAllByTestId("detail-leg");
    expect(legs.map(cells)).toEqual([
      ["SPY 21MAR25 540 P", "+2", "$0.55", "$0.40", "−$30.00", "+0.04"],
      ["SPY 21MAR25 550 P", "-2", "$1.60", "no quote", "—", "—"],
    ]);
    expect(screen.getByTestId("greek-delta").textContent).toBe("−3.2");
    expect(screen.getByTestId("greek-gamma").textContent).toBe("+0.50");
    expect(screen.getByTestId("greek-vega").textContent).toBe("−$1,234.50");
    expect(screen.getByTestId("greek-theta").textContent).toBe("+$14.75");
    expect(screen.getByTestId("greeks-partial").textContent).toBe("partial");
  });

  it("refreshes every 2 s without blanking, and on an error keeps the last detail marked stale with the error's code", async () => {
    vi.useFakeTimers();
    const answers: Result<StrategyDetail>[] = [
      ok(strategyDetail({ strategy: strategy({ pnl: "45.00" }) })),
      ok(strategyDetail({ strategy: strategy({ pnl: "60.00" }) })),
      fail("unavailable", "venue.disconnected", "The venue connection was lost"),
      ok(strategyDetail({ strategy: strategy({ pnl: "75.00" }) })),
    ];
    let i = 0;
    const call = vi.fn(async () => answers[Math.min(i++, answers.length - 1)]);
    screenWith(fakeBackend({ strategyDetail: call }));
    await act(async () => {});
    expect(screen.getByTestId("detail-pnl").textContent).toBe("+$45.00");

    await act(async () => {
      await vi.advanceTimersByTimeAsync(1999);
    });
    expect(call).toHaveBeenCalledTimes(1);
    await act(async () => {
      await vi.advanceTimersByTimeAsync(1);
    });
    expect(screen.getByTestId("detail-pnl").textContent).toBe("+$60.00");

    await act(async () => {
      await vi.advanceTimersByTimeAsync(2000);
    });
    expect(screen.getByTestId("detail-pnl").textContent).toBe("+$60.00");
    expect(screen.getByTestId("detail-error").textContent).toContain("The venue connection was lost");
    expect(screen.getByTestId("detail-error").textContent).toContain("unavailable · venue.disconnected");
    expect(screen.getByTestId("detail-stale").textContent).toContain("stale");

    await act(async () => {
      await vi.advanceTimersByTimeAsync(2000);
    });
    expect(screen.getByTestId("detail-pnl").textContent).toBe("+$75.00");
    expect(screen.queryByTestId("detail-error")).toBeNull();
    expect(screen.queryByTestId("detail-stale")).toBeNull();
  });

  it("a first read that fails shows the error where the person is", async () => {
    screenWith(fakeBackend({ strategyDetail: async () => fail("not_found", "strategy.unknown", "No such strategy") }));
    await act(async () => {});
    expect(screen.getByTestId("detail-error").textContent).toContain("No such strategy");
    expect(screen.getByTestId("detail-error").textContent).toContain("not_found · strategy.unknown");
    expect(screen.queryByTestId("detail-loading")).toBeNull();
  });

  it("re-reads after strategiesChanged events, at most once a second", async () => {
    vi.useFakeTimers();
    let push: ((rows: StrategyRow[]) => void) | null = null;
    const unlisten = vi.fn();
    const call = vi.fn(async () => ok(strategyDetail()));
    render(
      <StrategyDetailScreen
        backend={fakeBackend({
          strategyDetail: call,
          onStrategies: async (cb) => {
            push = cb;
            return unlisten;
          },
        })}
        strategyId="42"
        onBack={() => {}}
        onFlatten={() => {}}
      />,
    );
    await act(async () => {});
    expect(call).toHaveBeenCalledTimes(1);
    await act(async () => {
      await vi.advanceTimersByTimeAsync(1200);
    });
    act(() => push!([]));
    await act(async () => {
      await vi.advanceTimersByTimeAsync(0);
    });
    expect(call).toHaveBeenCalledTimes(2); // a second after the last read: at once

    act(() => {
      push!([]);
      push!([]);
      push!([]);
    });
    await act(async () => {
      await vi.advanceTimersByTimeAsync(500);
    });
    expect(call).toHaveBeenCalledTimes(2); // throttled
    await act(async () => {
      await vi.advanceTimersByTimeAsync(500);
    });
    expect(call).toHaveBeenCalledTimes(3); // one read for the burst
  });

  it("shows the stress grid with the worst case against the margin buffer, per spread multiplier", async () => {
    screenWith(fakeBackend({ strategyDetail: async () => ok(strategyDetail({ marginBuffer: 80000, worstExceedsBuffer: false })) }));
    await act(async () => {});
    const table = screen.getByTestId("stress-table");
    const head = Array.from(table.querySelectorAll("thead th")).map((th) => th.textContent);
    expect(head).toEqual(["IV \\ move", "−15 %", "0 %", "+15 %"]);
    const rows = within(table).getAllByTestId("stress-row");
    expect(rows.map((r) => r.querySelector("th")?.textContent)).toEqual(["IV ×1.0", "IV ×1.3", "IV ×1.5"]);
    // Default spreads ×1.0: P&L if closed = −loss.
    const money = (n: number) => (n === 0 ? "$0" : `${n < 0 ? "−" : "+"}$${Math.abs(n).toLocaleString("en-US")}`);
    expect(cells(rows[0])).toEqual([-15, 0, 15].map((m) => money(-gridLoss(m, 1, 1))));
    expect(screen.getByTestId("spread-1").getAttribute("aria-checked")).toBe("true");
    expect(screen.queryByTestId("stress-worst")).toBeNull(); // the worst is at spreads ×2.0

    const summary = screen.getByTestId("stress-summary").textContent;
    expect(summary).toContain(`Worst case: −$${gridLoss(-15, 1.5, 2).toLocaleString("en-US")}.00 at move −15 %, IV ×1.5, spreads ×2.0`);
    expect(summary).toContain("margin buffer $80,000.00: covered");

    fireEvent.click(screen.getByTestId("spread-2"));
    expect(screen.getByTestId("spread-2").getAttribute("aria-checked")).toBe("true");
    const after = within(screen.getByTestId("stress-table")).getAllByTestId("stress-row");
    expect(cells(after[2])[0]).toBe(money(-gridLoss(-15, 1.5, 2)));
    const worst = screen.getByTestId("stress-worst");
    expect(worst.textContent).toBe(money(-gridLoss(-15, 1.5, 2)));
    expect(worst.className).toContain("worst");
    expect(worst.style.background).toContain("rgba(248, 81, 73");
  });

  it("states in red how far the worst case exceeds the margin buffer", async () => {
    screenWith(fakeBackend({ strategyDetail: async () => ok(strategyDetail({ marginBuffer: 1500, worstExceedsBuffer: true })) }));
    await act(async () => {});
    const note = screen.getByTestId("stress-exceeds");
    expect(note.textContent).toBe(`exceeds the margin buffer by $${(gridLoss(-15, 1.5, 2) - 1500).toLocaleString("en-US")}.00`);
    expect(note.className).toContain("neg");
  });

  it("shows why there is no payoff or stress instead of the chart and table", async () => {
    screenWith(
      fakeBackend({
        strategyDetail: async () =>
          ok(strategyDetail({ risk: null, riskError: { code: "unavailable", reason: "analysis.no_iv", message: "no implied vol for SPY 21MAR25 550 P" }, worstExceedsBuffer: null })),
      }),
    );
    await act(async () => {});
    expect(screen.getByTestId("risk-error").textContent).toContain("no implied vol for SPY 21MAR25 550 P");
    expect(screen.queryByTestId("payoff-chart")).toBeNull();
    expect(screen.queryByTestId("stress-table")).toBeNull();
    expect(screen.getByTestId("detail-rules")).toBeTruthy();
  });

  it("lists the rules that apply with action, dry-run, distance, progress and status", async () => {
    const rules = [
      ruleDistance(),
      ruleDistance({ ruleId: "sl-2x", kind: "stop_loss", action: "flatten", dryRun: true, status: "triggered", trigger: "−$620.00", current: "−$700.00", distance: "triggered", progress: 1 }),
      ruleDistance({ ruleId: "dte-7", kind: "days_to_expiry", status: "unknown", progress: null }),
      ruleDistance({ ruleId: "delta", kind: "delta_limit", status: "inactive", progress: 0 }),
    ];
    screenWith(fakeBackend({ strategyDetail: async () => ok(strategyDetail({ rules, rulesError: { code: "storage", reason: "config.unreadable", message: "risk.toml unreadable: keeping the last good rules" } })) }));
    await act(async () => {});
    const rows = screen.getAllByTestId("rule-row");
    expect(rows.map((r) => r.getAttribute("data-status"))).toEqual(["clear", "triggered", "unknown", "inactive"]);
    expect(cells(rows[0])).toEqual(["tp-50", "profit target", "alert", "+$155.00 (50 % of credit)", "+$45.00", "$110.00 to go", "29 %", "clear"]);
    expect(cells(rows[1])[2]).toBe("flattenDRY-RUN");
    expect(within(rows[1]).getByTestId("rule-dry-run")).toBeTruthy();
    expect(within(rows[0]).queryByTestId("rule-dry-run")).toBeNull();
    expect(rows[1].querySelector(".rule-status")?.className).toContain("triggered");
    expect(rows[2].querySelector(".rule-status")?.className).toContain("unknown");
    expect(cells(rows[2])[6]).toBe("—");
    expect(rows[3].className).toContain("inactive");
    expect(within(rows[0]).getByRole("meter").getAttribute("aria-valuenow")).toBe("29");
    expect(screen.getByTestId("rules-error").textContent).toContain("storage · config.unreadable");
    expect(screen.getByTestId("rules-path").textContent).toBe("/home/t/.config/tradeguard/risk.toml");
  });

  it("hands the payoff to the chart only when there is one", async () => {
    screenWith(fakeBackend({ strategyDetail: async () => ok(strategyDetail({ risk: riskView() })) }));
    await act(async () => {});
    expect(screen.getByTestId("payoff-chart").getAttribute("aria-label")).toContain("SPY");
  });
});
