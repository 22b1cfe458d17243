import { useEffect, useState } from "react";
import { attempt, type Backend } from "./backend";
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

export function GuardPanel({ view, error }: { view: GuardView | null; error: IpcError | null }) {
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
