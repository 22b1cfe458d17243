import { act, fireEvent, render, screen } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import { App, SCREENS } from "./App";
import { fakeBackend, ok, rulesFile } from "./testing/fakeBackend";

describe("App: tab order", () => {
  it("has Trade and Orders between Dashboard and Rules", async () => {
    render(<App backend={fakeBackend()} />);
    await act(async () => {});
    const tabs = screen.getAllByRole("button").filter((b) => b.getAttribute("data-testid")?.startsWith("nav-"));
    expect(tabs.map((t) => t.textContent)).toEqual(["Dashboard", "Trade", "Orders", "Rules", "Audit log", "Settings"]);
    expect(SCREENS.map((s) => s.id)).toEqual(["dashboard", "trade", "orders", "rules", "audit", "settings"]);
  });
});

describe("App: Orders tab", () => {
  it("shows the blotter and stops asking for it when the person leaves", async () => {
    const blotter = vi.fn(async () => ok({ groups: [], stops: [], executions: [], executionsError: null }));
    render(<App backend={fakeBackend({ blotter })} />);
    await act(async () => {});
    expect(blotter).not.toHaveBeenCalled();
    await act(async () => fireEvent.click(screen.getByTestId("nav-orders")));
    expect(screen.getByTestId("nav-orders").getAttribute("aria-current")).toBe("page");
    expect(screen.getByTestId("groups-empty").textContent).toContain("No orders this session");
    expect(blotter).toHaveBeenCalledTimes(1);
    await act(async () => fireEvent.click(screen.getByTestId("nav-dashboard")));
    expect(screen.queryByTestId("orders-screen")).toBeNull();
  });
});

describe("App: an unsaved Rules edit survives a tab switch", () => {
  it("keeps the draft, marks the Rules tab, and clears the mark once saved", async () => {
    // A file on "disk" that a save replaces.
    let onDisk = "dry_run = false\n";
    const saveRules = vi.fn(async (text: string) => ((onDisk = text), ok({ outcome: "saved" as const, file: rulesFile({ text }) })));
    const backend = fakeBackend({ rulesFile: async () => ok(rulesFile({ text: onDisk })), saveRules });
    render(<App backend={backend} />);
    await act(async () => {});
    await act(async () => fireEvent.click(screen.getByTestId("nav-rules")));
    expect(screen.queryByTestId("nav-rules-unsaved")).toBeNull();

    const edited = "dry_run = false\n# my edit\n";
    fireEvent.change(screen.getByTestId("rules-text"), { target: { value: edited } });
    expect(screen.getByTestId("nav-rules-unsaved").textContent).toContain("unsaved changes");
    expect(screen.getByTestId("nav-rules").title).toBe("Rules: unsaved changes");

    await act(async () => fireEvent.click(screen.getByTestId("nav-audit")));
    expect(screen.queryByTestId("rules-screen")).toBeNull();
    expect(screen.getByTestId("nav-rules-unsaved")).toBeTruthy();

    await act(async () => fireEvent.click(screen.getByTestId("nav-rules")));
    expect((screen.getByTestId("rules-text") as HTMLTextAreaElement).value).toBe(edited);
    expect(screen.getByTestId("rules-unsaved")).toBeTruthy();
    expect(screen.getByTestId("rules-restored")).toBeTruthy();

    // The check of the kept text runs after the debounce; then it can be saved.
    await act(async () => new Promise((r) => setTimeout(r, 400)));
    await act(async () => fireEvent.click(screen.getByTestId("rules-save")));
    expect(saveRules).toHaveBeenCalledWith(edited, null);
    expect(screen.queryByTestId("nav-rules-unsaved")).toBeNull();

    await act(async () => fireEvent.click(screen.getByTestId("nav-audit")));
    await act(async () => fireEvent.click(screen.getByTestId("nav-rules")));
    expect((screen.getByTestId("rules-text") as HTMLTextAreaElement).value).toBe(edited);
    expect(screen.queryByTestId("rules-restored")).toBeNull();
  });

  it("drops the mark when the edit is undone by hand", async () => {
    render(<App backend={fakeBackend({ rulesFile: async () => ok(rulesFile({ text: "a = 1\n" })) })} />);
    await act(async () => {});
    await act(async () => fireEvent.click(screen.getByTestId("nav-rules")));
    fireEvent.change(screen.getByTestId("rules-text"), { target: { value: "a = 2\n" } });
    expect(screen.getByTestId("nav-rules-unsaved")).toBeTruthy();
    fireEvent.change(screen.getByTestId("rules-text"), { target: { value: "a = 1\n" } });
    expect(screen.queryByTestId("nav-rules-unsaved")).toBeNull();
  });
});

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
