import { useEffect, useState } from "react";
import { attempt, type Backend } from "./backend";
import type { GuardView, IpcError } from "./bindings";
import { ConfirmDialog } from "./ConfirmDialog";
import { formatCountdown } from "./EmergencyCloses";
import { ErrorNote } from "./ErrorNote";

/** What stops with the app and what stays at the broker, from the guard's own view. */
export function quitImpact(view: GuardView) {
  const local = view.protections.filter((p) => !p.atBroker).map((p) => p.name);
  // Armed emergency closes are released by the running app at the open.
  for (const c of view.emergencyCloses) {
    if (c.phase === "armed") {
      const when = c.releasesInSecs === null ? "at the open" : `at the open in ${formatCountdown(c.releasesInSecs)}`;
      local.push(`Emergency close of ${c.strategy} (${c.account}), armed to go out ${when}`);
    }
  }
  const broker = view.protections.filter((p) => p.atBroker).map((p) => p.name);
  return { local, broker };
}

/**
 * Asked by the tray's "Quit…" while positions are guarded: lists which protections stop (local
 * rules) and which remain at the broker (backstop orders); quits only on confirmation.
 */
export function QuitDialog({ backend, onClose }: { backend: Backend; onClose: () => void }) {
  const [view, setView] = useState<GuardView | null>(null);
  const [error, setError] = useState<IpcError | null>(null);

  useEffect(() => {
    let live = true;
    attempt(() => backend.guardStatus()).then((res) => {
      if (!live) return;
      if (res.status === "ok") setView(res.data);
      else setError(res.error);
    });
    return () => {
      live = false;
    };
  }, [backend]);

  const impact = view ? quitImpact(view) : null;
  return (
    <ConfirmDialog
      title="Quit Tradeguard?"
      confirmLabel="Quit and stop guarding"
      busyLabel="Stopping the guard…"
      cancelLabel="Keep guarding"
      danger
      canConfirm={view !== null || error !== null}
      onConfirm={() => attempt(() => backend.quitApp())}
      onConfirmed={onClose}
      onCancel={onClose}
      testId="quit-dialog"
      confirmTestId="quit-confirm"
      cancelTestId="quit-cancel"
    >
      {!impact && !error && <p className="muted">Reading what is guarded…</p>}
      {error && (
        <>
          <p>What is guarded could not be read. Quitting stops every local rule.</p>
          <ErrorNote error={error} testId="quit-guard-error" />
        </>
      )}
      {impact && (
        <>
          <h3>Stops when Tradeguard quits</h3>
          {impact.local.length === 0 ? (
            <p className="muted">No local protection.</p>
          ) : (
            <ul className="impact stops" data-testid="quit-local-list">
              {impact.local.map((name) => (
                <li key={name}>{name}</li>
              ))}
            </ul>
          )}
          <h3>Remains at the broker</h3>
          {impact.broker.length === 0 ? (
            <p className="neg" data-testid="quit-no-broker">
              Nothing: no backstop order rests at the broker. Your positions are unprotected while Tradeguard is closed.
            </p>
          ) : (
            <ul className="impact stays" data-testid="quit-broker-list">
              {impact.broker.map((name) => (
                <li key={name}>{name}</li>
              ))}
            </ul>
          )}
        </>
      )}
    </ConfirmDialog>
  );
}
