import { act, fireEvent, render, screen, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Backend, Result } from "./backend";
import type { FlattenPreviewView, FlattenProgressView, FlattenTarget } from "./bindings";
import { cashWording, FlattenDialog, type FlattenRequest, orderedSteps, sortWarnings } from "./FlattenDialog";
import { fail, fakeBackend, flattenOrder, ok, orderProgress, preview, progress, ticket } from "./testing/fakeBackend";

const condor: FlattenRequest = { kind: "strategy", strategyId: "18446744073709551615", name: "SPY iron condor" };

/** Four legs in two steps, listed out of order by the backend on purpose. */
const fourLegs = preview({
  orders: [
    flattenOrder({ step: 2, side: "SELL", label: "SPY 21MAR25 540 P", orderType: "limit 0.40", price: "0.40", priceSide: "bid", cash: "40.00" }),
    flattenOrder({ step: 1, side: "BUY", label: "SPY 21MAR25 550 P", price: "1.25", priceSide: "ask", cash: "-125.00" }),
    flattenOrder({
      step: 1,
      side: "BUY",
      label: "SPY 21MAR25 600 C",
      orderType: "market",
      price: "2.10",
      priceSide: "ask",
      staleQuote: true,
      quoteAgeSecs: 95,
      cash: "-210.00",
    }),
    flattenOrder({ step: 2, side: "SELL", label: "SPY 21MAR25 610 C", orderType: "limit 0.30", price: null, priceSide: null, cash: null }),
  ],
  estimatedCash: "-295.00",
  estimateComplete: false,
  warnings: [
    { code: "quote.stale", severity: "warning", message: "SPY 600 C quote is 95 s old" },
    { code: "flatten.info", severity: "info", message: "Step 2 waits for the fills of step 1" },
    { code: "strategy.broken", severity: "critical", message: "Broken strategy: the emergency path closes it" },
  ],
  excluded: ["SPY 590 P: an emergency close is already under way"],
});

async function open(backend: Backend, request: FlattenRequest = condor, onClose = vi.fn()) {
  render(<FlattenDialog backend={backend} request={request} onClose={onClose} pollMs={500} />);
  await act(async () => {});
  return onClose;
}

const button = (id: string) => screen.getByTestId(id) as HTMLButtonElement;

afterEach(() => {
  vi.useRealTimers();
});

describe("flatten helpers", () => {
  it("words the estimated cash as a credit or a debit", () => {
    expect(cashWording("1234.5")).toBe("Estimated credit +1,234.50 (you receive)");
    expect(cashWording("-125.00")).toBe("Estimated debit 125.00 (you pay)");
    expect(cashWording("0")).toBe("Estimated cash 0.00");
  });

  it("orders by step, keeping the backend's order inside a step; critical warnings first", () => {
    expect(orderedSteps(fourLegs.orders).map((o) => o.label)).toEqual([
      "SPY 21MAR25 550 P",
      "SPY 21MAR25 600 C",
      "SPY 21MAR25 540 P",
      "SPY 21MAR25 610 C",
    ]);
    expect(sortWarnings(fourLegs.warnings).map((w) => w.severity)).toEqual(["critical", "warning", "info"]);
  });
});

