import { act, fireEvent, render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { App } from "./App";
import { fakeBackend, ok, rulesFile } from "./testing/fakeBackend";

describe("App: Rules and Audit log tabs", () => {
  it("opens the Rules and Audit log screens from the tab bar", async () => {
    const backend = fakeBackend({
      rulesFile: async () => ok(rulesFile({ path: "/cfg/risk.toml" })),
      auditLog: async () => ok({ rows: [], kinds: [], total: 0, truncated: false }),
    });
    render(<App backend={backend} />);
    await act(async () => {});
    expect(screen.getByTestId("nav-rules").textContent).toBe("Rules");
    expect(screen.getByTestId("nav-audit").textContent).toBe("Audit log");
    expect(screen.queryByTestId("rules-screen")).toBeNull();

    await act(async () => fireEvent.click(screen.getByTestId("nav-rules")));
    expect(screen.getByTestId("nav-rules").getAttribute("aria-current")).toBe("page");
    expect(screen.getByTestId("rules-path").textContent).toBe("/cfg/risk.toml");

    await act(async () => fireEvent.click(screen.getByTestId("nav-audit")));
    expect(screen.getByTestId("nav-audit").getAttribute("aria-current")).toBe("page");
    expect(screen.getByTestId("audit-screen")).toBeTruthy();
    expect(screen.getByTestId("audit-count").textContent).toBe("0 shown of 0");
    expect(screen.queryByTestId("rules-screen")).toBeNull();
  });
});
