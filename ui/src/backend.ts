// The UI's one door to the Rust backend. Components receive a `Backend` so tests can pass a fake.
import {
  commands,
  events,
  type AlertChannels,
  type ChannelForm,
  type AlertView,
  type AppPaths,
  type AppStatus,
  type AssignmentChoiceInput,
  type AssignmentPlanView,
  type AuditFilter,
  type AuditPage,
  type Blotter,
  type ConnectionTest,
  type MarginSample,
  type StrategyDetail,
  type VenueSettings,
  type EntryPlacedView,
  type EntryPreviewView,
  type OptionChainView,
  type TicketInput,
  type FlattenPreviewView,
  type FlattenProgressView,
  type FlattenTarget,
  type FlattenTicketView,
  type GuardView,
  type IpcError,
  type PortfolioView,
  type RulesFile,
  type RulesSave,
  type Settings,
  type ShellRequestKind,
  type StrategyRow,
  type VenueTest,
  type VenueWaiting,
} from "./bindings";

export type Result<T> = { status: "ok"; data: T } | { status: "error"; error: IpcError };
export type Unlisten = () => void;

export interface Backend {
  appStatus(): Promise<Result<AppStatus>>;
  portfolio(): Promise<Result<PortfolioView>>;
  onHeartbeat(cb: (uptimeSecs: number | null) => void): Promise<Unlisten>;
  onPortfolio(cb: (view: PortfolioView) => void): Promise<Unlisten>;
  alerts(): Promise<Result<AlertView[]>>;
  acknowledgeAlert(id: number): Promise<Result<AlertView[]>>;
  onAlerts(cb: (alerts: AlertView[]) => void): Promise<Unlisten>;
  simForceAssignment(instrumentId: string, contracts: number): Promise<Result<null>>;
  /** Simulator only: moves an underlying's price by `bps` basis points now; answers the new price. */
  simMoveMarket(symbol: string, bps: number): Promise<Result<string>>;
  guardStatus(): Promise<Result<GuardView>>;
  /** Lifts the lock on opening orders a fired loss limit left; closes are never locked. */
  unlockTrading(): Promise<Result<GuardView>>;
  /** Data, config and log directories of this run, and what chose them. */
  locations(): Promise<Result<AppPaths>>;
  /** Settings → Alerts: the off-desk channels, their state and the latest deliveries. */
  alertChannels(): Promise<Result<AlertChannels>>;
  /** Adds or replaces a channel; `secret` (when not empty) goes to the OS keychain. */
  saveAlertChannel(form: ChannelForm, previous: string | null, secret: string | null): Promise<Result<AlertChannels>>;
  deleteAlertChannel(name: string): Promise<Result<AlertChannels>>;
  /** Sends a test message now; the error is the server's answer. */
  testAlertChannel(name: string): Promise<Result<AlertChannels>>;
  settings(): Promise<Result<Settings>>;
  /** Saves and applies "start at login" now; the log level applies at the next start. */
  saveSettings(settings: Settings): Promise<Result<Settings>>;
  openLogsFolder(): Promise<Result<null>>;
  /** Writes a diagnostics file; answers its path. */
  exportDiagnostics(): Promise<Result<string>>;
  /** Stops the guard and quits. Only after a person confirmed. */
  quitApp(): Promise<Result<null>>;
  /** The tray asks the UI for something that needs a person (confirm a quit, flatten all). */
  onShellRequest(cb: (kind: ShellRequestKind) => void): Promise<Unlisten>;
  onVenueWaiting(cb: (w: VenueWaiting) => void): Promise<Unlisten>;
  retryVenueConnect(): Promise<Result<null>>;
  /** The strategies the guard protects, Broken ones included. */
  strategies(): Promise<Result<StrategyRow[]>>;
  /** Step one of a flatten: what it would send. Sends nothing. */
  previewFlatten(target: FlattenTarget): Promise<Result<FlattenPreviewView>>;
  /** Step one of switching an account's forced unwind on or off. */
  previewForcedUnwind(account: string, on: boolean): Promise<Result<FlattenPreviewView>>;
  /** Step two: executes a valid, unexpired, unused preview (only after a person confirmed it). */
  confirmFlatten(previewId: string): Promise<Result<FlattenTicketView>>;
  /** How far a confirmed flatten got; poll until `finished`. */
  flattenProgress(ticket: string): Promise<Result<FlattenProgressView>>;
  /** The venue's chain of `underlying` at `expiry` ("" = the first listed), live quotes, IV and delta. */
  optionChain(underlying: string, expiry: string, strikes: number): Promise<Result<OptionChainView>>;
  /** Step one of opening a strategy: what the ticket would do. Sends nothing. */
  previewEntry(ticket: TicketInput): Promise<Result<EntryPreviewView>>;
  /** Step two: places a valid, unexpired, unused preview (only after a person confirmed it). */
  placeEntry(previewId: string): Promise<Result<EntryPlacedView>>;
  /** The newest audit entries matching `filter` (newest first), the kinds there are and the total. */
  auditLog(filter: AuditFilter): Promise<Result<AuditPage>>;
  /** Writes every entry matching `filter` to a CSV file; answers its path. */
  exportAuditCsv(filter: AuditFilter): Promise<Result<string>>;
  /** The risk rules file: where it lives, its text and its validation. */
  rulesFile(): Promise<Result<RulesFile>>;
  /** Validates `text` without saving (inline validation while editing). */
  checkRules(text: string): Promise<Result<RulesFile>>;
  /**
   * Saves valid rules (they apply without restart); invalid text is refused and nothing is written. A text that
   * turns the global dry-run off is not written: the answer is a go-live preview, and saving the same text again
   * with `confirm` = its id writes it.
   */
  saveRules(text: string, confirm: string | null): Promise<Result<RulesSave>>;
  /** Strategies pushed with every portfolio update (same throttle). */
  onStrategies(cb: (rows: StrategyRow[]) => void): Promise<Unlisten>;
  /** Legs, Greeks, payoff, stress grid against the margin buffer, rule distances of one strategy. */
  strategyDetail(strategyId: string): Promise<Result<StrategyDetail>>;
  setAssignmentChoice(choice: AssignmentChoiceInput): Promise<Result<AssignmentPlanView>>;
  /** Order groups (legs, fills, cancels), managed stops and the day's executions. */
  blotter(): Promise<Result<Blotter>>;
  /** Margin use per account since the app started (one sample a second), oldest first. */
  marginHistory(): Promise<Result<MarginSample[]>>;
  /** Connects to IB Gateway/TWS with these settings, reports the account, disconnects. Saves nothing. */
  testIbConnection(venue: VenueSettings): Promise<Result<ConnectionTest>>;
  /** Stores a Tradier access token in the OS keychain (never returned). */
  saveTradierToken(account: string, token: string): Promise<Result<null>>;
  /** Whether a Tradier token is stored for the account. */
  tradierTokenStored(account: string): Promise<Result<boolean>>;
  /** Reads the token's accounts with the stored token. Saves nothing. */
  testTradierConnection(venue: VenueSettings): Promise<Result<VenueTest>>;
  /** Stores a ProjectX API key in the OS keychain (never returned). */
  saveProjectxKey(user: string, key: string): Promise<Result<null>>;
  /** Whether a ProjectX API key is stored for the user. */
  projectxKeyStored(user: string): Promise<Result<boolean>>;
  /** Logs in with the stored API key and lists the user's accounts. Saves nothing. */
  testProjectxConnection(venue: VenueSettings): Promise<Result<VenueTest>>;
}

