import { act, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import { App, formatUptime } from "./App";
import type { Backend } from "./backend";
import type { AlertView, AppStatus, FlattenTarget, ShellRequestKind } from "./bindings";
import { fakeBackend, guardView, ok, portfolioView, preview, ticket } from "./testing/fakeBackend";

function statusBackend(statuses: Array<AppStatus | "error">) {
  let i = 0;
  let heartbeat: ((s: number | null) => void) | null = null;
  const backend: Backend = fakeBackend({
    appStatus: async () => {
      const next = statuses[Math.min(i++, statuses.length - 1)];
      return next === "error"
        ? { status: "error", error: { code: "unavailable", reason: "engine.starting", message: "engine not ready" } }
        : { status: "ok", data: next };
    },
    onHeartbeat: async (cb) => {
      heartbeat = cb;
      return () => (heartbeat = null);
    },
  });
  return { backend, beat: (s: number) => heartbeat?.(s), calls: () => i };
}

const status = (uptimeSecs: number, requestsServed: number): AppStatus => ({
  appName: "Tradeguard",
  version: "0.1.0",
  uptimeSecs,
  requestsServed,
});

describe("formatUptime", () => {
  it("formats seconds, minutes and hours", () => {
    expect(formatUptime(3.25)).toBe("3.3 s");
    expect(formatUptime(125)).toBe("2 min 5 s");
    expect(formatUptime(7260)).toBe("2 h 1 min");
    expect(formatUptime(-1)).toBe("—");
    expect(formatUptime(Number.NaN)).toBe("—");
    expect(formatUptime(null)).toBe("—");
  });
});

describe("App", () => {
  it("shows the backend status in Settings' About card and refreshes it on click", async () => {
    const fake = statusBackend([status(1.5, 1), status(9.0, 2)]);
    render(<App backend={fake.backend} />);
    // The Dashboard is for the trader's positions: no developer card there.
    await waitFor(() => expect(screen.getByTestId("app-version").textContent).toBe("v0.1.0"));
    expect(screen.queryByText("Check backend")).toBeNull();
    expect(screen.queryByTestId("refresh-status")).toBeNull();
    await act(async () => fireEvent.click(screen.getByTestId("nav-settings")));
    expect(await screen.findByText("1.5 s")).toBeTruthy();
    expect(screen.getByTestId("app-version").textContent).toBe("v0.1.0");
    fireEvent.click(screen.getByTestId("refresh-status"));
    await waitFor(() => expect(screen.getByTestId("uptime").textContent).toBe("9.0 s"));
    expect(screen.getByTestId("requests").textContent).toBe("2");
    expect(fake.calls()).toBe(2);
  });

  it("shows the heartbeat pushed by the backend", async () => {
    const fake = statusBackend([status(1, 1)]);
    render(<App backend={fake.backend} />);
    await act(async () => fireEvent.click(screen.getByTestId("nav-settings")));
    await screen.findByText("1.0 s");
    act(() => fake.beat(42));
    expect(screen.getByTestId("heartbeat").textContent).toBe("42.0 s");
  });

  it("shows a backend error with its code where the user acted", async () => {
    const fake = statusBackend(["error"]);
    render(<App backend={fake.backend} />);
    await act(async () => fireEvent.click(screen.getByTestId("nav-settings")));
    const alert = await screen.findByTestId("error");
    expect(alert.textContent).toContain("engine not ready");
    expect(alert.textContent).toContain("unavailable");
    expect(screen.queryByTestId("critical-banner")).toBeNull();
  });
});

const critical: AlertView = {
  id: 7,
  severity: "critical",
  code: "assignment.detected",
  message: "ASSIGNMENT: SPY 590 P ×1 assigned — emergency close sent",
  account: "DU1",
  createdAt: "2025-03-04T15:00:00Z",
  acknowledgedAt: null,
};

function shellBackend(over: Partial<Backend> = {}) {
  let request: ((k: ShellRequestKind) => void) | null = null;
  const backend = fakeBackend({
    appStatus: async () => ok(status(1, 1)),
    alerts: async () => ok([critical]),
    onShellRequest: async (cb) => {
      request = cb;
      return () => (request = null);
    },
    ...over,
  });
  return { backend, request: (k: ShellRequestKind) => request?.(k) };
}

describe("App navigation and shell requests", () => {
  it("switches screens from the tab bar; the critical banner stays on every screen", async () => {
    const { backend } = shellBackend();
    render(<App backend={backend} />);
    await screen.findByTestId("critical-alert");
    expect(screen.getByTestId("nav-dashboard").getAttribute("aria-current")).toBe("page");
    expect(screen.queryByTestId("save-settings")).toBeNull();
    await act(async () => fireEvent.click(screen.getByTestId("nav-settings")));
    expect(screen.getByTestId("nav-settings").getAttribute("aria-current")).toBe("page");
    expect(screen.getByTestId("nav-dashboard").getAttribute("aria-current")).toBeNull();
    expect(screen.getByTestId("save-settings")).toBeTruthy();
    expect(screen.getByTestId("critical-alert").textContent).toContain("SPY 590 P");
    expect(screen.getByTestId("app-version").textContent).toBe("v0.1.0");
    await act(async () => fireEvent.click(screen.getByTestId("nav-dashboard")));
    expect(screen.queryByTestId("save-settings")).toBeNull();
  });

  it("a clicked notification brings the Dashboard's alerts forward from any screen", async () => {
    const fake = shellBackend();
    render(<App backend={fake.backend} />);
    await act(async () => fireEvent.click(await screen.findByTestId("nav-settings")));
    expect(screen.queryByTestId("alert-list")).toBeNull();
    await act(async () => fake.request("showAlerts"));
    expect(screen.getByTestId("nav-dashboard").getAttribute("aria-current")).toBe("page");
    expect((await screen.findByTestId("alert-list")).textContent).toContain("SPY 590 P");
  });

  it("shows armed emergency closes on the Dashboard", async () => {
    const v = guardView({
      emergencyCloses: [
        { strategy: "SPY strangle", account: "DU1", phase: "armed", releaseAt: "2025-03-05T14:30:00Z", releasesInSecs: 600, orders: [], how: "market orders 2 min after the open" },
      ],
    });
    const { backend } = shellBackend({ guardStatus: async () => ok(v) });
    render(<App backend={backend} />);
    expect((await screen.findByTestId("emergency-countdown")).textContent).toContain("goes out in 10 min");
  });

  it("a quit request from the tray opens the quit confirmation over an inert app", async () => {
    const quitApp = vi.fn(async () => ok(null));
    const v = guardView({ protections: [{ name: "backstop stop SPY 590 P", atBroker: true }] });
    const fake = shellBackend({ guardStatus: async () => ok(v), quitApp });
    render(<App backend={fake.backend} />);
    await screen.findByTestId("critical-alert");
    expect(screen.queryByTestId("quit-dialog")).toBeNull();
    await act(async () => fake.request("confirmQuit"));
    expect(screen.getByTestId("quit-broker-list").textContent).toContain("backstop stop SPY 590 P");
    expect(document.querySelector("main")?.hasAttribute("inert")).toBe(true);
    fireEvent.click(screen.getByTestId("quit-cancel"));
    expect(screen.queryByTestId("quit-dialog")).toBeNull();
    expect(document.querySelector("main")?.hasAttribute("inert")).toBe(false);
    expect(quitApp).not.toHaveBeenCalled();
  });

  it("a flatten-all request from the tray opens the flatten-all preview of the only account", async () => {
    const previewFlatten = vi.fn(async (_t: FlattenTarget) => ok(preview({ title: "Flatten all of DU1" })));
    const confirmFlatten = vi.fn(async () => ok(ticket()));
    const fake = shellBackend({ portfolio: async () => ok(portfolioView(["DU1"])), previewFlatten, confirmFlatten });
    render(<App backend={fake.backend} />);
    await act(async () => fireEvent.click(screen.getByTestId("nav-settings")));
    await act(async () => fake.request("flattenAll"));
    expect(screen.getByTestId("nav-dashboard").getAttribute("aria-current")).toBe("page");
    expect(screen.getByTestId("flatten-title").textContent).toBe("Flatten all of DU1");
    expect(previewFlatten).toHaveBeenCalledTimes(1);
    expect(previewFlatten).toHaveBeenCalledWith({ kind: "account", account: "DU1" });
    expect(screen.queryByTestId("flatten-accounts")).toBeNull();
    fireEvent.click(screen.getByTestId("flatten-cancel"));
    expect(screen.queryByTestId("flatten-dialog")).toBeNull();
    expect(confirmFlatten).not.toHaveBeenCalled();
  });

  it("with several accounts, a flatten-all request asks which account before previewing", async () => {
    const previewFlatten = vi.fn(async (t: FlattenTarget) =>
      ok(preview({ title: `Flatten all of ${t.kind === "account" ? t.account : "?"}` })),
    );
    const fake = shellBackend({ portfolio: async () => ok(portfolioView(["DU1", "DU2"])), previewFlatten });
    render(<App backend={fake.backend} />);
    await act(async () => fake.request("flattenAll"));
    expect(screen.getByTestId("flatten-title").textContent).toBe("Flatten all");
    const confirm = screen.getByTestId("flatten-confirm") as HTMLButtonElement;
    expect(confirm.disabled).toBe(true);
    const choices = screen.getAllByTestId("flatten-account") as HTMLInputElement[];
    expect(choices.map((c) => c.value)).toEqual(["DU1", "DU2"]);
    expect(previewFlatten).not.toHaveBeenCalled();
    fireEvent.click(choices[1]);
    await act(async () => fireEvent.click(screen.getByTestId("flatten-confirm")));
    expect(previewFlatten).toHaveBeenCalledWith({ kind: "account", account: "DU2" });
    expect(screen.getByTestId("flatten-title").textContent).toBe("Flatten all of DU2");
  });
});
