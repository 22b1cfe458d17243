import { useCallback, useEffect, useState } from "react";
import type { Backend } from "./backend";
import type { AlertView } from "./bindings";
import { AlertsPanel } from "./Alerts";
import { EmergencyCloses } from "./EmergencyCloses";
import { FlattenAllRequest } from "./FlattenAllRequest";
import { FlattenDialog, type FlattenRequest } from "./FlattenDialog";
import { GuardPanel, useGuardView } from "./Guard";
import { PortfolioPanel, usePortfolio } from "./Portfolio";
import { perfProbe } from "./perfProbe";
import { StrategiesPanel, useStrategies } from "./Strategies";
import { StrategyDetailScreen } from "./StrategyDetail";

export function Dashboard({
  backend,
  alerts,
  flattenAllRequested,
  onDismissFlattenAll,
  alertsRequested = 0,
}: {
  backend: Backend;
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
          <PortfolioPanel backend={backend} portfolio={portfolio} />
          <GuardPanel view={guard.view} error={guard.error} backend={backend} />
          <AlertsPanel alerts={alerts} />
        </>
      )}
    </>
  );
}
