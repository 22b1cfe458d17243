import { act, fireEvent, render, screen } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import type { Result } from "./backend";
import type { ConnectionTest, Settings, VenueSettings } from "./bindings";
import { SettingsScreen } from "./Settings";
import { fail, fakeBackend, ok, venueSettings } from "./testing/fakeBackend";
import { toVenueSettings, validateProjectx, validateTradier, validateVenue, venueForm, venueSwitches, type VenueForm } from "./Venue";

const form = (over: Partial<VenueForm> = {}): VenueForm => ({ ...venueForm(venueSettings({ kind: "ib" })), ...over });
const input = (id: string) => screen.getByTestId(`venue-${id}`) as HTMLInputElement;
const type = (id: string, value: string) => fireEvent.change(input(id), { target: { value } });
const flush = () => act(async () => {});

describe("validateVenue", () => {
  it("accepts the defaults and each field's bounds", () => {
    expect(validateVenue(form())).toEqual({});
    expect(validateVenue(form({ port: "1", clientId: "0", account: "" }))).toEqual({});
    expect(validateVenue(form({ port: "65535", clientId: "999999999", account: "DU1234567" }))).toEqual({});
    expect(validateVenue(form({ port: " 4002 ", host: " gw.local " }))).toEqual({});
  });

  it("names each field that cannot be sent", () => {
    const errors = validateVenue(form({ host: "  ", port: "65536", clientId: "1000000000", account: "DU-1" }));
    expect(Object.keys(errors).sort()).toEqual(["account", "clientId", "host", "port"]);
    for (const port of ["0", "", "4002.5", "-1", "4e3", "abc"]) expect(validateVenue(form({ port })).port).toBeDefined();
    for (const clientId of ["-1", "", "1.5", "x"]) expect(validateVenue(form({ clientId })).clientId).toBeDefined();
    for (const account of ["DU 1", "DU_1", "ü1"]) expect(validateVenue(form({ account })).account).toBeDefined();
  });
});

describe("toVenueSettings", () => {
  it("trims and converts the typed text", () => {
    expect(toVenueSettings(form({ host: " 10.0.0.5 ", port: "7497", clientId: " 12 ", account: " U123 " }))).toEqual({
      kind: "ib",
      simDemo: "options",
      ibHost: "10.0.0.5",
      ibPort: 7497,
      ibClientId: 12,
      ibAccount: "U123",
      tradierAccount: "",
      tradierEnv: "sandbox",
      tradierUrl: "",
      projectxUser: "",
      projectxAccount: "",
      projectxApi: "",
      projectxRtc: "",
    });
  });

  it("refuses invalid IB fields for IB, and keeps the saved ones when the simulator is chosen", () => {
    expect(toVenueSettings(form({ port: "99999" }))).toBeNull();
    const saved = venueSettings({ kind: "ib", ibPort: 7497 });
    expect(toVenueSettings(form({ kind: "sim", port: "99999" }), saved)).toEqual({ ...saved, kind: "sim" });
  });

  it("knows when a save switches the venue", () => {
    expect(venueSwitches(venueSettings(), venueSettings({ simDemo: "futures" }))).toBe(true);
    expect(venueSwitches(venueSettings(), venueSettings({ kind: "ib" }))).toBe(true);
    expect(venueSwitches(venueSettings({ kind: "ib" }), venueSettings({ kind: "ib", ibPort: 4001 }))).toBe(true);
    expect(venueSwitches(venueSettings(), venueSettings({ ibPort: 4001 }))).toBe(false);
    expect(venueSwitches({}, venueSettings())).toBe(false);
  });
});

