import { useEffect, useState } from "react";
import { attempt, type Backend } from "./backend";
import { ConfirmDialog } from "./ConfirmDialog";
import { ErrorNote } from "./ErrorNote";
import type { GuardView, IpcError, TaskView } from "./bindings";
import { formatEtTime } from "./format";

/** Late against the task's own period (the backend sends it; activity-driven tasks have none). */
export function taskHealth(t: TaskView): "ok" | "late" | "down" {
  if (!t.running) return "down";
  if (t.lateAfterSecs === null) return "ok";
  if (t.sinceLastSecs === null || t.sinceLastSecs > t.lateAfterSecs) return "late";
  return "ok";
}

/** Polls the guard's health once a second (heartbeat ages and countdowns change continuously). */
export function useGuardView(backend: Backend, pollMs = 1000) {
  const [view, setView] = useState<GuardView | null>(null);
  const [error, setError] = useState<IpcError | null>(null);
  useEffect(() => {
    let live = true;
    const poll = async () => {
      const res = await attempt(() => backend.guardStatus());
      if (!live) return;
      if (res.status === "ok") {
        setView(res.data);
        setError(null);
      } else {
        setError(res.error);
      }
    };
    void poll();
    const id = setInterval(() => void poll(), pollMs);
    return () => {
      live = false;
      clearInterval(id);
    };
  }, [backend, pollMs]);
  return { view, error };
}

/** The trading state as the trader reads it. */
function tradingLabel(state: string): string {
  if (state === "reducing") return "opening orders locked: only closes and exits go";
  if (state === "halted") return "halted: only emergency exits go";
  return "active";
}

/** "Unlock…": the trader lifts the lock a fired loss limit left, after reading why. */
function UnlockTrading({ backend, view }: { backend: Backend; view: GuardView }) {
  const [asking, setAsking] = useState(false);
  return (
    <>
      <button type="button" data-testid="unlock-trading" onClick={() => setAsking(true)}>
        Unlock…
      </button>
      {asking && (
        <ConfirmDialog
          title="Unlock opening orders"
          confirmLabel="Unlock"
          busyLabel="Unlocking…"
          onConfirm={async () => {
            const r = await backend.unlockTrading();
            return r.status === "ok" ? { status: "ok" } : r;
          }}
          onConfirmed={() => setAsking(false)}
          onCancel={() => setAsking(false)}
          testId="unlock-dialog"
          confirmTestId="unlock-confirm"
        >
          <p>
            The guard locked opening orders because: <strong>{view.tradingWhy || "(no reason recorded)"}</strong>
          </p>
          <p>
            Unlocking lets new positions be opened again. Your risk rules keep running; the lock comes back the next time a
            loss limit fires. Nothing is sent by unlocking.
          </p>
        </ConfirmDialog>
      )}
    </>
  );
}

export function GuardPanel({
  view,
  error,
  backend,
}: {
  view: GuardView | null;
  error: IpcError | null;
  /** For "Unlock…" (absent: the lock is shown without the button). */
  backend?: Backend;
}) {
  if (!view) {
    return (
      <section className="card wide">
        <h2>Guard</h2>
        {error ? (
          <ErrorNote error={error} testId="guard-error" />
        ) : (
          <p className="muted">Starting…</p>
        )}
      </section>
    );
  }
  const unhealthy = view.tasks.filter((t) => taskHealth(t) !== "ok");
  return (
    <section className="card wide" aria-labelledby="guard-title" data-testid="guard">
      <div className="row-between">
        <h2 id="guard-title">Guard</h2>
        <span data-testid="guard-health" className={unhealthy.length ? "badge warn" : "badge ok"}>
          {unhealthy.length ? `${unhealthy.map((t) => t.name).join(", ")} not checking` : "enforcing"}
        </span>
      </div>
      <dl className="facts">
        <dt>Risk rules</dt>
        <dd>
          <code data-testid="rules-path">{view.rulesPath}</code> · {view.rules} rules
          {view.dryRun && (
            <span
              className="badge warn"
              data-testid="dry-run"
              title="rules and confirmed flattens decide and log; they send no order"
            >
              {" "}
              DRY-RUN
            </span>
          )}
        </dd>
        {view.dryRun && (
          <>
            <dt>Still sent in dry-run</dt>
            <dd data-testid="sent-in-dry-run">{view.sentInDryRun.join(" · ")}</dd>
          </>
        )}
        <dt>Decisions</dt>
        <dd>
          {view.decisionsFired} fired · {view.dryRunDecisions} dry-run · {view.rulesEvaluated} rule checks
        </dd>
        <dt>Last reconciliation</dt>
        <dd data-testid="last-reconciliation">
          {view.lastReconciliation
            ? `${formatEtTime(view.lastReconciliation)} · ${view.lastReconciliationRepairs} repaired`
            : "not yet"}
        </dd>
        <dt>Tasks</dt>
        <dd data-testid="tasks">
          {view.tasks.map((t) => (
            <span key={t.name} className={`task ${taskHealth(t)}`} title={t.lastFailure ?? ""}>
              {t.name} {t.sinceLastSecs === null ? "—" : `${t.sinceLastSecs.toFixed(1)} s ago`}
              {t.restarts > 0 ? ` (restarted ${t.restarts}×)` : ""}
            </span>
          ))}
        </dd>
        {view.needsManualAction > 0 && (
          <>
            <dt>Needs you</dt>
            <dd className="neg">{view.needsManualAction} close(s) need manual action</dd>
          </>
        )}
        <dt>Trading</dt>
        <dd data-testid="trading-state" className={view.tradingState === "active" ? undefined : "neg"}>
          {tradingLabel(view.tradingState)}
          {view.tradingState !== "active" && view.tradingWhy && <span className="muted"> · {view.tradingWhy}</span>}
          {view.tradingState !== "active" && backend && (
            <>
              {" "}
              <UnlockTrading backend={backend} view={view} />
            </>
          )}
        </dd>
        {view.forcedUnwind.length > 0 && (
          <>
            <dt>Forced unwind</dt>
            <dd className="neg">{view.forcedUnwind.join(", ")}</dd>
          </>
        )}
        <dt>Protections</dt>
        <dd>
          {view.protections.length === 0
            ? "none configured"
            : view.protections.map((p) => (
                <span key={p.name} className="task ok">
                  {p.name} · {p.atBroker ? "at the broker (survives closing the app)" : "local (only while the app runs)"}
                </span>
              ))}
        </dd>
      </dl>
    </section>
  );
}
