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
    { name: "enforcer", running: true, sinceLastSecs: 0.3, restarts: 0, lastFailure: null },
    { name: "reconciler", running: true, sinceLastSecs: 1.2, restarts: 1, lastFailure: "panicked" },
  ],
  protections: [{ name: "stop-loss SPY condor", atBroker: false }],
  ...over,
});

const backendWith = (v: GuardView) => ({ guardStatus: async () => ({ status: "ok", data: v }) }) as unknown as Backend;

describe("taskHealth", () => {
  it("is late past the limit and down when not running", () => {
    expect(taskHealth({ name: "e", running: true, sinceLastSecs: 0.3, restarts: 0, lastFailure: null })).toBe("ok");
    expect(taskHealth({ name: "e", running: true, sinceLastSecs: 9, restarts: 0, lastFailure: null })).toBe("late");
    expect(taskHealth({ name: "e", running: true, sinceLastSecs: null, restarts: 0, lastFailure: null })).toBe("late");
    expect(taskHealth({ name: "e", running: false, sinceLastSecs: 0.1, restarts: 3, lastFailure: "x" })).toBe("down");
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
      tasks: [{ name: "enforcer", running: true, sinceLastSecs: 12, restarts: 0, lastFailure: null }],
    });
    render(<GuardPanel backend={backendWith(v)} pollMs={60000} />);
    expect((await screen.findByTestId("guard-health")).textContent).toBe("enforcer not checking");
    expect(screen.queryByTestId("dry-run")).toBeNull();
  });
});
