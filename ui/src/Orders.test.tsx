import { act, fireEvent, render, screen, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Result } from "./backend";
import type { Blotter, BlotterExecution, BlotterGroup, BlotterLeg, BlotterStop } from "./bindings";
import { formatAuditTime } from "./AuditScreen";
import { BLOTTER_POLL_MS, OrdersScreen, stateTone } from "./Orders";
import { fail, fakeBackend, ipcError, ok } from "./testing/fakeBackend";

const blotterLeg = (over: Partial<BlotterLeg> = {}): BlotterLeg => ({
  label: "SPY 21MAR25 550 P",
  side: "buy",
  qty: 2,
  filled: 0,
  state: "sent",
  orderId: "1001",
  rollback: false,
  order: "LMT 1.25",
  reason: null,
  ...over,
});

const group = (over: Partial<BlotterGroup> = {}): BlotterGroup => ({
  id: "g1",
  purpose: "close",
  account: "DU1",
  strategyId: null,
  phase: "completed",
  live: false,
  created: "2025-03-04T15:00:07Z",
  updated: "2025-03-04T15:00:09Z",
  reason: null,
  legs: [blotterLeg({ state: "filled", filled: 2 })],
  ...over,
});

const stop = (over: Partial<BlotterStop> = {}): BlotterStop => ({
  id: "s1",
  account: "DU1",
  label: "SPY 21MAR25 550 P",
  side: "buy",
  qty: 1,
  stop: "2.50",
  limit: "2.75",
  state: "working",
  filled: 0,
  ...over,
});

const execution = (over: Partial<BlotterExecution> = {}): BlotterExecution => ({
  execId: "e1",
  time: "2025-03-04T15:00:08Z",
  account: "DU1",
  instrument: "SPY 21MAR25 550 P",
  side: "BOT",
  qty: 2,
  price: "1.25",
  commission: "1.30",
  orderId: "1001",
  ...over,
});

const blotter = (over: Partial<Blotter> = {}): Blotter => ({ groups: [], stops: [], executions: [], executionsError: null, ...over });

const flush = () => act(async () => {});
const tick = (ms = BLOTTER_POLL_MS) =>
  act(async () => {
    await vi.advanceTimersByTimeAsync(ms);
  });

/** The order groups as the trader reads them: purpose cell text, top to bottom. */
const groupPurposes = () => screen.getAllByTestId("group").map((r) => r.querySelectorAll("td")[1].textContent);

describe("stateTone", () => {
  it("colours filled green, rejected red, working blue and the rest grey", () => {
    expect(stateTone("filled")).toBe("done");
    expect(stateTone("rejected")).toBe("failed");
    expect(stateTone("sent")).toBe("working");
    expect(stateTone("partially filled")).toBe("working");
    expect(stateTone("cancelled")).toBe("over");
    expect(stateTone("timed out")).toBe("over");
  });
});

