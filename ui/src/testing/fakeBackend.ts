// Test helper: a Backend whose every call answers something harmless, with overrides per test.
import type { Backend, Result } from "../backend";
import type {
  AccountView,
  FlattenOrderView,
  FlattenPreviewView,
  FlattenProgressView,
  FlattenTicketView,
  GuardView,
  IpcError,
  OrderProgressView,
  PortfolioView,
  StrategyLegRow,
  StrategyRow,
  RulesFile,
  VenueSettings,
} from "../bindings";

export const ipcError = (code: IpcError["code"], reason: string, message: string): IpcError => ({ code, reason, message });

export const fail = <T>(code: IpcError["code"], reason: string, message: string): Result<T> => ({
  status: "error",
  error: ipcError(code, reason, message),
});

export const ok = <T>(data: T): Result<T> => ({ status: "ok", data });

export const guardView = (over: Partial<GuardView> = {}): GuardView => ({
  rulesPath: "/home/t/.config/tradeguard/risk.toml",
  dryRun: false,
  sentInDryRun: ["emergency closes of strategies an assignment broke"],
  rules: 3,
  rulesEvaluated: 0,
  decisionsFired: 0,
  dryRunDecisions: 0,
  lastReconciliation: null,
  lastReconciliationRepairs: 0,
  needsManualAction: 0,
  forcedUnwind: [],
  tradingState: "active",
  tradingWhy: "",
  tasks: [],
  protections: [],
  emergencyCloses: [],
  ...over,
});

export const account = (name: string, over: Partial<AccountView> = {}): AccountView => ({
  account: name,
  netLiquidation: "100000.00",
  maintenanceMargin: "20000.00",
  excessLiquidity: "80000.00",
  buyingPower: "300000.00",
  ...over,
});

export const portfolioView = (accounts: string[] = ["DU1"], over: Partial<PortfolioView> = {}): PortfolioView => ({
  venue: "sim",
  connection: { state: "connected" },
  venueTime: "2025-03-04T15:00:00Z",
  accounts: accounts.map((a) => account(a)),
  positions: [],
  eventsApplied: 0,
  simActions: true,
  ...over,
});

export const leg = (over: Partial<StrategyLegRow> = {}): StrategyLegRow => ({
  label: "SPY 21MAR25 540 P",
  qty: 1,
  avgPrice: "1.10",
  mark: "0.80",
  pnl: "-30.00",
  delta: -0.08,
  ...over,
});

export const strategy = (over: Partial<StrategyRow> = {}): StrategyRow => ({
  id: "18446744073709551615",
  account: "DU1",
  name: "SPY iron condor 540/550/600/610",
  kind: "iron_condor",
  badge: "open",
  broken: false,
  recognized: true,
  entryCredit: "310.00",
  pnl: "45.00",
  legs: [leg()],
  exits: [],
  ...over,
});

export const flattenOrder = (over: Partial<FlattenOrderView> = {}): FlattenOrderView => ({
  step: 1,
  side: "BUY",
  qty: 1,
  label: "SPY 21MAR25 550 P",
  orderType: "limit 1.25",
  price: "1.25",
  priceSide: "ask",
  quoteAgeSecs: 1,
  staleQuote: false,
  cash: "-125.00",
  childOrders: 1,
  maxChildQty: null,
  gateRefusal: null,
  ...over,
});

export const preview = (over: Partial<FlattenPreviewView> = {}): FlattenPreviewView => ({
  id: "9007199254740993",
  title: "Flatten SPY iron condor 540/550/600/610",
  account: "DU1",
  emergency: false,
  orders: [flattenOrder()],
  excluded: [],
  estimatedCash: "-125.00",
  estimateComplete: true,
  warnings: [],
  willSend: true,
  armedUntil: null,
  expiresInSecs: 30,
  ...over,
});

export const ticket = (over: Partial<FlattenTicketView> = {}): FlattenTicketView => ({
  id: "t-1",
  previewId: "9007199254740993",
  dryRun: false,
  armedUntil: null,
  orders: [flattenOrder()],
  ...over,
});

