// The UI's one door to the Rust backend. Components receive a `Backend` so tests can pass a fake.
import { commands, events, type AlertView, type AppStatus, type GuardView, type IpcError, type PortfolioView } from "./bindings";

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
  guardStatus(): Promise<Result<GuardView>>;
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
  guardStatus: () => commands.guardStatus(),
};
