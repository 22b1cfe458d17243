import { act, fireEvent, render, screen } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import type { Backend } from "./backend";
import type { GuardView } from "./bindings";
import { GuardPanel, taskHealth, useGuardView } from "./Guard";
import { fail, fakeBackend, ok } from "./testing/fakeBackend";

const view = (over: Partial<GuardView> = {}): GuardView => ({
  rulesPath: "/home/t/.local/share/dev.tradeguard.desktop/risk.toml",
  dryRun: true,
  sentInDryRun: ["emergency closes of strategies an assignment broke", "a forced unwind you switch on"],
  rules: 12,
  rulesEvaluated: 1200,
  decisionsFired: 2,
  dryRunDecisions: 2,
  lastReconciliation: "2025-03-04T15:00:12Z",
  lastReconciliationRepairs: 0,
  needsManualAction: 0,
  forcedUnwind: [],
  tradingState: "active",
  tradingWhy: "",
  tasks: [
    { name: "enforcer", running: true, sinceLastSecs: 0.3, lateAfterSecs: 3.5, restarts: 0, lastFailure: null },
    { name: "reconciler", running: true, sinceLastSecs: 1.2, lateAfterSecs: 20, restarts: 1, lastFailure: "panicked" },
    { name: "status", running: true, sinceLastSecs: 41, lateAfterSecs: 182, restarts: 0, lastFailure: null },
    { name: "alerts", running: true, sinceLastSecs: 300, lateAfterSecs: null, restarts: 0, lastFailure: null },
  ],
  protections: [{ name: "stop-loss SPY condor", atBroker: false }],
  emergencyCloses: [],
  ...over,
});


describe("taskHealth", () => {
  it("is late past the task's own limit, never for activity-driven tasks, and down when not running", () => {
    const t = (sinceLastSecs: number | null, lateAfterSecs: number | null, running = true) => ({
      name: "e",
      running,
      sinceLastSecs,
      lateAfterSecs,
      restarts: 0,
      lastFailure: null,
    });
    expect(taskHealth(t(0.3, 3.5))).toBe("ok");
    expect(taskHealth(t(9, 3.5))).toBe("late");
    expect(taskHealth(t(41, 182))).toBe("ok");
    expect(taskHealth(t(null, 3.5))).toBe("late");
    expect(taskHealth(t(300, null))).toBe("ok");
    expect(taskHealth(t(0.1, 3.5, false))).toBe("down");
  });
});

describe("GuardPanel", () => {
  it("shows the rules file, dry-run, heartbeats, restarts and where protections live", async () => {
    render(<GuardPanel view={view()} error={null} />);
    expect(screen.getByTestId("rules-path").textContent).toContain("risk.toml");
    expect(screen.getByTestId("dry-run")).toBeTruthy();
    expect(screen.getByTestId("guard-health").textContent).toBe("enforcing");
    expect(screen.getByTestId("tasks").textContent).toContain("enforcer 0.3 s ago");
    expect(screen.getByTestId("tasks").textContent).toContain("restarted 1×");
    expect(screen.getByText(/local \(only while the app runs\)/)).toBeTruthy();
  });

  it("in dry-run says exactly what still sends orders, and nothing of it when live", () => {
    const { unmount } = render(<GuardPanel view={view()} error={null} />);
    expect(screen.getByTestId("sent-in-dry-run").textContent).toBe(
      "emergency closes of strategies an assignment broke · a forced unwind you switch on",
    );
    unmount();
    render(<GuardPanel view={view({ dryRun: false })} error={null} />);
    expect(screen.queryByTestId("sent-in-dry-run")).toBeNull();
  });

  it("shows a lock on opening orders with why, and unlocks only after the trader confirms", async () => {
    const locked = view({
      tradingState: "reducing",
      tradingWhy: "mll: trailing maximum loss: balance 47100.00 at or below the floor 48000.00 (123)",
    });
    const unlockTrading = vi.fn(async () => ok(view()));
    render(<GuardPanel view={locked} error={null} backend={fakeBackend({ unlockTrading })} />);
    const row = screen.getByTestId("trading-state");
    expect(row.textContent).toContain("opening orders locked");
    expect(row.textContent).toContain("mll: trailing maximum loss");
    fireEvent.click(screen.getByTestId("unlock-trading"));
    expect(unlockTrading).not.toHaveBeenCalled();
    expect(screen.getByTestId("unlock-dialog").textContent).toContain("at or below the floor 48000.00");
    await act(async () => {
      fireEvent.click(screen.getByTestId("unlock-confirm"));
    });
    expect(unlockTrading).toHaveBeenCalledTimes(1);
    expect(screen.queryByTestId("unlock-dialog")).toBeNull();
  });

  it("shows no unlock while trading is active", () => {
    render(<GuardPanel view={view()} error={null} backend={fakeBackend()} />);
    expect(screen.getByTestId("trading-state").textContent).toBe("active");
    expect(screen.queryByTestId("unlock-trading")).toBeNull();
  });

  it("names the tasks that stopped checking", async () => {
    const v = view({
      dryRun: false,
      tasks: [{ name: "enforcer", running: true, sinceLastSecs: 12, lateAfterSecs: 3.5, restarts: 0, lastFailure: null }],
    });
    render(<GuardPanel view={v} error={null} />);
    expect(screen.getByTestId("guard-health").textContent).toBe("enforcer not checking");
    expect(screen.queryByTestId("dry-run")).toBeNull();
  });
});

function Polled({ backend }: { backend: Backend }) {
  const g = useGuardView(backend, 1000);
  return <GuardPanel view={g.view} error={g.error} />;
}

describe("useGuardView", () => {
  it("polls, shows a refusal with its code until the guard answers, and stops polling on unmount", async () => {
    vi.useFakeTimers();
    try {
      const answers = [fail<GuardView>("unavailable", "venue.connecting", "starting"), ok(view())];
      const guardStatus = vi.fn(async () => answers[Math.min(guardStatus.mock.calls.length - 1, 1)]);
      const { unmount } = render(<Polled backend={fakeBackend({ guardStatus })} />);
      await act(async () => {});
      expect(screen.getByTestId("guard-error").textContent).toContain("venue.connecting");
      await act(async () => vi.advanceTimersByTime(1000));
      expect(screen.getByTestId("guard-health").textContent).toBe("enforcing");
      unmount();
      const calls = guardStatus.mock.calls.length;
      await act(async () => vi.advanceTimersByTime(5000));
      expect(guardStatus.mock.calls.length).toBe(calls);
    } finally {
      vi.useRealTimers();
    }
  });
});
