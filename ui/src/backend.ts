// The UI's one door to the Rust backend. Components receive a `Backend` so tests can pass a fake.
import { commands, events, type AppStatus, type IpcError } from "./bindings";

export type Result<T> = { status: "ok"; data: T } | { status: "error"; error: IpcError };

export interface Backend {
  appStatus(): Promise<Result<AppStatus>>;
  onHeartbeat(cb: (uptimeSecs: number | null) => void): Promise<() => void>;
}

export const tauriBackend: Backend = {
  appStatus: () => commands.appStatus(),
  onHeartbeat: (cb) => events.backendHeartbeat.listen((e) => cb(e.payload.uptimeSecs)),
};