/** The error a rejected invoke carries: an `IpcError` from Rust, or anything else from the bridge. */
export function toIpcError(e: unknown): IpcError {
  if (e && typeof e === "object" && "code" in e && "message" in e && "reason" in e) return e as IpcError;
  return { code: "internal", reason: "ui.invoke", message: `Backend unreachable: ${String(e)}` };
}

/** Runs a backend call; a rejection (the bridge itself failed) becomes an error result to show. */
export async function attempt<T>(call: () => Promise<Result<T>>): Promise<Result<T>> {
  try {
    return await call();
  } catch (e) {
    return { status: "error", error: toIpcError(e) };
  }
}

/** Commands generated without a typed error (they reject instead) answer a `Result` like the rest. */
async function settle<T>(call: () => Promise<T>): Promise<Result<T>> {
  try {
    return { status: "ok", data: await call() };
  } catch (e) {
    return { status: "error", error: toIpcError(e) };
  }
}

export const tauriBackend: Backend = {
  appStatus: () => commands.appStatus(),
  portfolio: () => commands.portfolio(),
  onHeartbeat: (cb) => events.backendHeartbeat.listen((e) => cb(e.payload.uptimeSecs)),
  onPortfolio: (cb) => events.portfolioChanged.listen((e) => cb(e.payload)),
  alerts: () => commands.alerts(),
  acknowledgeAlert: (id) => commands.acknowledgeAlert({ id }),
  onAlerts: (cb) => events.alertsChanged.listen((e) => cb(e.payload)),
  simForceAssignment: (instrumentId, contracts) => commands.simForceAssignment({ instrumentId, contracts }),
  simMoveMarket: (symbol, bps) => commands.simMoveMarket(symbol, bps),
  guardStatus: () => commands.guardStatus(),
  unlockTrading: () => commands.unlockTrading(),
  locations: () => settle(() => commands.locations()),
  alertChannels: () => commands.alertChannels(),
  saveAlertChannel: (form, previous, secret) => commands.saveAlertChannel(form, previous, secret),
  deleteAlertChannel: (name) => commands.deleteAlertChannel(name),
  testAlertChannel: (name) => commands.testAlertChannel(name),
  settings: () => commands.settings(),
  saveSettings: (settings) => commands.saveSettings(settings),
  openLogsFolder: () => commands.openLogsFolder(),
  exportDiagnostics: () => commands.exportDiagnostics(),
  quitApp: () => settle(async () => (await commands.quitApp(), null)),
  onShellRequest: (cb) => events.shellRequest.listen((e) => cb(e.payload.kind)),
  onVenueWaiting: (cb) => events.venueWaiting.listen((e) => cb(e.payload)),
  retryVenueConnect: () => commands.retryVenueConnect(),
  strategies: () => commands.strategies(),
  previewFlatten: (target) => commands.previewFlatten(target),
  previewForcedUnwind: (account, on) => commands.previewForcedUnwind(account, on),
  confirmFlatten: (previewId) => commands.confirmFlatten(previewId),
  flattenProgress: (ticket) => commands.flattenProgress(ticket),
  optionChain: (underlying, expiry, strikes) => commands.optionChain(underlying, expiry, strikes),
  previewEntry: (ticket) => commands.previewEntry(ticket),
  placeEntry: (previewId) => commands.placeEntry(previewId),
  auditLog: (filter) => commands.auditLog(filter),
  exportAuditCsv: (filter) => commands.exportAuditCsv(filter),
  rulesFile: () => commands.rulesFile(),
  checkRules: (text) => settle(() => commands.checkRules(text)),
  saveRules: (text, confirm) => commands.saveRules(text, confirm),
  onStrategies: (cb) => events.strategiesChanged.listen((e) => cb(e.payload)),
  strategyDetail: (strategyId) => commands.strategyDetail(strategyId),
  setAssignmentChoice: (choice) => commands.setAssignmentChoice(choice),
  blotter: () => commands.blotter(),
  marginHistory: () => commands.marginHistory(),
  testIbConnection: (venue) => commands.testIbConnection(venue),
  saveTradierToken: (account, token) => commands.saveTradierToken(account, token),
  tradierTokenStored: (account) => commands.tradierTokenStored(account),
  testTradierConnection: (venue) => commands.testTradierConnection(venue),
  saveProjectxKey: (user, key) => commands.saveProjectxKey(user, key),
  projectxKeyStored: (user) => commands.projectxKeyStored(user),
  testProjectxConnection: (venue) => commands.testProjectxConnection(venue),
};
