import { useEffect, useId, useRef, useState, type ReactNode } from "react";
import type { IpcError } from "./bindings";
import { toIpcError } from "./backend";
import { ErrorNote } from "./ErrorNote";

/** What a confirmed action answers: the dialog shows an error itself and reports success. */
export type ConfirmOutcome = { status: "ok" } | { status: "error"; error: IpcError };

export interface ConfirmDialogProps {
  title: string;
  /** Arbitrary body: a list of what happens, a flatten preview, … */
  children: ReactNode;
  confirmLabel: string;
  /** Shown on the confirm button while the action runs. */
  busyLabel?: string;
  cancelLabel?: string;
  /** Styles the confirm button as destructive (red). */
  danger?: boolean;
  /** False while the body is still loading what the person must see first. */
  canConfirm?: boolean;
  onConfirm: () => Promise<ConfirmOutcome>;
  /** Called after the action succeeded; the parent usually closes the dialog. */
  onConfirmed?: () => void;
  /** Cancel button and Escape. Never called by a click outside the dialog. */
  onCancel: () => void;
  /** Told when the action failed (the dialog shows the error itself). */
  onError?: (error: IpcError) => void;
  /** Replaces the Cancel/Confirm buttons, e.g. a Close button once the action ran. Escape still cancels. */
  actions?: ReactNode;
  testId?: string;
  confirmTestId?: string;
  cancelTestId?: string;
  titleTestId?: string;
  /** Defaults to `${testId}-error`. */
  errorTestId?: string;
}

const FOCUSABLE = 'button:not([disabled]), [href], input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

/**
 * A modal confirmation. The safe button has the focus; a click outside does nothing (a stray click
 * must not cancel or confirm anything); Escape cancels; Tab stays inside. While the action runs the
 * buttons are disabled and Escape is ignored: the request is already on its way, and its answer
 * (an error, with its code) shows here.
 */
export function ConfirmDialog({
  title,
  children,
  confirmLabel,
  busyLabel = "Working…",
  cancelLabel = "Cancel",
  danger = false,
  canConfirm = true,
  onConfirm,
  onConfirmed,
  onCancel,
  onError,
  actions,
  testId = "confirm-dialog",
  confirmTestId = "confirm-dialog-confirm",
  cancelTestId = "confirm-dialog-cancel",
  titleTestId,
  errorTestId,
}: ConfirmDialogProps) {
  const titleId = useId();
  const dialogRef = useRef<HTMLDivElement>(null);
  const cancelRef = useRef<HTMLButtonElement>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<IpcError | null>(null);

  // Focus the safe choice on open; give the focus back to where it was on close.
  useEffect(() => {
    const previous = document.activeElement as HTMLElement | null;
    cancelRef.current?.focus();
    return () => previous?.focus?.();
  }, []);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape") {
        e.preventDefault();
        if (!busy) onCancel();
      } else if (e.key === "Tab" && dialogRef.current) {
        const items = Array.from(dialogRef.current.querySelectorAll<HTMLElement>(FOCUSABLE));
        if (items.length === 0) return;
        const first = items[0];
        const last = items[items.length - 1];
        const inside = dialogRef.current.contains(document.activeElement);
        if (e.shiftKey && (document.activeElement === first || !inside)) {
          e.preventDefault();
          last.focus();
        } else if (!e.shiftKey && (document.activeElement === last || !inside)) {
          e.preventDefault();
          first.focus();
        }
      }
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, [busy, onCancel]);

  const confirm = async () => {
    setBusy(true);
    setError(null);
    let outcome: ConfirmOutcome;
    try {
      outcome = await onConfirm();
    } catch (e) {
      outcome = { status: "error", error: toIpcError(e) };
    }
    setBusy(false);
    if (outcome.status === "ok") onConfirmed?.();
    else {
      setError(outcome.error);
      onError?.(outcome.error);
    }
  };

  return (
    <div className="modal-backdrop">
      <div
        ref={dialogRef}
        className="modal card"
        role="dialog"
        aria-modal="true"
        aria-labelledby={titleId}
        aria-busy={busy}
        data-testid={testId}
      >
        <h2 id={titleId} data-testid={titleTestId}>
          {title}
        </h2>
        <div className="modal-body">{children}</div>
        <ErrorNote error={error} testId={errorTestId ?? `${testId}-error`} />
        {actions ? (
          <div className="modal-actions">{actions}</div>
        ) : (
        <div className="modal-actions">
          <button type="button" className="secondary" ref={cancelRef} onClick={onCancel} disabled={busy} data-testid={cancelTestId}>
            {cancelLabel}
          </button>
          <button
            type="button"
            className={danger ? "danger" : undefined}
            onClick={() => void confirm()}
            disabled={busy || !canConfirm}
            data-testid={confirmTestId}
          >
            {busy ? busyLabel : confirmLabel}
          </button>
        </div>
        )}
      </div>
    </div>
  );
}
