// Test helper: a Backend whose every call answers something harmless, with overrides per test.
import type { Backend, Result } from "../backend";
import type { GuardView, IpcError, RulesFile } from "../bindings";

export const ipcError = (code: IpcError["code"], reason: string, message: string): IpcError => ({ code, reason, message });

export const fail = <T>(code: IpcError["code"], reason: string, message: string): Result<T> => ({
  status: "error",
  error: ipcError(code, reason, message),
});

export const ok = <T>(data: T): Result<T> => ({ status: "ok", data });

export const guardView = (over: Partial<GuardView> = {}): GuardView => ({
  rulesPath: "/home/t/.config/tradeguard/risk.toml",
  dryRun: false,
  rules: 3,
  rulesEvaluated: 0,
  decisionsFired: 0,
  dryRunDecisions: 0,
  lastReconciliation: null,
  lastReconciliationRepairs: 0,
  needsManualAction: 0,
  forcedUnwind: [],
  tasks: [],
  protections: [],
  emergencyCloses: [],
  ...over,
});

export const rulesFile = (over: Partial<RulesFile> = {}): RulesFile => ({
  path: "/home/t/.config/tradeguard/risk.toml",
  text: "dry_run = false\n",
  valid: true,
  problems: [],
  dryRun: false,
  rules: 0,
  ...over,
});

const noop = async () => () => {};

export function fakeBackend(over: Partial<Backend> = {}): Backend {
  return {
    appStatus: async () => fail("unavailable", "engine.starting", "engine not ready"),
    portfolio: async () => fail("unavailable", "venue.connecting", "still connecting to the venue"),
    onHeartbeat: noop,
    onPortfolio: noop,
    alerts: async () => ok([]),
    acknowledgeAlert: async () => ok([]),
    onAlerts: noop,
    simForceAssignment: async () => ok(null),
    guardStatus: async () => fail("unavailable", "venue.connecting", "starting"),
    locations: async () =>
      ok({ dataDir: "/d", configDir: "/c", logDir: "/l", source: "platform" }),
    settings: async () => ok({ startAtLogin: false, logLevel: "info" }),
    saveSettings: async (s) => ok(s),
    openLogsFolder: async () => ok(null),
    exportDiagnostics: async () => ok("/d/diagnostics.txt"),
    quitApp: async () => ok(null),
    onShellRequest: noop,
    auditLog: async () => ok({ rows: [], kinds: [], total: 0, truncated: false }),
    exportAuditCsv: async () => ok("/d/audit.csv"),
    rulesFile: async () => ok(rulesFile()),
    checkRules: async (text) => ok(rulesFile({ text })),
    saveRules: async (text) => ok(rulesFile({ text })),
    ...over,
  };
}