export const orderProgress = (over: Partial<OrderProgressView> = {}): OrderProgressView => ({
  side: "BUY",
  qty: 1,
  filled: 0,
  label: "SPY 21MAR25 550 P",
  state: "sent",
  reason: null,
  ...over,
});

export const progress = (over: Partial<FlattenProgressView> = {}): FlattenProgressView => ({
  ticket: "t-1",
  status: "working",
  detail: null,
  finished: false,
  orders: [orderProgress()],
  sent: 1,
  filled: 0,
  failed: 0,
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

export const venueSettings = (over: Partial<VenueSettings> = {}): VenueSettings => ({
  kind: "sim",
  simDemo: "options",
  ibHost: "127.0.0.1",
  ibPort: 4002,
  ibClientId: 1,
  ibAccount: "",
  tradierAccount: "",
  tradierEnv: "sandbox",
  tradierUrl: "",
  projectxUser: "",
  projectxAccount: "",
  projectxApi: "",
  projectxRtc: "",
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
    simMoveMarket: async () => ok("485.00"),
    guardStatus: async () => fail("unavailable", "venue.connecting", "starting"),
    unlockTrading: async () => fail("unavailable", "venue.connecting", "starting"),
    locations: async () =>
      ok({ dataDir: "/d", configDir: "/c", logDir: "/l", source: "platform" }),
    settings: async () => ok({ startAtLogin: false, logLevel: "info", venue: venueSettings() }),
    saveSettings: async (s) => ok(s),
    alertChannels: async () => ok({ file: "/c/alerts.toml", fileError: null, channels: [], deliveries: [] }),
    saveAlertChannel: async () => fail("unavailable", "venue.connecting", "starting"),
    deleteAlertChannel: async () => fail("unavailable", "venue.connecting", "starting"),
    testAlertChannel: async () => fail("unavailable", "venue.connecting", "starting"),
    openLogsFolder: async () => ok(null),
    exportDiagnostics: async () => ok("/d/diagnostics.txt"),
    quitApp: async () => ok(null),
    onShellRequest: noop,
    strategies: async () => ok([]),
    previewFlatten: async () => fail("unavailable", "venue.connecting", "still connecting to the venue"),
    optionChain: async () => fail("unavailable", "venue.connecting", "still connecting to the venue"),
    previewEntry: async () => fail("unavailable", "venue.connecting", "still connecting to the venue"),
    placeEntry: async () => fail("invalid_input", "entry.expired_preview", "the preview expired"),
    previewForcedUnwind: async () => fail("unavailable", "venue.connecting", "still connecting to the venue"),
    confirmFlatten: async () => fail("invalid_input", "flatten.expired_preview", "the preview expired"),
    flattenProgress: async () => fail("not_found", "flatten.unknown_ticket", "no such ticket"),
    auditLog: async () => ok({ rows: [], kinds: [], total: 0, truncated: false }),
    exportAuditCsv: async () => ok("/d/audit.csv"),
    rulesFile: async () => ok(rulesFile()),
    checkRules: async (text) => ok(rulesFile({ text })),
    saveRules: async (text) => ok({ outcome: "saved", file: rulesFile({ text }) }),
    onStrategies: noop,
    strategyDetail: async () => fail("unavailable", "venue.connecting", "still connecting to the venue"),
    setAssignmentChoice: async () => fail("unavailable", "venue.connecting", "still connecting to the venue"),
    onVenueWaiting: async () => () => {},
    retryVenueConnect: async () => ok(null),
    blotter: async () => ok({ groups: [], stops: [], executions: [], executionsError: null }),
    marginHistory: async () => ok([]),
    testIbConnection: async () => fail("unavailable", "ib.not_connected", "127.0.0.1:4002: connection refused"),
    saveTradierToken: async () => ok(null),
    tradierTokenStored: async () => ok(false),
    testTradierConnection: async () => fail("unavailable", "tradier.unauthorized", "Tradier refused the token (401)"),
    saveProjectxKey: async () => ok(null),
    projectxKeyStored: async () => ok(false),
    testProjectxConnection: async () => fail("unavailable", "projectx.unauthorized", "ProjectX refused the login"),
    ...over,
  };
}