describe("Settings → Venue", () => {
  function setup(over: Parameters<typeof fakeBackend>[0] = {}, venue: VenueSettings = venueSettings()) {
    const saveSettings = vi.fn(async (s: Settings) => ok(s));
    const testIbConnection = vi.fn(async (v: VenueSettings) =>
      ok<ConnectionTest>({ address: `${v.ibHost}:${v.ibPort}`, account: "DU777", millis: 142, livePort: false }),
    );
    const backend = fakeBackend({
      settings: async () => ok({ startAtLogin: false, logLevel: "info", venue }),
      saveSettings,
      testIbConnection,
      ...over,
    });
    render(<SettingsScreen backend={backend} />);
    return { saveSettings, testIbConnection };
  }

  it("is Simulated by default and says a switch needs a restart", async () => {
    setup({ settings: async () => ok({}) });
    await flush();
    expect(input("sim").checked).toBe(true);
    expect(input("ib").checked).toBe(false);
    expect(screen.queryByTestId("venue-host")).toBeNull();
    expect(screen.getByTestId("venue-restart-hint").textContent).toContain("Restart Tradeguard to switch venue");
  });

  it("for IB, shows host, port with quick picks, client id and an optional account", async () => {
    setup();
    await flush();
    fireEvent.click(input("ib"));
    expect(input("host").value).toBe("127.0.0.1");
    expect(input("port").value).toBe("4002");
    expect(input("client-id").value).toBe("1");
    expect(input("account").value).toBe("");
    expect(input("account").placeholder).toBe("first managed account");
    expect(screen.getByTestId("port-pick-4002").getAttribute("aria-pressed")).toBe("true");
    expect(screen.queryByTestId("venue-live-warning")).toBeNull();

    fireEvent.click(screen.getByTestId("port-pick-7497"));
    expect(input("port").value).toBe("7497");
    expect(screen.getByTestId("port-pick-7497").textContent).toBe("TWS paper 7497");
    expect(screen.queryByTestId("venue-live-warning")).toBeNull();
  });

  it("warns in red on a live port: real money", async () => {
    setup();
    await flush();
    fireEvent.click(input("ib"));
    for (const port of ["4001", "7496"]) {
      fireEvent.click(screen.getByTestId(`port-pick-${port}`));
      const warning = screen.getByTestId("venue-live-warning");
      expect(warning.textContent).toContain("real money");
      expect(warning.className).toContain("error");
    }
    type("port", "4002");
    expect(screen.queryByTestId("venue-live-warning")).toBeNull();
  });

  it("shows each invalid field's error beside it and sends nothing", async () => {
    const { saveSettings, testIbConnection } = setup();
    await flush();
    fireEvent.click(input("ib"));
    type("host", " ");
    type("port", "70000");
    type("client-id", "-3");
    type("account", "DU 12");
    expect(screen.getByTestId("venue-host-error").textContent).toContain("host");
    expect(screen.getByTestId("venue-port-error").textContent).toContain("1 to 65535");
    expect(screen.getByTestId("venue-client-id-error").textContent).toContain("0 to 999999999");
    expect(screen.getByTestId("venue-account-error").textContent).toContain("letters and digits");
    expect(input("port").getAttribute("aria-invalid")).toBe("true");
    expect((screen.getByTestId("venue-test") as HTMLButtonElement).disabled).toBe(true);

    await act(async () => fireEvent.click(screen.getByTestId("save-settings")));
    expect(saveSettings).not.toHaveBeenCalled();
    expect(testIbConnection).not.toHaveBeenCalled();
    expect(screen.getByTestId("settings-invalid").textContent).toContain("fix the venue fields");
    // What was typed stays.
    expect(input("port").value).toBe("70000");
    expect(input("account").value).toBe("DU 12");

    type("host", "gw.local");
    expect(screen.queryByTestId("settings-invalid")).toBeNull();
    expect(screen.queryByTestId("venue-host-error")).toBeNull();
  });

  it("saves the whole settings with the IB venue and says to restart", async () => {
    const { saveSettings } = setup();
    await flush();
    fireEvent.click(screen.getByTestId("start-at-login"));
    fireEvent.click(input("ib"));
    type("host", " 10.0.0.5 ");
    fireEvent.click(screen.getByTestId("port-pick-7497"));
    type("client-id", "17");
    type("account", "U1234567");
    await act(async () => fireEvent.click(screen.getByTestId("save-settings")));
    expect(saveSettings).toHaveBeenCalledWith({
      startAtLogin: true,
      logLevel: "info",
      venue: venueSettings({ kind: "ib", ibHost: "10.0.0.5", ibPort: 7497, ibClientId: 17, ibAccount: "U1234567" }),
    });
    expect(screen.getByTestId("settings-saved").textContent).toContain("Restart Tradeguard to switch venue");
    expect(input("host").value).toBe("10.0.0.5");
  });

  it("a refused save keeps every venue field as typed", async () => {
    const saveSettings = vi.fn(async () => fail<Settings>("storage", "settings.write", "read-only file system"));
    setup({ saveSettings });
    await flush();
    fireEvent.click(input("ib"));
    type("host", "gw.local");
    type("port", "4001");
    type("client-id", "9");
    type("account", "U9");
    await act(async () => fireEvent.click(screen.getByTestId("save-settings")));
    expect(saveSettings).toHaveBeenCalledTimes(1);
    expect(screen.getByTestId("settings-error").textContent).toContain("storage · settings.write");
    expect(input("ib").checked).toBe(true);
    expect([input("host").value, input("port").value, input("client-id").value, input("account").value]).toEqual([
      "gw.local",
      "4001",
      "9",
      "U9",
    ]);
    expect(screen.getByTestId("venue-live-warning")).toBeTruthy();
  });

  it("going back to Simulated saves even with half-typed IB fields, keeping the saved IB ones", async () => {
    const saved = venueSettings({ kind: "ib", ibHost: "gw.local", ibPort: 4002 });
    const { saveSettings } = setup({}, saved);
    await flush();
    expect(input("ib").checked).toBe(true);
    type("port", "40");
    type("host", "");
    fireEvent.click(input("sim"));
    await act(async () => fireEvent.click(screen.getByTestId("save-settings")));
    expect(saveSettings).toHaveBeenCalledWith({ startAtLogin: false, logLevel: "info", venue: { ...saved, kind: "sim" } });
    expect(screen.getByTestId("settings-saved").textContent).toContain("Restart Tradeguard to switch venue");
  });

  it("tests the connection with the typed settings: progress, then account and time", async () => {
    let answer: (r: Result<ConnectionTest>) => void = () => {};
    const testIbConnection = vi.fn(() => new Promise<Result<ConnectionTest>>((r) => (answer = r)));
    const { saveSettings } = setup({ testIbConnection });
    await flush();
    fireEvent.click(input("ib"));
    type("host", "10.0.0.5");
    fireEvent.click(screen.getByTestId("port-pick-4001"));
    fireEvent.click(screen.getByTestId("venue-test"));
    expect(testIbConnection).toHaveBeenCalledWith({ kind: "ib", ibHost: "10.0.0.5", ibPort: 4001, ibClientId: 1, ibAccount: "" });
    expect(screen.getByTestId("venue-test-status").textContent).toBe("Connecting to 10.0.0.5:4001…");
    expect(screen.getByTestId("venue-test").textContent).toBe("Testing…");
    expect((screen.getByTestId("venue-test") as HTMLButtonElement).disabled).toBe(true);

    await act(async () => answer(ok({ address: "10.0.0.5:4001", account: "U555", millis: 87, livePort: true })));
    const status = screen.getByTestId("venue-test-status").textContent;
    expect(status).toContain("U555");
    expect(status).toContain("87 ms");
    expect(status).toContain("LIVE");
    expect(screen.getByTestId("venue-test").textContent).toBe("Test connection");
    expect(saveSettings).not.toHaveBeenCalled();

    // The result was for these settings: once they change it no longer shows.
    type("client-id", "2");
    expect(screen.queryByTestId("venue-test-status")).toBeNull();
  });

  it("shows a failed test's message and code beside the button", async () => {
    setup({ testIbConnection: async () => fail("unavailable", "ib.not_connected", "127.0.0.1:4002: connection refused") });
    await flush();
    fireEvent.click(input("ib"));
    await act(async () => fireEvent.click(screen.getByTestId("venue-test")));
    const error = screen.getByTestId("venue-test-error");
    expect(error.textContent).toContain("connection refused");
    expect(error.textContent).toContain("unavailable · ib.not_connected");
    expect(screen.queryByTestId("venue-test-status")).toBeNull();
  });
});

