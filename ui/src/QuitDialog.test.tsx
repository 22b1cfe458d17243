import { act, fireEvent, render, screen, within } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import type { Result } from "./backend";
import { QuitDialog, quitImpact } from "./QuitDialog";
import { fail, fakeBackend, guardView, ok } from "./testing/fakeBackend";

const guarded = guardView({
  protections: [
    { name: "stop-loss SPY condor", atBroker: false },
    { name: "max loss per day", atBroker: false },
    { name: "backstop stop SPY 590 P", atBroker: true },
  ],
  emergencyCloses: [
    {
      strategy: "SPY strangle",
      account: "DU1",
      phase: "armed",
      releaseAt: "2025-03-05T14:30:00Z",
      releasesInSecs: 3 * 3600 + 5 * 60,
      orders: [],
      how: "market orders 2 min after the open",
    },
    { strategy: "SPY spread", account: "DU1", phase: "completed", releaseAt: "2025-03-04T14:30:00Z", releasesInSecs: null, orders: [], how: "" },
  ],
});

const items = (testId: string) => within(screen.getByTestId(testId)).getAllByRole("listitem").map((li) => li.textContent);

describe("quitImpact", () => {
  it("splits local rules (and armed emergency closes) from backstop orders at the broker", () => {
    expect(quitImpact(guarded)).toEqual({
      local: ["stop-loss SPY condor", "max loss per day", "Emergency close of SPY strangle (DU1), armed to go out at the open in 3 h 5 min"],
      broker: ["backstop stop SPY 590 P"],
    });
  });
});

describe("QuitDialog", () => {
  it("lists what stops and what remains, and quits only on confirm", async () => {
    const quitApp = vi.fn(async () => ok(null));
    const onClose = vi.fn();
    render(<QuitDialog backend={fakeBackend({ guardStatus: async () => ok(guarded), quitApp })} onClose={onClose} />);
    await act(async () => {});
    expect(screen.getByRole("dialog", { name: "Quit Tradeguard?" })).toBe(screen.getByTestId("quit-dialog"));
    expect(items("quit-local-list")).toEqual([
      "stop-loss SPY condor",
      "max loss per day",
      "Emergency close of SPY strangle (DU1), armed to go out at the open in 3 h 5 min",
    ]);
    expect(items("quit-broker-list")).toEqual(["backstop stop SPY 590 P"]);
    expect(document.activeElement).toBe(screen.getByTestId("quit-cancel"));
    expect(quitApp).not.toHaveBeenCalled();
    await act(async () => fireEvent.click(screen.getByTestId("quit-confirm")));
    expect(quitApp).toHaveBeenCalledTimes(1);
    expect(onClose).toHaveBeenCalledTimes(1);
  });

  it("cancel and Escape close without quitting", async () => {
    const quitApp = vi.fn(async () => ok(null));
    const onClose = vi.fn();
    render(<QuitDialog backend={fakeBackend({ guardStatus: async () => ok(guarded), quitApp })} onClose={onClose} />);
    await act(async () => {});
    fireEvent.click(screen.getByTestId("quit-cancel"));
    fireEvent.keyDown(document, { key: "Escape" });
    expect(onClose).toHaveBeenCalledTimes(2);
    expect(quitApp).not.toHaveBeenCalled();
  });

  it("warns when nothing rests at the broker", async () => {
    const v = guardView({ protections: [{ name: "stop-loss SPY condor", atBroker: false }] });
    render(<QuitDialog backend={fakeBackend({ guardStatus: async () => ok(v) })} onClose={() => {}} />);
    await act(async () => {});
    expect(items("quit-local-list")).toEqual(["stop-loss SPY condor"]);
    expect(screen.queryByTestId("quit-broker-list")).toBeNull();
    expect(screen.getByTestId("quit-no-broker").textContent).toContain("unprotected");
  });

  it("cannot confirm before it knows what stops; an unreadable guard is said, and quitting stays possible", async () => {
    let answer: (r: Result<never>) => void = () => {};
    const quitApp = vi.fn(async () => ok(null));
    render(<QuitDialog backend={fakeBackend({ guardStatus: () => new Promise((r) => (answer = r)), quitApp })} onClose={() => {}} />);
    expect((screen.getByTestId("quit-confirm") as HTMLButtonElement).disabled).toBe(true);
    await act(async () => answer(fail<never>("unavailable", "venue.connecting", "the venue is not connected")));
    expect(screen.getByTestId("quit-guard-error").textContent).toContain("unavailable · venue.connecting");
    expect((screen.getByTestId("quit-confirm") as HTMLButtonElement).disabled).toBe(false);
    await act(async () => fireEvent.click(screen.getByTestId("quit-confirm")));
    expect(quitApp).toHaveBeenCalledTimes(1);
  });

  it("shows a refused quit inside the dialog with its code", async () => {
    const onClose = vi.fn();
    const quitApp = async () => fail<null>("internal", "ui.invoke", "Backend unreachable: IPC closed");
    render(<QuitDialog backend={fakeBackend({ guardStatus: async () => ok(guarded), quitApp })} onClose={onClose} />);
    await act(async () => {});
    await act(async () => fireEvent.click(screen.getByTestId("quit-confirm")));
    expect(screen.getByTestId("quit-dialog-error").textContent).toContain("internal · ui.invoke");
    expect(onClose).not.toHaveBeenCalled();
  });
});
