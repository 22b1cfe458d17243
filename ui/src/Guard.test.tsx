import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { Backend } from "./backend";
import type { GuardView } from "./bindings";
import { GuardPanel, taskHealth } from "./Guard";

const view = (over: Partial<GuardView> = {}): GuardView => ({
  rulesPath: "/home/t/.local/share/dev.tradeguard.desktop/risk.toml",
  dryRun: true,
  rules: 12,
  rulesEvaluated: 1200,
  decisionsFired: 2,
  dryRunDecisions: 2,
  lastReconciliation: "2025-03-04T15:00:12Z",
  lastReconciliationRepairs: 0,
  needsManualAction: 0,
  forcedUnwind: [],
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

const backendWith = (v: GuardView) => ({ guardStatus: async () => ({ status: "ok", data: v }) }) as unknown as Backend;

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
    render(<GuardPanel backend={backendWith(view())} pollMs={60000} />);
    expect((await screen.findByTestId("rules-path")).textContent).toContain("risk.toml");
    expect(screen.getByTestId("dry-run")).toBeTruthy();
    expect(screen.getByTestId("guard-health").textContent).toBe("enforcing");
    expect(screen.getByTestId("tasks").textContent).toContain("enforcer 0.3 s ago");
    expect(screen.getByTestId("tasks").textContent).toContain("restarted 1×");
    expect(screen.getByText(/local \(only while the app runs\)/)).toBeTruthy();
  });

  it("names the tasks that stopped checking", async () => {
    const v = view({
      dryRun: false,
      tasks: [{ name: "enforcer", running: true, sinceLastSecs: 12, lateAfterSecs: 3.5, restarts: 0, lastFailure: null }],
    });
    render(<GuardPanel backend={backendWith(v)} pollMs={60000} />);
    expect((await screen.findByTestId("guard-health")).textContent).toBe("enforcer not checking");
    expect(screen.queryByTestId("dry-run")).toBeNull();
  });
});
