import { useCallback, useEffect, useState } from "react";
import type { Backend } from "./backend";
import { AlertsPanel, CriticalBanner, useAlerts } from "./Alerts";
import { GuardPanel } from "./Guard";
import { PortfolioPanel } from "./Portfolio";
import { useSubscription } from "./useSubscription";
import type { AppStatus, IpcError } from "./bindings";

export function formatUptime(secs: number | null): string {
  if (secs === null || !Number.isFinite(secs) || secs < 0) return "—";
  if (secs < 60) return `${secs.toFixed(1)} s`;
  const m = Math.floor(secs / 60);
  const s = Math.floor(secs % 60);
  if (m < 60) return `${m} min ${s} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function App({ backend }: { backend: Backend }) {
  const [status, setStatus] = useState<AppStatus | null>(null);
  const [error, setError] = useState<IpcError | null>(null);
  const [heartbeat, setHeartbeat] = useState<number | null | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const alerts = useAlerts(backend);

  const refresh = useCallback(async () => {
    setBusy(true);
    try {
      const res = await backend.appStatus();
      if (res.status === "ok") {
        setStatus(res.data);
        setError(null);
      } else {
        setError(res.error);
      }
    } catch (e) {
      setError({ code: "internal", reason: "ui.invoke", message: `Backend unreachable: ${String(e)}` });
    } finally {
      setBusy(false);
    }
  }, [backend]);

  useEffect(() => {
    void refresh();
  }, [refresh]);
  const subscribeHeartbeat = useCallback(() => backend.onHeartbeat((s) => setHeartbeat(s)), [backend]);
  const onHeartbeatError = useCallback(() => setHeartbeat(undefined), []);
  useSubscription(subscribeHeartbeat, onHeartbeatError);

  return (
    <main className="app">
      <CriticalBanner alerts={alerts.alerts} error={alerts.error} onAcknowledge={(id) => void alerts.acknowledge(id)} />
      <header className="topbar">
        <h1 data-testid="app-name">{status?.appName ?? "Tradeguard"}</h1>
        <span className="version" data-testid="app-version">
          {status ? `v${status.version}` : ""}
        </span>
      </header>
      <section className="card" aria-labelledby="backend-title">
        <h2 id="backend-title">Backend</h2>
        <dl className="facts">
          <dt>Uptime</dt>
          <dd data-testid="uptime">{status ? formatUptime(status.uptimeSecs) : "…"}</dd>
          <dt>Requests answered</dt>
          <dd data-testid="requests">{status?.requestsServed ?? "…"}</dd>
          <dt>Live heartbeat</dt>
          <dd data-testid="heartbeat">{heartbeat === undefined ? "waiting…" : formatUptime(heartbeat)}</dd>
        </dl>
        <button type="button" data-testid="refresh-status" onClick={() => void refresh()} disabled={busy}>
          {busy ? "Checking…" : "Check backend"}
        </button>
        {error && (
          <p role="alert" className="error" data-testid="error">
            {error.message} <code>{error.code}</code>
          </p>
        )}
      </section>
      <PortfolioPanel backend={backend} />
      <GuardPanel backend={backend} />
      <AlertsPanel alerts={alerts.alerts} />
    </main>
  );
}
