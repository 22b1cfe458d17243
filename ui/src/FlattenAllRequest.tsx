import { useState } from "react";
import type { Backend } from "./backend";
import type { IpcError } from "./bindings";
import { ConfirmDialog } from "./ConfirmDialog";
import { ErrorNote } from "./ErrorNote";
import { FlattenDialog } from "./FlattenDialog";

/**
 * The tray's "Flatten all…": with one account, the flatten-all preview of that account; with
 * several, the dialog first asks which one. Nothing is sent before the preview is confirmed.
 */
export function FlattenAllRequest({
  backend,
  accounts,
  error,
  onClose,
}: {
  backend: Backend;
  /** The portfolio's accounts; `null` while the portfolio is not read yet. */
  accounts: string[] | null;
  error: IpcError | null;
  onClose: () => void;
}) {
  const [chosen, setChosen] = useState<string | null>(null);
  const [picked, setPicked] = useState<string | null>(null);
  // One account: go straight to its preview, and stay on it even if the list changes meanwhile.
  if (chosen === null && accounts?.length === 1) setChosen(accounts[0]);

  if (chosen !== null) {
    return <FlattenDialog backend={backend} request={{ kind: "account", account: chosen }} onClose={onClose} />;
  }

  const several = accounts !== null && accounts.length > 1;
  return (
    <ConfirmDialog
      title="Flatten all"
      confirmLabel="Preview"
      canConfirm={several && picked !== null}
      onConfirm={async () => {
        setChosen(picked);
        return { status: "ok" };
      }}
      onCancel={onClose}
      testId="flatten-dialog"
      titleTestId="flatten-title"
      confirmTestId="flatten-confirm"
      cancelTestId="flatten-cancel"
      errorTestId="flatten-error"
    >
      {accounts === null && !error && (
        <p className="muted" role="status">
          Reading the accounts…
        </p>
      )}
      {accounts === null && error && (
        <>
          <p>The accounts could not be read, so there is nothing to preview. Nothing has been sent.</p>
          <ErrorNote error={error} testId="flatten-error" />
        </>
      )}
      {accounts !== null && accounts.length === 0 && <p>No account is connected: nothing to flatten. Nothing has been sent.</p>}
      {several && (
        <fieldset className="account-choice" data-testid="flatten-accounts">
          <legend>Which account? The next step previews every order before anything is sent.</legend>
          {accounts.map((a) => (
            <label key={a} className="check">
              <input
                type="radio"
                name="flatten-account"
                value={a}
                checked={picked === a}
                onChange={() => setPicked(a)}
                data-testid="flatten-account"
              />
              {a}
            </label>
          ))}
        </fieldset>
      )}
    </ConfirmDialog>
  );
}
