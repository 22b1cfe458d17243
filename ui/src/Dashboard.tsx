import { useCallback, useEffect, useState } from "react";
import type { Backend } from "./backend";
import type { AlertView, AppStatus, IpcError } from "./bindings";
import { AlertsPanel } from "./Alerts";
import { EmergencyCloses } from "./EmergencyCloses";
import { ErrorNote } from "./ErrorNote";
import { FlattenAllRequest } from "./FlattenAllRequest";
import { FlattenDialog, type FlattenRequest } from "./FlattenDialog";
import { GuardPanel, useGuardView } from "./Guard";
import { PortfolioPanel, usePortfolio } from "./Portfolio";
import { perfProbe } from "./perfProbe";
import { StrategiesPanel, useStrategies } from "./Strategies";
import { StrategyDetailScreen } from "./StrategyDetail";

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

function BackendCard({ health }: { health: BackendHealth }) {
  const { status, error, busy, heartbeat, refresh } = health;
  return (
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
      <button type="button" data-testid="refresh-status" onClick={refresh} disabled={busy}>
        {busy ? "Checking…" : "Check backend"}
      </button>
      <ErrorNote error={error} testId="error" />
    </section>
  );
}

export function Dashboard({
  backend,
  health,
  alerts,
  flattenAllRequested,
  onDismissFlattenAll,
  alertsRequested = 0,
}: {
  backend: Backend;
  health: BackendHealth;
  alerts: AlertView[];
  flattenAllRequested: boolean;
  onDismissFlattenAll: () => void;
  /** Counts "show the alerts" requests (a notification was clicked): leave the detail screen. */
  alertsRequested?: number;
}) {
  const guard = useGuardView(backend);
  const portfolio = usePortfolio(backend);
  const strategies = useStrategies(backend);
  const [flatten, setFlatten] = useState<FlattenRequest | null>(null);
  const [detailId, setDetailId] = useState<string | null>(null);
  const closeDetail = useCallback(() => setDetailId(null), []);
  useEffect(() => {
    if (alertsRequested > 0) setDetailId(null);
  }, [alertsRequested]);
  // Frame intervals for the benchmark probe (window.__tradeguardPerf.frames).
  // The benchmark finds the probe on `window` (frames are sampled only when it asks).
  useEffect(() => void perfProbe(), []);
  const accounts = portfolio.view ? portfolio.view.accounts.map((a) => a.account) : null;
  return (
    <>
      {flatten && <FlattenDialog backend={backend} request={flatten} onClose={() => setFlatten(null)} />}
      {flattenAllRequested && !flatten && (
        <FlattenAllRequest backend={backend} accounts={accounts} error={portfolio.error} onClose={onDismissFlattenAll} />
      )}
      <EmergencyCloses closes={guard.view?.emergencyCloses ?? []} />
      {detailId !== null ? (
        <StrategyDetailScreen
          key={detailId}
          backend={backend}
          strategyId={detailId}
          onBack={closeDetail}
          onFlatten={setFlatten}
          escapeGoesBack={!flatten && !flattenAllRequested}
        />
      ) : (
        <>
          <StrategiesPanel
            rows={strategies.rows}
            error={strategies.error}
            accounts={accounts ?? []}
            forcedUnwind={guard.view?.forcedUnwind ?? []}
            onFlatten={setFlatten}
            onDetails={setDetailId}
          />
          <BackendCard health={health} />
          <PortfolioPanel backend={backend} portfolio={portfolio} />
          <GuardPanel view={guard.view} error={guard.error} />
          <AlertsPanel alerts={alerts} />
        </>
      )}
    </>
  );
}
