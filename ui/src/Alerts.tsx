import { useCallback, useEffect, useMemo, useState } from "react";
import type { Backend } from "./backend";
import type { AlertView, IpcError, SeverityView } from "./bindings";
import { useSubscription } from "./useSubscription";
import { formatLocalDateTime, localZone } from "./format";

const RANK: Record<SeverityView, number> = { critical: 0, warning: 1, info: 2 };

export function isAssignment(a: AlertView): boolean {
  return a.code.startsWith("assignment.");
}

/** Assignment alerts first, then by severity, then newest first. */
export function sortAlerts(list: AlertView[]): AlertView[] {
  return [...list].sort(
    (a, b) =>
      Number(isAssignment(b)) - Number(isAssignment(a)) ||
      RANK[a.severity] - RANK[b.severity] ||
      b.createdAt.localeCompare(a.createdAt) ||
      b.id - a.id,
  );
}

/** Loads the alert list, follows pushes, and acknowledges. Shared by the banner and the panel. */
export function useAlerts(backend: Backend) {
  const [alerts, setAlerts] = useState<AlertView[]>([]);
  const [error, setError] = useState<IpcError | null>(null);

  useEffect(() => {
    let live = true;
    backend.alerts().then((res) => {
      if (!live) return;
      if (res.status === "ok") setAlerts(res.data);
      else setError(res.error);
    });
    return () => {
      live = false;
    };
  }, [backend]);

  const subscribe = useCallback(() => backend.onAlerts(setAlerts), [backend]);
  const onSubscribeError = useCallback(
    (e: unknown) => setError({ code: "internal", reason: "ui.subscribe", message: String(e) }),
    [],
  );
  useSubscription(subscribe, onSubscribeError);

  const acknowledge = useCallback(
    async (id: number) => {
      const res = await backend.acknowledgeAlert(id);
      if (res.status === "ok") {
        setAlerts(res.data);
        setError(null);
      } else {
        setError(res.error);
      }
    },
    [backend],
  );
  return { alerts, error, acknowledge };
}

/** Critical, unacknowledged alerts: shown on every screen until a person acknowledges them. */
export function CriticalBanner({
  alerts,
  error,
  onAcknowledge,
}: {
  alerts: AlertView[];
  error: IpcError | null;
  onAcknowledge: (id: number) => void;
}) {
  const open = sortAlerts(alerts.filter((a) => a.severity === "critical" && a.acknowledgedAt === null));
  if (open.length === 0 && !error) return null;
  return (
    <div className="banner" role="alert" data-testid="critical-banner">
      {open.map((a) => (
        <div className="banner-row" key={a.id} data-testid="critical-alert">
          <strong>{isAssignment(a) ? "ASSIGNMENT" : "CRITICAL"}</strong>
          <span className="banner-text">{a.message}</span>
          <button type="button" data-testid={`ack-${a.id}`} onClick={() => onAcknowledge(a.id)}>
            Acknowledge
          </button>
        </div>
      ))}
      {error && (
        <div className="banner-row" data-testid="alerts-error">
          Alerts unavailable: {error.message} <code>{error.reason}</code>
        </div>
      )}
    </div>
  );
}

type Filter = "all" | SeverityView | "unacknowledged";

export function AlertsPanel({ alerts }: { alerts: AlertView[] }) {
  const [filter, setFilter] = useState<Filter>("all");
  const shown = useMemo(
    () =>
      sortAlerts(
        alerts.filter((a) =>
          filter === "all" ? true : filter === "unacknowledged" ? a.acknowledgedAt === null : a.severity === filter,
        ),
      ),
    [alerts, filter],
  );
  return (
    <section className="card wide" aria-labelledby="alerts-title">
      <div className="row-between">
        <h2 id="alerts-title">Alerts</h2>
        <label className="muted">
          Show{" "}
          <select value={filter} onChange={(e) => setFilter(e.target.value as Filter)} data-testid="alert-filter">
            <option value="all">all</option>
            <option value="unacknowledged">unacknowledged</option>
            <option value="critical">critical</option>
            <option value="warning">warning</option>
            <option value="info">info</option>
          </select>
        </label>
      </div>
      {shown.length === 0 ? (
        <p className="muted">No alerts.</p>
      ) : (
        <ul className="alert-list" data-testid="alert-list">
          {shown.map((a) => (
            <li key={a.id} className={`alert ${a.severity}`} data-testid="alert-item">
              <span className={`badge ${a.severity}`}>{a.severity}</span>
              <span>{a.message}</span>
              <span className="muted">
                {formatLocalDateTime(a.createdAt)} {localZone()}
                {a.acknowledgedAt ? " · acknowledged" : ""}
              </span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