describe("Settings → Venue → Tradier", () => {
  function setup(over: Parameters<typeof fakeBackend>[0] = {}) {
    const saveSettings = vi.fn(async (s: Settings) => ok(s));
    const saveTradierToken = vi.fn(async () => ok(null));
    const testTradierConnection = vi.fn(async (v: VenueSettings) =>
      ok({ apiUrl: v.tradierUrl || "https://sandbox.tradier.com/v1", account: v.tradierAccount ?? "", accounts: ["VA11"], millis: 42, live: false }),
    );
    const backend = fakeBackend({
      settings: async () => ok({ startAtLogin: false, logLevel: "info", venue: venueSettings() }),
      saveSettings,
      saveTradierToken,
      testTradierConnection,
      ...over,
    });
    render(<SettingsScreen backend={backend} />);
    return { saveSettings, saveTradierToken, testTradierConnection };
  }

  it("validates the account and the URL", () => {
    const f = form({ kind: "tradier", tradierAccount: "VA 1", tradierUrl: "http://example.com/v1" });
    expect(Object.keys(validateTradier(f)).sort()).toEqual(["tradierAccount", "tradierUrl"]);
    expect(validateTradier(form({ tradierAccount: "VA11", tradierUrl: "http://127.0.0.1:8080/v1" }))).toEqual({});
    expect(toVenueSettings(form({ kind: "tradier", tradierAccount: "" }))).toBeNull();
  });

  it("stores the token in the keychain (cleared from the screen), tests, and saves the venue without it", async () => {
    const { saveSettings, saveTradierToken, testTradierConnection } = setup();
    await flush();
    fireEvent.click(input("tradier"));
    type("tradier-account", "VA11");
    type("tradier-token", "  secret-token ");
    expect(input("tradier-token").type).toBe("password");
    await act(async () => fireEvent.click(screen.getByTestId("tradier-store-token")));
    expect(saveTradierToken).toHaveBeenCalledWith("VA11", "  secret-token ");
    expect(input("tradier-token").value).toBe("");
    expect(screen.getByTestId("tradier-token-status").textContent).toContain("VA11");
    expect(screen.getByTestId("tradier-token-status").textContent).toContain("is in the OS keychain");
    await act(async () => fireEvent.click(screen.getByTestId("tradier-test")));
    expect(testTradierConnection).toHaveBeenCalledTimes(1);
    expect(screen.getByTestId("tradier-test-status").textContent).toContain("VA11");
    fireEvent.click(screen.getByTestId("tradier-env-live"));
    expect(screen.getByTestId("tradier-live-warning")).toBeTruthy();
    await act(async () => fireEvent.click(screen.getByTestId("save-settings")));
    const saved = saveSettings.mock.calls[0][0];
    expect(saved.venue).toEqual(venueSettings({ kind: "tradier", tradierAccount: "VA11", tradierEnv: "live" }));
    expect(JSON.stringify(saved)).not.toContain("secret-token");
  });

  it("a failed test says why", async () => {
    setup({ testTradierConnection: async () => fail("unavailable", "tradier.unauthorized", "Tradier refused the token (401)") });
    await flush();
    fireEvent.click(input("tradier"));
    type("tradier-account", "VA11");
    await act(async () => fireEvent.click(screen.getByTestId("tradier-test")));
    expect(screen.getByTestId("tradier-test-error").textContent).toContain("tradier.unauthorized");
  });
});

