/**
 * Placeholder for the tray's "Flatten all…": says honestly that the preview is not wired yet and
 * that nothing was sent. The flatten-all preview and its confirmation replace this component.
 */
export function FlattenAllRequest({ onDismiss }: { onDismiss: () => void }) {
  return (
    <section className="card wide notice" role="status" data-testid="flatten-all-request">
      <div className="row-between">
        <h2>Flatten all requested</h2>
        <button type="button" className="secondary" onClick={onDismiss} data-testid="flatten-all-dismiss">
          Dismiss
        </button>
      </div>
      <p>
        The flatten-all preview — the exact orders, their estimated cost and warnings, with a confirmation — opens here on the
        Dashboard. It is not available in this build yet: <strong>nothing has been sent.</strong> To close positions now, use
        your broker's platform.
      </p>
    </section>
  );
}