describe("OrdersScreen", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("says what an empty blotter means", async () => {
    render(<OrdersScreen backend={fakeBackend()} />);
    await flush();
    expect(screen.getByTestId("groups-empty").textContent).toContain("No orders this session");
    expect(screen.getByTestId("stops-empty").textContent).toContain("No managed stops");
    expect(screen.getByTestId("executions-empty").textContent).toBe("No executions today.");
    expect(screen.queryByTestId("filter-working")).toBeNull();
  });

  it("lists live groups first, marked working, with account, phase, local created time and reason", async () => {
    const settled = group({ id: "g1", purpose: "close", reason: "max loss hit" });
    const working = group({ id: "g2", purpose: "flatten", live: true, phase: "legging (tier 2/3)", created: "2025-03-04T15:01:00Z" });
    render(<OrdersScreen backend={fakeBackend({ blotter: async () => ok(blotter({ groups: [settled, working] })) })} />);
    await flush();
    const rows = screen.getAllByTestId("group");
    expect(rows.map((r) => r.getAttribute("data-group"))).toEqual(["g2", "g1"]);
    expect(rows[0].className).toContain("live");
    expect(within(rows[0]).getByTestId("group-working").textContent).toBe("working");
    expect(within(rows[0]).getByTestId("group-phase").textContent).toBe("legging (tier 2/3)");
    expect(rows[0].textContent).toContain(formatAuditTime("2025-03-04T15:01:00Z"));
    expect(rows[1].className).not.toContain("live");
    expect(within(rows[1]).queryByTestId("group-working")).toBeNull();
    expect(rows[1].textContent).toContain("max loss hit");
    expect(rows[1].textContent).toContain("DU1");
    expect(screen.getByTestId("groups-count").textContent).toBe("2 this session · 1 working");
  });

  it("expands a group to its legs: fills, states, order ids, rollback legs and reasons", async () => {
    const legs = [
      blotterLeg({ label: "SPY 550 P", side: "buy", qty: 3, filled: 1, state: "partially filled", orderId: "11" }),
      blotterLeg({ label: "SPY 540 P", side: "sell", qty: 3, filled: 3, state: "filled", orderId: "12" }),
      blotterLeg({ label: "SPY 600 C", side: "buy", qty: 1, filled: 0, state: "rejected", orderId: "13", reason: "margin" }),
      blotterLeg({ label: "SPY 540 P", side: "buy", qty: 3, filled: 0, state: "cancelled", orderId: null, rollback: true }),
    ];
    const g = group({ id: "g9", purpose: "open", live: true, phase: "rolling back", legs });
    render(<OrdersScreen backend={fakeBackend({ blotter: async () => ok(blotter({ groups: [g] })) })} />);
    await flush();
    expect(screen.getByTestId("group-legs").textContent).toBe("1/4");
    expect(screen.queryByTestId("legs")).toBeNull();

    fireEvent.click(screen.getByTestId("group-toggle"));
    expect(screen.getByTestId("group-toggle").getAttribute("aria-expanded")).toBe("true");
    const rows = screen.getAllByTestId("leg");
    expect(rows).toHaveLength(4);

    // Partial fill: 1/3, a third of the bar, in the partial colour.
    const partial = within(rows[0]).getByTestId("leg-fill");
    expect(partial.textContent).toBe("1/3");
    expect(partial.className).toContain("partial");
    expect(within(partial).getByRole("img").getAttribute("aria-label")).toBe("1 of 3 filled");
    expect((partial.querySelector(".fill-done") as HTMLElement).style.width).toBe("33%");
    expect(within(rows[0]).getByTestId("leg-state").className).toContain("working");
    expect(rows[0].textContent).toContain("BUY");

    expect(within(rows[1]).getByTestId("leg-fill").className).toContain("full");
    expect(within(rows[1]).getByTestId("leg-state").className).toContain("done");
    expect(rows[1].textContent).toContain("SELL");
    expect(rows[1].textContent).toContain("12");

    expect(within(rows[2]).getByTestId("leg-state").className).toContain("failed");
    expect(rows[2].textContent).toContain("margin");

    expect(within(rows[3]).getByTestId("leg-rollback").textContent).toBe("rollback");
    expect(within(rows[3]).getByTestId("leg-state").className).toContain("over");
    expect(rows[3].textContent).toContain("not sent");
    expect(within(rows[0]).queryByTestId("leg-rollback")).toBeNull();

    fireEvent.click(screen.getByTestId("group-toggle"));
    expect(screen.queryByTestId("legs")).toBeNull();
  });

  it("filters to working groups and by purpose", async () => {
    const groups = [
      group({ id: "a", purpose: "close" }),
      group({ id: "b", purpose: "stop loss", live: true }),
      group({ id: "c", purpose: "close", live: true }),
    ];
    render(<OrdersScreen backend={fakeBackend({ blotter: async () => ok(blotter({ groups })) })} />);
    await flush();
    expect(groupPurposes()).toHaveLength(3);
    const options = [...(screen.getByTestId("filter-purpose") as HTMLSelectElement).options].map((o) => o.textContent);
    expect(options).toEqual(["All purposes", "close", "stop loss"]);

    fireEvent.change(screen.getByTestId("filter-purpose"), { target: { value: "close" } });
    expect(screen.getAllByTestId("group").map((r) => r.getAttribute("data-group"))).toEqual(["c", "a"]);

    fireEvent.click(screen.getByTestId("filter-working"));
    expect(screen.getAllByTestId("group").map((r) => r.getAttribute("data-group"))).toEqual(["c"]);

    fireEvent.change(screen.getByTestId("filter-purpose"), { target: { value: "" } });
    expect(screen.getAllByTestId("group").map((r) => r.getAttribute("data-group"))).toEqual(["b", "c"]);
  });

  it("says when nothing matches the filters", async () => {
    render(<OrdersScreen backend={fakeBackend({ blotter: async () => ok(blotter({ groups: [group()] })) })} />);
    await flush();
    fireEvent.click(screen.getByTestId("filter-working"));
    expect(screen.queryByTestId("groups")).toBeNull();
    expect(screen.getByTestId("groups-none-match").textContent).toContain("nothing is working now");
  });

  it("shows managed stops and executions", async () => {
    const data = blotter({
      stops: [stop(), stop({ id: "s2", label: "QQQ 400 C", side: "sell", state: "done", filled: 1 })],
      executions: [execution(), execution({ execId: "e2", side: "SLD", price: "0.85", orderId: null })],
    });
    render(<OrdersScreen backend={fakeBackend({ blotter: async () => ok(data) })} />);
    await flush();
    const stops = screen.getAllByTestId("stop");
    expect(stops).toHaveLength(2);
    expect(stops[0].textContent).toContain("2.50");
    expect(stops[0].textContent).toContain("2.75");
    expect(within(stops[0]).getByTestId("stop-state").className).toContain("working");
    expect(within(stops[1]).getByTestId("stop-state").className).toContain("done");
    expect(stops[1].textContent).toContain("QQQ 400 C");

    const execs = screen.getAllByTestId("execution");
    expect(execs).toHaveLength(2);
    const cells = [...execs[0].querySelectorAll("td")].map((c) => c.textContent);
    expect(cells).toEqual([formatAuditTime("2025-03-04T15:00:08Z"), "SPY 21MAR25 550 P", "BOT", "2", "1.25", "1.30", "1001"]);
    expect(execs[1].querySelector(".side")?.className).toContain("sell");
    expect(screen.queryByTestId("executions-error")).toBeNull();
  });

  it("shows why executions are missing while the groups still show", async () => {
    const data = blotter({ groups: [group()], executionsError: ipcError("storage", "store.read", "database is locked") });
    render(<OrdersScreen backend={fakeBackend({ blotter: async () => ok(data) })} />);
    await flush();
    expect(screen.getByTestId("executions-error").textContent).toContain("database is locked");
    expect(screen.getByTestId("executions-error").textContent).toContain("storage · store.read");
    expect(screen.queryByTestId("executions-empty")).toBeNull();
    expect(screen.getAllByTestId("group")).toHaveLength(1);
  });

  it("polls every second, never with two requests in flight, and stops when it leaves", async () => {
    const answers: ((r: Result<Blotter>) => void)[] = [];
    const call = vi.fn(() => new Promise<Result<Blotter>>((r) => answers.push(r)));
    const { unmount } = render(<OrdersScreen backend={fakeBackend({ blotter: call })} />);
    await flush();
    expect(call).toHaveBeenCalledTimes(1);
    // A slow answer: no second request however long it takes.
    await tick(5 * BLOTTER_POLL_MS);
    expect(call).toHaveBeenCalledTimes(1);
    await act(async () => answers[0](ok(blotter({ groups: [group({ purpose: "hedge" })] }))));
    expect(groupPurposes()).toEqual(["hedge"]);
    await tick(BLOTTER_POLL_MS - 1);
    expect(call).toHaveBeenCalledTimes(1);
    await tick(1);
    expect(call).toHaveBeenCalledTimes(2);
    await act(async () => answers[1](ok(blotter({ groups: [group({ purpose: "emergency", live: true })] }))));
    expect(groupPurposes()).toEqual(["emergency working"]);

    unmount();
    await tick(10 * BLOTTER_POLL_MS);
    expect(call).toHaveBeenCalledTimes(2);
  });

  it("keeps the last good blotter when a refresh fails, shows the error with its code, and recovers", async () => {
    const call = vi
      .fn()
      .mockResolvedValueOnce(ok(blotter({ groups: [group({ purpose: "flatten" })] })))
      .mockResolvedValueOnce(fail<Blotter>("unavailable", "venue.disconnected", "the venue connection is down"))
      .mockResolvedValue(ok(blotter({ groups: [group({ purpose: "close" })] })));
    render(<OrdersScreen backend={fakeBackend({ blotter: call })} />);
    await flush();
    expect(screen.queryByTestId("orders-error")).toBeNull();
    expect(screen.getByTestId("orders-as-of")).toBeTruthy();

    await tick();
    const error = screen.getByTestId("orders-error");
    expect(error.textContent).toContain("the venue connection is down");
    expect(error.textContent).toContain("unavailable · venue.disconnected");
    expect(screen.getByTestId("orders-stale").textContent).toContain("showing the blotter as of");
    expect(groupPurposes()).toEqual(["flatten"]);

    await tick();
    expect(screen.queryByTestId("orders-error")).toBeNull();
    expect(screen.queryByTestId("orders-stale")).toBeNull();
    expect(groupPurposes()).toEqual(["close"]);
  });

  it("shows a first failure with nothing stale to show, and keeps trying", async () => {
    const call = vi
      .fn()
      .mockResolvedValueOnce(fail<Blotter>("internal", "ui.invoke", "Backend unreachable"))
      .mockResolvedValue(ok(blotter()));
    render(<OrdersScreen backend={fakeBackend({ blotter: call })} />);
    await flush();
    expect(screen.getByTestId("orders-error").textContent).toContain("internal · ui.invoke");
    expect(screen.queryByTestId("orders-stale")).toBeNull();
    await tick();
    expect(screen.getByTestId("groups-empty")).toBeTruthy();
  });
});