describe("FlattenDialog preview", () => {
  it("previews the target and shows the orders in step order, cash, warnings and what is left out", async () => {
    const previewFlatten = vi.fn(async (_t: FlattenTarget) => ok(fourLegs));
    const confirmFlatten = vi.fn(async () => ok(ticket()));
    await open(fakeBackend({ previewFlatten, confirmFlatten }));
    expect(previewFlatten).toHaveBeenCalledWith({ kind: "strategy", strategyId: "18446744073709551615" });
    expect(screen.getByRole("dialog", { name: fourLegs.title })).toBe(screen.getByTestId("flatten-dialog"));
    expect(screen.getByTestId("flatten-title").textContent).toBe(fourLegs.title);

    const rows = within(screen.getByTestId("flatten-orders")).getAllByTestId("flatten-order");
    expect(rows.map((r) => r.getAttribute("data-step"))).toEqual(["1", "1", "2", "2"]);
    const cells = rows.map((r) => Array.from(r.querySelectorAll("td")).map((td) => td.textContent));
    expect(cells[0]).toEqual(["1", "BUY", "1", "SPY 21MAR25 550 P", "limit 1.25", "1.25 ask", "-125.00"]);
    expect(cells[1][3]).toBe("SPY 21MAR25 600 C");
    expect(cells[1][5]).toContain("stale 95 s");
    expect(within(rows[1]).getByTestId("flatten-stale")).toBeTruthy();
    expect(within(rows[0]).queryByTestId("flatten-stale")).toBeNull();
    expect(cells[2]).toEqual(["2", "SELL", "1", "SPY 21MAR25 540 P", "limit 0.40", "0.40 bid", "+40.00"]);
    expect(cells[3][5]).toBe("no quote");

    const cash = screen.getByTestId("flatten-cash").textContent;
    expect(cash).toContain("Estimated debit 295.00 (you pay)");
    expect(cash).toContain("incomplete");

    const warnings = within(screen.getByTestId("flatten-warnings")).getAllByTestId("flatten-warning");
    expect(warnings.map((w) => w.getAttribute("data-severity"))).toEqual(["critical", "warning", "info"]);
    expect(warnings[0].textContent).toContain("Broken strategy");
    expect(warnings[0].className).toContain("critical");

    expect(screen.getByTestId("flatten-excluded").textContent).toContain("SPY 590 P");
    expect(screen.queryByTestId("flatten-dry-run")).toBeNull();
    expect(screen.queryByTestId("flatten-emergency")).toBeNull();
    expect(screen.getByTestId("flatten-expiry").textContent).toContain("30 s");
    expect(button("flatten-confirm").textContent).toBe("Send 4 orders");
    expect(document.activeElement).toBe(screen.getByTestId("flatten-cancel"));
    expect(confirmFlatten).not.toHaveBeenCalled();
  });

  it("shows a close split into child orders, counts them on the button, and flags an order the gate would refuse", async () => {
    const p = preview({
      orders: [
        flattenOrder({ step: 1, side: "BUY", qty: 300, label: "SPY 21MAR25 520 C", childOrders: 3, maxChildQty: 100 }),
        flattenOrder({ step: 2, side: "SELL", qty: 2000, label: "QQQ", childOrders: 20, maxChildQty: 100 }),
        flattenOrder({ step: 3, side: "SELL", qty: 50, label: "SPY", gateRefusal: "gate.broken_strategy_leg" }),
      ],
      warnings: [
        {
          code: "flatten.warn.gate_refusal",
          severity: "critical",
          message: "SPY: the pre-trade gate would refuse this order now (gate.broken_strategy_leg)",
        },
      ],
    });
    await open(fakeBackend({ previewFlatten: async () => ok(p) }));
    const rows = within(screen.getByTestId("flatten-orders")).getAllByTestId("flatten-order");
    expect(within(rows[0]).getByTestId("flatten-order-split").textContent).toBe(" as 3 orders of ≤ 100");
    expect(rows[1].querySelectorAll("td")[2].textContent).toBe("2000 as 20 orders of ≤ 100");
    expect(within(rows[2]).queryByTestId("flatten-order-split")).toBeNull();
    expect(rows[2].querySelectorAll("td")[2].textContent).toBe("50");
    expect(within(rows[2]).getByTestId("flatten-order-refused").textContent).toContain("gate.broken_strategy_leg");
    expect(rows[2].className).toContain("refused");
    expect(within(rows[0]).queryByTestId("flatten-order-refused")).toBeNull();
    const warning = within(screen.getByTestId("flatten-warnings")).getByTestId("flatten-warning");
    expect(warning.getAttribute("data-severity")).toBe("critical");
    expect(warning.textContent).toContain("would refuse this order");
    expect(button("flatten-confirm").textContent).toBe("Send 24 orders");
  });

  it("says credit for a positive estimate, and notices dry-run, the emergency path and a closed market", async () => {
    const p = preview({ estimatedCash: "80.5", willSend: false, emergency: true, armedUntil: "2025-03-05T14:30:00Z" });
    await open(fakeBackend({ previewFlatten: async () => ok(p) }));
    expect(screen.getByTestId("flatten-cash").textContent).toBe("Estimated credit +80.50 (you receive)");
    expect(screen.getByTestId("flatten-dry-run").textContent).toBe("Dry-run: nothing will be sent.");
    expect(screen.getByTestId("flatten-emergency").textContent).toContain("Emergency path");
    expect(screen.getByTestId("flatten-armed").textContent).toContain("09:30 AM ET");
    expect(screen.queryByTestId("flatten-warnings")).toBeNull();
    expect(button("flatten-confirm").textContent).toBe("Confirm dry run");
    expect(button("flatten-confirm").className).not.toContain("danger");
  });

  it("an emergency preview that sends is a red button that names it", async () => {
    await open(fakeBackend({ previewFlatten: async () => ok(preview({ emergency: true })) }));
    expect(button("flatten-confirm").textContent).toBe("Send 1 emergency order");
    expect(button("flatten-confirm").className).toContain("danger");
  });

  it("cannot confirm while the preview loads; a refused preview shows its code and offers to preview again", async () => {
    let answer: (r: Result<FlattenPreviewView>) => void = () => {};
    const previewFlatten = vi
      .fn<(t: FlattenTarget) => Promise<Result<FlattenPreviewView>>>()
      .mockImplementationOnce(() => new Promise((r) => (answer = r)))
      .mockResolvedValueOnce(ok(preview()));
    await open(fakeBackend({ previewFlatten }));
    expect(button("flatten-confirm").disabled).toBe(true);
    await act(async () => answer(fail("unavailable", "venue.disconnected", "the venue is not connected")));
    expect(screen.getByTestId("flatten-error").textContent).toContain("unavailable · venue.disconnected");
    expect(button("flatten-confirm").textContent).toBe("Preview again");
    await act(async () => fireEvent.click(button("flatten-confirm")));
    expect(previewFlatten).toHaveBeenCalledTimes(2);
    expect(screen.queryByTestId("flatten-error")).toBeNull();
    expect(button("flatten-confirm").textContent).toBe("Send 1 order");
  });

  it("Cancel and Escape close without sending", async () => {
    const confirmFlatten = vi.fn(async () => ok(ticket()));
    const onClose = await open(fakeBackend({ previewFlatten: async () => ok(preview()), confirmFlatten }));
    fireEvent.click(document.querySelector(".modal-backdrop")!);
    expect(onClose).not.toHaveBeenCalled();
    fireEvent.click(button("flatten-cancel"));
    fireEvent.keyDown(document, { key: "Escape" });
    expect(onClose).toHaveBeenCalledTimes(2);
    expect(confirmFlatten).not.toHaveBeenCalled();
  });
});

