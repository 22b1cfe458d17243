import { useCallback, useEffect, useState } from "react";
import { AuditScreen } from "./AuditScreen";
import { attempt, type Backend } from "./backend";
import { CriticalBanner, useAlerts } from "./Alerts";
import type { AppStatus, IpcError, ShellRequestKind } from "./bindings";
import type { BackendHealth } from "./About";
import { Dashboard } from "./Dashboard";
import { OrdersScreen } from "./Orders";
import "./nav.css";
import { QuitDialog } from "./QuitDialog";
import { RulesScreen } from "./RulesScreen";
import { SettingsScreen } from "./Settings";
import { TradeScreen } from "./Trade";
import { useSubscription } from "./useSubscription";

export { formatUptime } from "./About";

/** The screens in tab order. A new screen is one entry here and one case in `App`. */
export const SCREENS = [
  { id: "dashboard", label: "Dashboard" },
  { id: "trade", label: "Trade" },
  { id: "orders", label: "Orders" },
  { id: "rules", label: "Rules" },
  { id: "audit", label: "Audit log" },
  { id: "settings", label: "Settings" },
] as const;
export type Screen = (typeof SCREENS)[number]["id"];

function NavBar({
  screen,
  unsaved,
  onSelect,
}: {
  screen: Screen;
  /** Screens holding an edit that is not saved yet (marked on their tab). */
  unsaved: ReadonlySet<Screen>;
  onSelect: (s: Screen) => void;
}) {
  return (
    <nav className="nav" aria-label="Screens">
      {SCREENS.map((s) => (
        <button
          key={s.id}
          type="button"
          className={s.id === screen ? "nav-item current" : "nav-item"}
          aria-current={s.id === screen ? "page" : undefined}
          title={unsaved.has(s.id) ? `${s.label}: unsaved changes` : undefined}
          data-testid={`nav-${s.id}`}
          onClick={() => onSelect(s.id)}
        >
          {s.label}
          {unsaved.has(s.id) && (
            <span className="unsaved-mark" data-testid={`nav-${s.id}-unsaved`}>
              <span aria-hidden="true">●</span>
              <span className="sr-only">(unsaved changes)</span>
            </span>
          )}
        </button>
      ))}
    </nav>
  );
}

/** The backend's status (header and Settings' About card) and its live heartbeat. */
function useBackendHealth(backend: Backend): BackendHealth {
  const [status, setStatus] = useState<AppStatus | null>(null);
  const [error, setError] = useState<IpcError | null>(null);
  const [heartbeat, setHeartbeat] = useState<number | null | undefined>(undefined);
  const [busy, setBusy] = useState(false);

  const refresh = useCallback(async () => {
    setBusy(true);
    const res = await attempt(() => backend.appStatus());
    setBusy(false);
    if (res.status === "ok") {
      setStatus(res.data);
      setError(null);
    } else {
      setError(res.error);
    }
  }, [backend]);
  useEffect(() => {
    void refresh();
  }, [refresh]);

  const subscribe = useCallback(() => backend.onHeartbeat((s) => setHeartbeat(s)), [backend]);
  const onError = useCallback(() => setHeartbeat(undefined), []);
  useSubscription(subscribe, onError);
  return { status, error, busy, heartbeat, refresh: () => void refresh() };
}

export function App({ backend }: { backend: Backend }) {
  const [screen, setScreen] = useState<Screen>("dashboard");
  const [quitOpen, setQuitOpen] = useState(false);
  const [flattenAll, setFlattenAll] = useState(false);
  const [showAlerts, setShowAlerts] = useState(0);
  // The Rules editor's unsaved text (null: nothing unsaved). Lives here so a tab switch keeps it.
  const [rulesDraft, setRulesDraft] = useState<string | null>(null);
  const health = useBackendHealth(backend);
  const alerts = useAlerts(backend);

  const onShellRequest = useCallback((kind: ShellRequestKind) => {
    if (kind === "confirmQuit") {
      setQuitOpen(true);
    } else if (kind === "flattenAll") {
      setScreen("dashboard");
      setFlattenAll(true);
    } else if (kind === "showAlerts") {
      // A notification was clicked: the alerts, wherever the person was.
      setScreen("dashboard");
      setShowAlerts((n) => n + 1);
    }
  }, []);
  useEffect(() => {
    // After the dashboard left a detail screen (it renders first), the list is there to scroll to.
    if (showAlerts === 0) return;
    const t = setTimeout(() => document.querySelector('[data-testid="alert-list"]')?.scrollIntoView?.({ block: "start" }), 0);
    return () => clearTimeout(t);
  }, [showAlerts]);
  const subscribeShell = useCallback(() => backend.onShellRequest(onShellRequest), [backend, onShellRequest]);
  const onShellError = useCallback((e: unknown) => console.error("shell requests unavailable", e), []);
  useSubscription(subscribeShell, onShellError);
  const closeQuit = useCallback(() => setQuitOpen(false), []);

  return (
    <>
      <main className="app" inert={quitOpen}>
        <CriticalBanner alerts={alerts.alerts} error={alerts.error} onAcknowledge={(id) => void alerts.acknowledge(id)} />
        <header className="topbar">
          <h1 data-testid="app-name">{health.status?.appName ?? "Tradeguard"}</h1>
          <span className="version" data-testid="app-version">
            {health.status ? `v${health.status.version}` : ""}
          </span>
          <NavBar screen={screen} unsaved={new Set<Screen>(rulesDraft !== null ? ["rules"] : [])} onSelect={setScreen} />
        </header>
        {screen === "dashboard" && (
          <Dashboard
            backend={backend}
            alerts={alerts.alerts}
            flattenAllRequested={flattenAll}
            onDismissFlattenAll={() => setFlattenAll(false)}
            alertsRequested={showAlerts}
          />
        )}
        {screen === "trade" && <TradeScreen backend={backend} />}
        {screen === "orders" && <OrdersScreen backend={backend} />}
        {screen === "rules" && <RulesScreen backend={backend} draft={rulesDraft} onDraftChange={setRulesDraft} />}
        {screen === "audit" && <AuditScreen backend={backend} />}
        {screen === "settings" && <SettingsScreen backend={backend} health={health} />}
      </main>
      {quitOpen && <QuitDialog backend={backend} onClose={closeQuit} />}
    </>
  );
}
