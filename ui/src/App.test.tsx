import { act, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { App, formatUptime } from "./App";
import type { Backend } from "./backend";
import type { AppStatus } from "./bindings";
import { fakeBackend } from "./testing/fakeBackend";

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
  it("shows the backend status and refreshes it on click", async () => {
    const fake = statusBackend([status(1.5, 1), status(9.0, 2)]);
    render(<App backend={fake.backend} />);
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
    await screen.findByText("1.0 s");
    act(() => fake.beat(42));
    expect(screen.getByTestId("heartbeat").textContent).toBe("42.0 s");
  });

  it("shows a backend error with its code where the user acted", async () => {
    const fake = statusBackend(["error"]);
    render(<App backend={fake.backend} />);
    const alert = await screen.findByTestId("error");
    expect(alert.textContent).toContain("engine not ready");
    expect(alert.textContent).toContain("unavailable");
    expect(screen.queryByTestId("critical-banner")).toBeNull();
  });
});
