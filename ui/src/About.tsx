import type { AppStatus, IpcError } from "./bindings";
import { ErrorNote } from "./ErrorNote";

export function formatUptime(secs: number | null): string {
  if (secs === null || !Number.isFinite(secs) || secs < 0) return "—";
  if (secs < 60) return `${secs.toFixed(1)} s`;
  const m = Math.floor(secs / 60);
  const s = Math.floor(secs % 60);
  if (m < 60) return `${m} min ${s} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export interface BackendHealth {
  status: AppStatus | null;
  error: IpcError | null;
  busy: boolean;
  /** Seconds of uptime from the last heartbeat; `undefined` until one arrives. */
  heartbeat: number | null | undefined;
  refresh: () => void;
}

export function AboutCard({ health }: { health: BackendHealth }) {
  const { status, error, busy, heartbeat, refresh } = health;
  return (
    <section className="card" aria-labelledby="about-title">
      <h2 id="about-title">About this app</h2>
      <dl className="facts">
        <dt>Uptime</dt>
        <dd data-testid="uptime">{status ? formatUptime(status.uptimeSecs) : "…"}</dd>
        <dt>Requests answered</dt>
        <dd data-testid="requests">{status?.requestsServed ?? "…"}</dd>
        <dt>Live heartbeat</dt>
        <dd data-testid="heartbeat">{heartbeat === undefined ? "waiting…" : formatUptime(heartbeat)}</dd>
      </dl>
      <button type="button" data-testid="refresh-status" onClick={refresh} disabled={busy}>
        {busy ? "Checking…" : "Refresh"}
      </button>
      <ErrorNote error={error} testId="error" />
    </section>
  );
}