describe("FlattenDialog confirm", () => {
  it("sends exactly the preview id, then shows progress in place", async () => {
    const confirmFlatten = vi.fn(async (_id: string) => ok(ticket({ id: "t-9" })));
    const flattenProgress = vi.fn(async (_t: string) => ok(progress({ ticket: "t-9" })));
    await open(fakeBackend({ previewFlatten: async () => ok(preview({ id: "9007199254740993" })), confirmFlatten, flattenProgress }));
    await act(async () => fireEvent.click(button("flatten-confirm")));
    expect(confirmFlatten).toHaveBeenCalledTimes(1);
    expect(confirmFlatten).toHaveBeenCalledWith("9007199254740993");
    expect(flattenProgress).toHaveBeenCalledWith("t-9");
    expect(screen.getByTestId("flatten-progress")).toBeTruthy();
    expect(screen.getByTestId("flatten-status").getAttribute("data-status")).toBe("working");
    expect(screen.queryByTestId("flatten-confirm")).toBeNull();
    expect(screen.queryByTestId("flatten-close")).toBeNull();
    expect(screen.getByTestId("flatten-dialog")).toBeTruthy();
  });

  it("a refused confirm shows message and reason inside the open dialog and offers a fresh preview", async () => {
    const previewFlatten = vi
      .fn<(t: FlattenTarget) => Promise<Result<FlattenPreviewView>>>()
      .mockResolvedValueOnce(ok(preview({ id: "101" })))
      .mockResolvedValueOnce(ok(preview({ id: "102", title: "Flatten SPY iron condor (fresh)" })));
    const confirmFlatten = vi
      .fn<(id: string) => Promise<Result<ReturnType<typeof ticket>>>>()
      .mockResolvedValueOnce(fail("invalid_input", "flatten.stale_preview", "The positions changed since the preview"))
      .mockResolvedValueOnce(ok(ticket({ previewId: "102" })));
    const onClose = await open(fakeBackend({ previewFlatten, confirmFlatten, flattenProgress: async () => ok(progress()) }));
    await act(async () => fireEvent.click(button("flatten-confirm")));
    const error = screen.getByTestId("flatten-error");
    expect(error.textContent).toContain("The positions changed since the preview");
    expect(error.textContent).toContain("invalid_input · flatten.stale_preview");
    expect(screen.getByTestId("flatten-dialog")).toBeTruthy();
    expect(onClose).not.toHaveBeenCalled();
    expect(screen.getByTestId("flatten-expired")).toBeTruthy();
    expect(button("flatten-confirm").textContent).toBe("Preview again");
    expect(button("flatten-confirm").className).not.toContain("danger");

    // "Preview again" fetches a fresh preview; it does not resend the refused id.
    await act(async () => fireEvent.click(button("flatten-confirm")));
    expect(previewFlatten).toHaveBeenCalledTimes(2);
    expect(confirmFlatten).toHaveBeenCalledTimes(1);
    expect(screen.getByTestId("flatten-title").textContent).toBe("Flatten SPY iron condor (fresh)");
    expect(screen.queryByTestId("flatten-error")).toBeNull();
    await act(async () => fireEvent.click(button("flatten-confirm")));
    expect(confirmFlatten).toHaveBeenLastCalledWith("102");
    expect(screen.getByTestId("flatten-progress")).toBeTruthy();
  });

  it("when the time to confirm runs out, the button becomes Preview again and fetches a fresh preview", async () => {
    vi.useFakeTimers();
    const previewFlatten = vi
      .fn<(t: FlattenTarget) => Promise<Result<FlattenPreviewView>>>()
      .mockResolvedValueOnce(ok(preview({ id: "201", expiresInSecs: 3 })))
      .mockResolvedValueOnce(ok(preview({ id: "202", expiresInSecs: 30 })));
    const confirmFlatten = vi.fn(async (_id: string) => ok(ticket()));
    await open(fakeBackend({ previewFlatten, confirmFlatten }));
    expect(screen.getByTestId("flatten-expiry").textContent).toContain("3 s");
    await act(async () => {
      await vi.advanceTimersByTimeAsync(1500);
    });
    expect(screen.getByTestId("flatten-expiry").textContent).toContain("2 s");
    expect(button("flatten-confirm").textContent).toBe("Send 1 order");
    await act(async () => {
      await vi.advanceTimersByTimeAsync(1600);
    });
    expect(button("flatten-confirm").textContent).toBe("Preview again");
    expect(screen.getByTestId("flatten-expired").textContent).toContain("expired");
    expect(screen.queryByTestId("flatten-expiry")).toBeNull();
    await act(async () => fireEvent.click(button("flatten-confirm")));
    expect(confirmFlatten).not.toHaveBeenCalled();
    expect(previewFlatten).toHaveBeenCalledTimes(2);
    expect(button("flatten-confirm").textContent).toBe("Send 1 order");
    await act(async () => fireEvent.click(button("flatten-confirm")));
    expect(confirmFlatten).toHaveBeenCalledWith("202");
  });

  it("polls the progress every 500 ms until finished, then offers Close", async () => {
    vi.useFakeTimers();
    const answers: FlattenProgressView[] = [
      progress({ status: "working", orders: [orderProgress({ state: "sent" }), orderProgress({ label: "SPY 600 C", state: "waiting" })], sent: 1 }),
      progress({ status: "working", orders: [orderProgress({ state: "filled", filled: 1 }), orderProgress({ label: "SPY 600 C", state: "sent" })], sent: 2, filled: 1 }),
      progress({
        status: "done",
        finished: true,
        orders: [orderProgress({ state: "filled", filled: 1 }), orderProgress({ label: "SPY 600 C", state: "filled", filled: 1 })],
        sent: 2,
        filled: 2,
      }),
    ];
    let i = 0;
    const flattenProgress = vi.fn(async (_t: string) => ok(answers[Math.min(i++, answers.length - 1)]));
    const onClose = await open(
      fakeBackend({ previewFlatten: async () => ok(preview()), confirmFlatten: async () => ok(ticket({ id: "t-3" })), flattenProgress }),
    );
    await act(async () => fireEvent.click(button("flatten-confirm")));
    expect(flattenProgress).toHaveBeenCalledTimes(1);
    const states = () => screen.getAllByTestId("flatten-progress-order").map((r) => r.getAttribute("data-state"));
    expect(states()).toEqual(["sent", "waiting"]);
    expect(screen.getByTestId("flatten-counts").textContent).toBe("1 sent · 0 filled · 0 failed");
    expect(screen.getByTestId("flatten-hide")).toBeTruthy();

    await act(async () => {
      await vi.advanceTimersByTimeAsync(500);
    });
    expect(flattenProgress).toHaveBeenCalledTimes(2);
    expect(states()).toEqual(["filled", "sent"]);
    expect(screen.getAllByTestId("flatten-progress-order")[0].textContent).toContain("1/1");

    await act(async () => {
      await vi.advanceTimersByTimeAsync(500);
    });
    expect(flattenProgress).toHaveBeenCalledTimes(3);
    expect(screen.getByTestId("flatten-status").getAttribute("data-status")).toBe("done");
    expect(screen.getByTestId("flatten-status").textContent).toContain("every order filled");
    expect(screen.getByTestId("flatten-counts").textContent).toBe("2 sent · 2 filled · 0 failed");

    await act(async () => {
      await vi.advanceTimersByTimeAsync(3000);
    });
    expect(flattenProgress).toHaveBeenCalledTimes(3);
    expect(flattenProgress.mock.calls.every(([t]) => t === "t-3")).toBe(true);
    expect(screen.queryByTestId("flatten-hide")).toBeNull();
    fireEvent.click(screen.getByTestId("flatten-close"));
    expect(onClose).toHaveBeenCalledTimes(1);
  });

  it("keeps polling through a failed progress read and shows why a person is needed", async () => {
    vi.useFakeTimers();
    const flattenProgress = vi
      .fn<(t: string) => Promise<Result<FlattenProgressView>>>()
      .mockResolvedValueOnce(fail("unavailable", "venue.disconnected", "connection lost"))
      .mockResolvedValueOnce(
        ok(progress({ status: "needs_manual", finished: true, detail: "SPY 600 C rejected: close it at the broker", failed: 1, orders: [orderProgress({ state: "failed", reason: "rejected" })] })),
      );
    await open(fakeBackend({ previewFlatten: async () => ok(preview()), confirmFlatten: async () => ok(ticket()), flattenProgress }));
    await act(async () => fireEvent.click(button("flatten-confirm")));
    expect(screen.getByTestId("flatten-progress-error").textContent).toContain("unavailable · venue.disconnected");
    await act(async () => {
      await vi.advanceTimersByTimeAsync(500);
    });
    expect(screen.queryByTestId("flatten-progress-error")).toBeNull();
    expect(screen.getByTestId("flatten-status").textContent).toContain("close it at the broker");
    expect(screen.getByTestId("flatten-progress-order").textContent).toContain("rejected");
    expect(screen.getByTestId("flatten-close")).toBeTruthy();
  });
});

describe("FlattenDialog targets", () => {
  it("previews flatten all of an account and the forced-unwind switch with the asked state", async () => {
    const previewFlatten = vi.fn(async (_t: FlattenTarget) => ok(preview()));
    const previewForcedUnwind = vi.fn(async (_a: string, _on: boolean) => ok(preview({ title: "Forced unwind of DU1: on" })));
    const backend = fakeBackend({ previewFlatten, previewForcedUnwind });
    const { unmount } = render(<FlattenDialog backend={backend} request={{ kind: "account", account: "DU1" }} onClose={() => {}} />);
    await act(async () => {});
    expect(previewFlatten).toHaveBeenCalledWith({ kind: "account", account: "DU1" });
    unmount();
    render(<FlattenDialog backend={backend} request={{ kind: "forcedUnwind", account: "DU1", on: true }} onClose={() => {}} />);
    await act(async () => {});
    expect(previewForcedUnwind).toHaveBeenCalledWith("DU1", true);
    expect(button("flatten-confirm").textContent).toBe("Turn forced unwind on");
  });
});
