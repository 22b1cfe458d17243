import { act, fireEvent, render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { AlertsPanel, CriticalBanner, sortAlerts, useAlerts } from "./Alerts";
import type { Backend } from "./backend";
import type { AlertView } from "./bindings";

const alert = (over: Partial<AlertView>): AlertView => ({
  id: 1,
  severity: "warning",
  code: "rule.fired",
  message: "max contracts exceeded",
  account: "DU1",
  createdAt: "2025-03-04T15:00:00Z",
  acknowledgedAt: null,
  ...over,
});

const assignment = alert({
  id: 7,
  severity: "critical",
  code: "assignment.detected",
  message: "ASSIGNMENT: SPY 590 P ×1 assigned — emergency close sent",
});

describe("sortAlerts", () => {
  it("puts assignment alerts first, then severity, then newest", () => {
    const list = [
      alert({ id: 1, severity: "info", createdAt: "2025-03-04T15:05:00Z" }),
      alert({ id: 2, severity: "critical", code: "guard.restarted", createdAt: "2025-03-04T15:01:00Z" }),
      { ...assignment, createdAt: "2025-03-04T14:00:00Z" },
      alert({ id: 3, severity: "critical", code: "close.failed", createdAt: "2025-03-04T15:02:00Z" }),
    ];
    expect(sortAlerts(list).map((a) => a.id)).toEqual([7, 3, 2, 1]);
  });
});

describe("CriticalBanner", () => {
  it("shows unacknowledged critical alerts and acknowledges on click", () => {
    const acked: number[] = [];
    render(
      <CriticalBanner
        alerts={[assignment, alert({ id: 2 }), alert({ id: 3, severity: "critical", acknowledgedAt: "2025-03-04T16:00:00Z" })]}
        error={null}
        onAcknowledge={(id) => acked.push(id)}
      />,
    );
    const rows = screen.getAllByTestId("critical-alert");
    expect(rows).toHaveLength(1);
    expect(within(rows[0]).getByText("ASSIGNMENT")).toBeTruthy();
    fireEvent.click(screen.getByTestId("ack-7"));
    expect(acked).toEqual([7]);
  });

  it("renders nothing when every critical alert is acknowledged", () => {
    render(<CriticalBanner alerts={[alert({ id: 2 })]} error={null} onAcknowledge={() => {}} />);
    expect(screen.queryByTestId("critical-banner")).toBeNull();
  });
});

describe("AlertsPanel", () => {
  it("filters by severity and acknowledgement", () => {
    render(<AlertsPanel alerts={[assignment, alert({ id: 2 }), alert({ id: 3, severity: "info", acknowledgedAt: "x" })]} />);
    expect(screen.getAllByTestId("alert-item")).toHaveLength(3);
    fireEvent.change(screen.getByTestId("alert-filter"), { target: { value: "critical" } });
    expect(screen.getAllByTestId("alert-item")).toHaveLength(1);
    fireEvent.change(screen.getByTestId("alert-filter"), { target: { value: "unacknowledged" } });
    expect(screen.getAllByTestId("alert-item")).toHaveLength(2);
  });
});

function Harness({ backend }: { backend: Backend }) {
  const a = useAlerts(backend);
  return <CriticalBanner alerts={a.alerts} error={a.error} onAcknowledge={(id) => void a.acknowledge(id)} />;
}

describe("useAlerts", () => {
  it("follows pushed alerts and keeps the banner until the backend confirms the acknowledgement", async () => {
    let push: ((l: AlertView[]) => void) | null = null;
    let ackFails = true;
    const backend = {
      alerts: async () => ({ status: "ok" as const, data: [] }),
      onAlerts: async (cb: (l: AlertView[]) => void) => {
        push = cb;
        return () => {};
      },
      acknowledgeAlert: async (id: number) =>
        ackFails
          ? { status: "error" as const, error: { code: "storage" as const, reason: "store.disk_full", message: "disk full" } }
          : { status: "ok" as const, data: [{ ...assignment, id, acknowledgedAt: "2025-03-04T16:00:00Z" }] },
    } as unknown as Backend;
    render(<Harness backend={backend} />);
    await act(async () => {});
    act(() => push?.([assignment]));
    expect(screen.getByTestId("critical-alert")).toBeTruthy();
    await act(async () => fireEvent.click(screen.getByTestId("ack-7")));
    // The store refused: the alert stays, and the refusal is shown with its reason.
    expect(screen.getByTestId("critical-alert")).toBeTruthy();
    expect(screen.getByTestId("alerts-error").textContent).toContain("store.disk_full");
    ackFails = false;
    await act(async () => fireEvent.click(screen.getByTestId("ack-7")));
    expect(screen.queryByTestId("critical-banner")).toBeNull();
  });
});
