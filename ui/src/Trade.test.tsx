import { act, fireEvent, render, screen } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import type { ChainRowView, EntryPreviewView, OptionChainView, TicketInput } from "./bindings";
import { clickLegs, TradeScreen, type Leg } from "./Trade";
import { fail, fakeBackend, ok } from "./testing/fakeBackend";

const occ = (right: "C" | "P", k: number) => `SPY   250321${right}${String(k * 1000).padStart(8, "0")}`;
const cell = (right: "C" | "P", k: number) => ({ instrument: occ(right, k), bid: "1.00", ask: "1.10", last: null, iv: 0.15, delta: right === "C" ? 0.3 : -0.3 });
const rows: ChainRowView[] = [480, 490, 500, 510, 520].map((k) => ({ strike: `${k}`, call: cell("C", k), put: cell("P", k) }));
const chain: OptionChainView = { underlying: "SPY", spot: "500.00", expiries: ["2025-03-21", "2025-03-28"], expiry: "2025-03-21", rows, account: "DU1" };

const preview = (over: Partial<EntryPreviewView> = {}): EntryPreviewView => ({
  id: "ep-1",
  title: "Open 1 × iron condor on SPY",
  account: "DU1",
  orders: [
    { step: 1, side: "BUY", qty: 1, label: "SPY 480 P", limit: "1.10", bid: "1.00", ask: "1.10", refusal: null },
    { step: 2, side: "SELL", qty: 1, label: "SPY 490 P", limit: "1.00", bid: "1.00", ask: "1.10", refusal: null },
  ],
  netLabel: "credit 0.40",
  netCash: "40.00",
  plan: ["Legged in 2 steps: protective legs first."],
  underlying: "SPY",
  spot: 500,
  strikes: [480, 490],
  payoff: [],
  maxProfit: 40,
  maxLoss: 960,
  breakevens: [489.6],
  probabilityOfProfit: 0.7,
  profileExact: true,
  marginGross: 1000,
  marginNet: 960,
  marginSource: "Reg T calculator",
  passes: true,
  refusal: null,
  refusalCode: null,
  stress: { worstCase: "1200.00", scenario: "underlying −3 %", limit: "90000.00", available: "100000.00", pct: 90, error: null },
  expiresInSecs: 60,
  exits: [],
  ...over,
});

const names = (legs: Leg[] | string) => (typeof legs === "string" ? legs : legs.map((l) => `${l.side} ${l.ratio} ${l.instrument}`));

describe("clickLegs", () => {
  it("builds an iron condor from a put bid and a call bid, wings by the width", () => {
    const puts = clickLegs("iron_condor", [], rows, "2025-03-21", "SPY", 490, "put", "sell", 10);
    expect(names(puts)).toEqual([`buy 1 ${occ("P", 480)}`, `sell 1 ${occ("P", 490)}`]);
    const both = clickLegs("iron_condor", puts as Leg[], rows, "2025-03-21", "SPY", 510, "call", "sell", 10);
    expect(names(both)).toEqual([`buy 1 ${occ("P", 480)}`, `sell 1 ${occ("P", 490)}`, `buy 1 ${occ("C", 520)}`, `sell 1 ${occ("C", 510)}`]);
  });

  it("says what is missing instead of guessing", () => {
    expect(clickLegs("iron_condor", [], rows, "2025-03-21", "SPY", 480, "put", "sell", 10)).toBe("strike 470 is not in the chain shown");
    expect(clickLegs("cash_secured_put", [], rows, "2025-03-21", "SPY", 510, "call", "sell", 10)).toMatch(/click a put's bid/);
    expect(names(clickLegs("butterfly", [], rows, "2025-03-21", "SPY", 500, "call", "buy", 10))).toEqual([
      `buy 1 ${occ("C", 490)}`,
      `sell 2 ${occ("C", 500)}`,
      `buy 1 ${occ("C", 510)}`,
    ]);
  });
});

describe("TradeScreen", () => {
  it("fills the ticket from the chain, previews, and places only after the confirm", async () => {
    const previewEntry = vi.fn(async (_t: TicketInput) => ok(preview({ exits: ["stop-loss at a loss of 2.00 × the entry premium (hybrid exit)"] })));
    const placeEntry = vi.fn(async (_id: string) => ok({ previewId: "ep-1", group: "7" }));
    const backend = fakeBackend({ optionChain: async () => ok(chain), previewEntry, placeEntry });
    render(<TradeScreen backend={backend} />);
    await act(async () => {});
    fireEvent.click(screen.getByTestId("chain-490-put-bid"));
    fireEvent.click(screen.getByTestId("chain-510-call-bid"));
    expect(screen.getByTestId("ticket-legs").querySelectorAll("li")).toHaveLength(4);
    fireEvent.change(screen.getByTestId("ticket-stop"), { target: { value: "2" } });
    await act(async () => {
      fireEvent.click(screen.getByTestId("ticket-preview"));
    });
    expect(previewEntry).toHaveBeenCalledTimes(1);
    const sent = previewEntry.mock.calls[0][0];
    expect(sent.account).toBe("DU1");
    expect(sent.template).toBe("iron_condor");
    expect(sent.legs).toHaveLength(4);
    expect(sent.stopLossMultiple).toBe("2");
    expect(sent.profitTargetPct).toBeNull();
    expect(screen.getByTestId("entry-exits").textContent).toMatch(/stop-loss at a loss of 2.00/);
    expect(placeEntry).not.toHaveBeenCalled();
    expect(screen.getByTestId("entry-verdict").textContent).toMatch(/would pass/);
    expect(screen.getAllByTestId("entry-order")).toHaveLength(2);
    await act(async () => {
      fireEvent.click(screen.getByTestId("entry-preview-confirm"));
    });
    expect(placeEntry).toHaveBeenCalledWith("ep-1");
    expect(screen.getByTestId("entry-placed").textContent).toMatch(/group 7/);
  });

  it("shows a stress refusal and cannot confirm it", async () => {
    const refusal = "worst case 75000.00 (underlying −3 %, IV +50 %) exceeds 90 % of available funds 20000.00 (18000.00) by 57000.00";
    const placeEntry = vi.fn(async () => fail<never>("invalid_input", "gate.stress_limit", refusal));
    const backend = fakeBackend({
      optionChain: async () => ok(chain),
      previewEntry: async () => ok(preview({ passes: false, refusal, refusalCode: "gate.stress_limit" })),
      placeEntry,
    });
    render(<TradeScreen backend={backend} />);
    await act(async () => {});
    fireEvent.click(screen.getByTestId("chain-490-put-bid"));
    await act(async () => {
      fireEvent.click(screen.getByTestId("ticket-preview"));
    });
    expect(screen.getByTestId("entry-verdict").textContent).toContain("underlying −3 %, IV +50 %");
    expect((screen.getByTestId("entry-preview-confirm") as HTMLButtonElement).disabled).toBe(true);
    expect(placeEntry).not.toHaveBeenCalled();
  });
});