describe("Settings → Venue → ProjectX", () => {
  it("validates, stores the key for the user, tests and saves the venue without the key", async () => {
    const saveSettings = vi.fn(async (s: Settings) => ok(s));
    const saveProjectxKey = vi.fn(async () => ok(null));
    const testProjectxConnection = vi.fn(async (v: VenueSettings) =>
      ok({ apiUrl: v.projectxApi || "https://api.topstepx.com", account: v.projectxAccount ?? "", accounts: ["50K-1"], millis: 9, live: true }),
    );
    render(
      <SettingsScreen
        backend={fakeBackend({
          settings: async () => ok({ startAtLogin: false, logLevel: "info", venue: venueSettings() }),
          saveSettings,
          saveProjectxKey,
          testProjectxConnection,
        })}
      />,
    );
    await flush();
    fireEvent.click(input("projectx"));
    expect(screen.getByTestId("projectx-live-warning")).toBeTruthy();
    type("projectx-api", "http://example.com");
    expect(screen.getByTestId("venue-projectx-api-error")).toBeTruthy();
    type("projectx-api", "");
    type("projectx-user", "trader");
    type("projectx-account", "50K-1");
    type("projectx-key", "k-123");
    await act(async () => fireEvent.click(screen.getByTestId("projectx-store-key")));
    expect(saveProjectxKey).toHaveBeenCalledWith("trader", "k-123");
    expect(input("projectx-key").value).toBe("");
    await act(async () => fireEvent.click(screen.getByTestId("projectx-test")));
    expect(screen.getByTestId("projectx-test-status").textContent).toContain("50K-1");
    await act(async () => fireEvent.click(screen.getByTestId("save-settings")));
    const saved = saveSettings.mock.calls[0][0];
    expect(saved.venue).toEqual(venueSettings({ kind: "projectx", projectxUser: "trader", projectxAccount: "50K-1" }));
    expect(JSON.stringify(saved)).not.toContain("k-123");
    expect(validateProjectx(form({ projectxUser: "", projectxAccount: "" }))).toHaveProperty("projectxUser");
  });
});

describe("Settings → Venue → Simulated demo", () => {
  it("chooses the futures demo and says it applies at the next start", async () => {
    const saveSettings = vi.fn(async (s: Settings) => ok(s));
    render(
      <SettingsScreen
        backend={fakeBackend({ settings: async () => ok({ startAtLogin: false, logLevel: "info", venue: venueSettings() }), saveSettings })}
      />,
    );
    await flush();
    expect(screen.getByTestId("sim-demo-options").getAttribute("aria-pressed")).toBe("true");
    fireEvent.click(screen.getByTestId("sim-demo-futures"));
    await act(async () => fireEvent.click(screen.getByTestId("save-settings")));
    expect(saveSettings.mock.calls[0][0].venue).toEqual(venueSettings({ simDemo: "futures" }));
    expect(screen.getByTestId("settings-saved").textContent).toContain("Restart Tradeguard to switch venue");
  });
});
