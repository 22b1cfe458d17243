import { act, fireEvent, render, screen } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import type { Result } from "./backend";
import type { Settings } from "./bindings";
import { SettingsScreen, withDefaults } from "./Settings";
import { fail, fakeBackend, ok, venueSettings } from "./testing/fakeBackend";

const flush = () => act(async () => {});

describe("withDefaults", () => {
  it("fills what the settings file leaves out with the backend's defaults", () => {
    expect(withDefaults({})).toEqual({ startAtLogin: false, logLevel: "info", venue: venueSettings() });
    expect(withDefaults({ logLevel: "debug" })).toEqual({ startAtLogin: false, logLevel: "debug", venue: venueSettings() });
  });
});

describe("SettingsScreen", () => {
  it("shows where data, config and logs live and what chose them", async () => {
    const backend = fakeBackend({
      locations: async () =>
        ok({ dataDir: "/tmp/tg/data", configDir: "/tmp/tg/config", logDir: "/tmp/tg/logs", source: "--data-dir" }),
    });
    render(<SettingsScreen backend={backend} />);
    expect((await screen.findByTestId("settings-data-dir")).textContent).toBe("/tmp/tg/data");
    expect(screen.getByTestId("settings-config-dir").textContent).toBe("/tmp/tg/config");
    expect(screen.getByTestId("settings-log-dir").textContent).toBe("/tmp/tg/logs");
    expect(screen.getByTestId("settings-source").textContent).toContain("--data-dir");
  });

  it("loads the saved settings; start at login is off by default", async () => {
    render(<SettingsScreen backend={fakeBackend({ settings: async () => ok({}) })} />);
    const box = (await screen.findByTestId("start-at-login")) as HTMLInputElement;
    expect(box.checked).toBe(false);
    expect((screen.getByTestId("log-level") as HTMLSelectElement).value).toBe("info");
    expect(screen.getByText(/applies at the next start/)).toBeTruthy();
  });

  it("saves what the person chose and confirms", async () => {
    const saveSettings = vi.fn(async (s: Settings) => ok(s));
    render(<SettingsScreen backend={fakeBackend({ settings: async () => ok({ startAtLogin: false, logLevel: "info" }), saveSettings })} />);
    fireEvent.click(await screen.findByTestId("start-at-login"));
    fireEvent.change(screen.getByTestId("log-level"), { target: { value: "debug" } });
    await act(async () => fireEvent.click(screen.getByTestId("save-settings")));
    expect(saveSettings).toHaveBeenCalledWith({ startAtLogin: true, logLevel: "debug", venue: venueSettings() });
    expect(screen.getByTestId("settings-saved").textContent).toContain("next start");
    expect(screen.queryByTestId("settings-error")).toBeNull();
  });

  it("shows progress while saving, and a refused save keeps what the person entered", async () => {
    let answer: (r: Result<Settings>) => void = () => {};
    const saveSettings = vi.fn(() => new Promise<Result<Settings>>((r) => (answer = r)));
    render(<SettingsScreen backend={fakeBackend({ saveSettings })} />);
    fireEvent.click(await screen.findByTestId("start-at-login"));
    fireEvent.change(screen.getByTestId("log-level"), { target: { value: "trace" } });
    fireEvent.click(screen.getByTestId("save-settings"));
    const button = screen.getByTestId("save-settings") as HTMLButtonElement;
    expect(button.textContent).toBe("Saving…");
    expect(button.disabled).toBe(true);
    await act(async () => answer(fail("storage", "settings.write", "cannot write settings.toml: read-only file system")));
    const error = screen.getByTestId("settings-error");
    expect(error.textContent).toContain("read-only file system");
    expect(error.textContent).toContain("storage · settings.write");
    expect((screen.getByTestId("start-at-login") as HTMLInputElement).checked).toBe(true);
    expect((screen.getByTestId("log-level") as HTMLSelectElement).value).toBe("trace");
    expect(screen.queryByTestId("settings-saved")).toBeNull();
    expect(button.disabled).toBe(false);
  });

  it("says when the saved settings could not be read, and still lets the person save", async () => {
    const saveSettings = vi.fn(async (s: Settings) => ok(s));
    render(
      <SettingsScreen
        backend={fakeBackend({ settings: async () => fail("invalid_input", "settings.parse", "settings.toml is not valid"), saveSettings })}
      />,
    );
    expect((await screen.findByTestId("settings-load-error")).textContent).toContain("settings.parse");
    await act(async () => fireEvent.click(screen.getByTestId("save-settings")));
    expect(saveSettings).toHaveBeenCalledWith({ startAtLogin: false, logLevel: "info", venue: venueSettings() });
    expect(screen.queryByTestId("settings-load-error")).toBeNull();
  });

  it("opens the logs folder and shows a refusal beside the button", async () => {
    const openLogsFolder = vi.fn(async () => fail<null>("unavailable", "shell.open", "no file manager found"));
    render(<SettingsScreen backend={fakeBackend({ openLogsFolder })} />);
    await flush();
    await act(async () => fireEvent.click(screen.getByTestId("open-logs")));
    expect(openLogsFolder).toHaveBeenCalledTimes(1);
    expect(screen.getByTestId("open-logs-error").textContent).toContain("no file manager found");
  });

  it("exports diagnostics and shows the written file", async () => {
    let answer: (r: Result<string>) => void = () => {};
    render(<SettingsScreen backend={fakeBackend({ exportDiagnostics: () => new Promise((r) => (answer = r)) })} />);
    await flush();
    fireEvent.click(screen.getByTestId("export-diagnostics"));
    expect(screen.getByTestId("export-diagnostics").textContent).toBe("Exporting…");
    expect(screen.queryByTestId("diagnostics-path")).toBeNull();
    await act(async () => answer(ok("/home/t/.local/share/tradeguard/diagnostics-20250304-150000.txt")));
    expect(screen.getByTestId("diagnostics-path").textContent).toBe("/home/t/.local/share/tradeguard/diagnostics-20250304-150000.txt");
    expect(screen.getByTestId("export-diagnostics").textContent).toBe("Export diagnostics");
  });

  it("shows a failed export with its code", async () => {
    render(<SettingsScreen backend={fakeBackend({ exportDiagnostics: async () => fail("storage", "diagnostics.write", "disk full") })} />);
    await flush();
    await act(async () => fireEvent.click(screen.getByTestId("export-diagnostics")));
    expect(screen.getByTestId("diagnostics-error").textContent).toContain("storage · diagnostics.write");
    expect(screen.queryByTestId("diagnostics-path")).toBeNull();
  });
});
