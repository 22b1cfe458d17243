import { useEffect, useRef, useState } from "react";
import { attempt, type Backend, type Result } from "./backend";
import type {
  FlattenOrderView,
  FlattenPreviewView,
  FlattenProgressView,
  FlattenTicketView,
  FlattenWarningView,
  IpcError,
  OrderProgressView,
} from "./bindings";
import { ConfirmDialog, type ConfirmOutcome } from "./ConfirmDialog";
import { formatCountdown } from "./EmergencyCloses";
import { ErrorNote } from "./ErrorNote";
import { formatMoney } from "./Portfolio";
import { formatEtSession } from "./format";

/** What a person asked to flatten (or switch), before the backend has previewed it. */
export type FlattenRequest =
  | { kind: "strategy"; strategyId: string; name: string }
  | { kind: "account"; account: string }
  | { kind: "forcedUnwind"; account: string; on: boolean };

function requestPreview(backend: Backend, req: FlattenRequest): Promise<Result<FlattenPreviewView>> {
  switch (req.kind) {
    case "strategy":
      return backend.previewFlatten({ kind: "strategy", strategyId: req.strategyId });
    case "account":
      return backend.previewFlatten({ kind: "account", account: req.account });
    case "forcedUnwind":
      return backend.previewForcedUnwind(req.account, req.on);
  }
}

export function requestTitle(req: FlattenRequest): string {
  switch (req.kind) {
    case "strategy":
      return `Flatten ${req.name}`;
    case "account":
      return `Flatten all of ${req.account}`;
    case "forcedUnwind":
      return `Turn forced unwind ${req.on ? "on" : "off"} for ${req.account}`;
  }
}

/** Preview orders in the order they go out: by step, keeping the backend's order inside a step. */
export function orderedSteps(orders: FlattenOrderView[]): FlattenOrderView[] {
  return orders
    .map((o, i) => ({ o, i }))
    .sort((a, b) => a.o.step - b.o.step || a.i - b.i)
    .map(({ o }) => o);
}

/** "as 5 orders of ≤ 100" for an order the coordinator splits into child orders. */
export function splitWording(o: FlattenOrderView): string {
  return o.maxChildQty === null ? `as ${o.childOrders} orders` : `as ${o.childOrders} orders of ≤ ${o.maxChildQty}`;
}

const SEVERITY_RANK: Record<string, number> = { critical: 0, warning: 1, info: 2 };

/** Critical warnings first, then warnings, then information; stable inside a severity. */
export function sortWarnings(warnings: FlattenWarningView[]): FlattenWarningView[] {
  return warnings
    .map((w, i) => ({ w, i }))
    .sort((a, b) => (SEVERITY_RANK[a.w.severity] ?? 1) - (SEVERITY_RANK[b.w.severity] ?? 1) || a.i - b.i)
    .map(({ w }) => w);
}

/** "Estimated credit +1,234.50 (you receive)" / "Estimated debit 125.00 (you pay)". */
export function cashWording(cash: string): string {
  const n = Number(cash);
  if (!Number.isFinite(n)) return `Estimated cash ${cash}`;
  if (n > 0) return `Estimated credit +${formatMoney(cash)} (you receive)`;
  if (n < 0) return `Estimated debit ${formatMoney(String(-n))} (you pay)`;
  return "Estimated cash 0.00";
}

export function venueTimeLabel(iso: string): string {
  return formatEtSession(iso);
}

const STATUS_TEXT: Record<string, string> = {
  dry_run: "Dry run — nothing was sent",
  armed: "Armed — the orders go out at the open",
  working: "Working — orders are at the broker",
  done: "Done — every order filled",
  needs_manual: "Needs you — close what is left at the broker",
  incomplete: "Incomplete — not every order filled",
};

const ORDER_STATE_TEXT: Record<string, string> = {
  not_sent: "not sent",
  waiting: "waiting for the previous step",
  sent: "sent",
  partially_filled: "partially filled",
  filled: "filled",
  failed: "failed",
  not_working: "not working",
};

function priceCell(o: FlattenOrderView) {
  if (o.price === null) return <span className="badge warn">no quote</span>;
  return (
    <>
      {o.price}
      {o.priceSide && <span className="age"> {o.priceSide}</span>}
      {o.staleQuote && (
        <span className="badge warn stale-quote" data-testid="flatten-stale" title="the quote is old: the fill may differ">
          {" "}
          stale{o.quoteAgeSecs === null ? "" : ` ${o.quoteAgeSecs.toFixed(0)} s`}
        </span>
      )}
    </>
  );
}

function PreviewBody({ preview, invalid, secsLeft }: { preview: FlattenPreviewView; invalid: string | null; secsLeft: number | null }) {
  const orders = orderedSteps(preview.orders);
  const warnings = sortWarnings(preview.warnings);
  return (
    <div className={invalid ? "flatten-preview invalid" : "flatten-preview"} data-testid="flatten-preview">
      {preview.emergency && (
        <p className="flatten-notice emergency" data-testid="flatten-emergency">
          <strong>Emergency path:</strong> this close goes through the emergency procedure (a Broken strategy, HALTED trading or
          forced unwind).
        </p>
      )}
      {!preview.willSend && (
        <p className="flatten-notice dry" data-testid="flatten-dry-run">
          <strong>{orders.length > 0 ? "Dry-run: nothing will be sent." : "No order: nothing will be sent."}</strong>
        </p>
      )}
      {preview.armedUntil && (
        <p className="flatten-notice armed" data-testid="flatten-armed">
          Market closed: the orders are held and go out at the open, {venueTimeLabel(preview.armedUntil)}.
        </p>
      )}
      {warnings.length > 0 && (
        <ul className="flatten-warnings" data-testid="flatten-warnings" aria-label="Warnings">
          {warnings.map((w, i) => (
            <li key={`${w.code}:${i}`} className={`warning-item ${w.severity}`} data-testid="flatten-warning" data-severity={w.severity}>
              <span className={`badge ${w.severity}`}>{w.severity}</span> {w.message}
            </li>
          ))}
        </ul>
      )}
      {orders.length === 0 ? (
        <p className="muted" data-testid="flatten-no-orders">
          No order to send.
        </p>
      ) : (
        <table className="positions flatten-orders" data-testid="flatten-orders">
          <caption className="sr-only">Orders, in the order they go out</caption>
          <thead>
            <tr>
              <th scope="col" className="num">Step</th>
              <th scope="col">Side</th>
              <th scope="col" className="num">Qty</th>
              <th scope="col">Instrument</th>
              <th scope="col">Order</th>
              <th scope="col" className="num">Est. price</th>
              <th scope="col" className="num">Est. cash</th>
            </tr>
          </thead>
          <tbody>
            {orders.map((o, i) => (
              <tr
                key={i}
                data-testid="flatten-order"
                data-step={o.step}
                className={[o.staleQuote ? "stale" : "", o.gateRefusal ? "refused" : ""].filter(Boolean).join(" ") || undefined}
              >
                <td className="num mono">{o.step}</td>
                <td className={o.side === "BUY" ? "side buy" : "side sell"}>{o.side}</td>
                <td className="num mono">
                  {o.qty}
                  {o.childOrders > 1 && (
                    <span className="age" data-testid="flatten-order-split">
                      {" "}
                      {splitWording(o)}
                    </span>
                  )}
                </td>
                <td>
                  {o.label}
                  {o.gateRefusal && (
                    <span className="badge critical" data-testid="flatten-order-refused" title="The pre-trade gate would refuse this order now">
                      {" "}
                      refused: {o.gateRefusal}
                    </span>
                  )}
                </td>
                <td className="mono">{o.orderType}</td>
                <td className="num mono">{priceCell(o)}</td>
                <td className={`num mono ${o.cash !== null && Number(o.cash) < 0 ? "neg" : ""}`}>{formatMoney(o.cash, true)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <p className="flatten-cash" data-testid="flatten-cash">
        <span className="mono">{cashWording(preview.estimatedCash)}</span>
        {!preview.estimateComplete && <span className="age stale"> · incomplete: orders without a quote are left out</span>}
      </p>
      {preview.excluded.length > 0 && (
        <>
          <h3>Left out</h3>
          <ul className="impact" data-testid="flatten-excluded">
            {preview.excluded.map((e) => (
              <li key={e}>{e}</li>
            ))}
          </ul>
        </>
      )}
      {invalid ? (
        <p className="error" role="status" data-testid="flatten-expired">
          {invalid}
        </p>
      ) : (
        secsLeft !== null && (
          <p className="muted" data-testid="flatten-expiry">
            Confirm within <span className="mono">{formatCountdown(secsLeft)}</span>; after that the guard asks for a fresh preview.
          </p>
        )
      )}
    </div>
  );
}

function ProgressBody({ ticket, progress, error }: { ticket: FlattenTicketView; progress: FlattenProgressView | null; error: IpcError | null }) {
  const status = progress?.status ?? (ticket.dryRun ? "dry_run" : ticket.armedUntil ? "armed" : "working");
  const orders: OrderProgressView[] =
    progress?.orders ??
    orderedSteps(ticket.orders).map((o) => ({ side: o.side, qty: o.qty, filled: 0, label: o.label, state: "not_sent", reason: null }));
  return (
    <div className="flatten-progress" data-testid="flatten-progress" aria-live="polite">
      <p className={`flatten-status ${status}`} data-testid="flatten-status" data-status={status}>
        <strong>{STATUS_TEXT[status] ?? status}</strong>
        {progress?.detail && <span className="muted"> · {progress.detail}</span>}
        {!progress?.detail && status === "armed" && ticket.armedUntil && <span className="muted"> · {venueTimeLabel(ticket.armedUntil)}</span>}
      </p>
      {progress && (
        <p className="mono muted" data-testid="flatten-counts">
          {progress.sent} sent · {progress.filled} filled · {progress.failed} failed
        </p>
      )}
      <table className="positions" data-testid="flatten-progress-orders">
        <thead>
          <tr>
            <th scope="col">Side</th>
            <th scope="col">Instrument</th>
            <th scope="col" className="num">Filled</th>
            <th scope="col">State</th>
          </tr>
        </thead>
        <tbody>
          {orders.map((o, i) => (
            <tr key={i} data-testid="flatten-progress-order" data-state={o.state} className={`order-state ${o.state}`}>
              <td className={o.side === "BUY" ? "side buy" : "side sell"}>{o.side}</td>
              <td>{o.label}</td>
              <td className="num mono">
                {o.filled}/{o.qty}
              </td>
              <td>
                {ORDER_STATE_TEXT[o.state] ?? o.state}
                {o.reason && <span className="muted"> — {o.reason}</span>}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {!progress?.finished && <p className="muted">Closing this window does not stop the orders.</p>}
      <ErrorNote error={error} testId="flatten-progress-error" />
    </div>
  );
}

function confirmLabelFor(req: FlattenRequest, p: FlattenPreviewView): string {
  if (req.kind === "forcedUnwind") return `Turn forced unwind ${req.on ? "on" : "off"}`;
  // Broker orders: a close over the per-order limit goes out as several child orders.
  const n = p.orders.reduce((sum, o) => sum + Math.max(1, o.childOrders), 0);
  if (!p.willSend) return n > 0 ? "Confirm dry run" : "Confirm";
  return `Send ${n} ${p.emergency ? "emergency " : ""}order${n === 1 ? "" : "s"}`;
}

/**
 * Two-step flatten: asks the backend for a preview (the exact orders, estimated cash, warnings),
 * shows it with the time left to confirm, sends the preview id only on confirmation, then shows
 * the progress in place until the flatten is finished. Any refusal shows here and offers a fresh
 * preview (a preview is used once and expires).
 */
export function FlattenDialog({
  backend,
  request,
  onClose,
  pollMs = 500,
}: {
  backend: Backend;
  request: FlattenRequest;
  onClose: () => void;
  pollMs?: number;
}) {
  const [preview, setPreview] = useState<FlattenPreviewView | null>(null);
  const [loading, setLoading] = useState(true);
  const [loadError, setLoadError] = useState<IpcError | null>(null);
  const [deadline, setDeadline] = useState<number | null>(null);
  const [now, setNow] = useState(() => Date.now());
  const [refused, setRefused] = useState(false);
  const [ticket, setTicket] = useState<FlattenTicketView | null>(null);
  const [progress, setProgress] = useState<FlattenProgressView | null>(null);
  const [progressError, setProgressError] = useState<IpcError | null>(null);
  const live = useRef(true);
  // Only the newest preview request counts (StrictMode runs the opening effect twice in development).
  const seq = useRef(0);
  useEffect(() => {
    live.current = true;
    return () => {
      live.current = false;
    };
  }, []);

  const fetchPreview = async (): Promise<Result<FlattenPreviewView>> => {
    setLoading(true);
    setLoadError(null);
    const mine = ++seq.current;
    const res = await attempt(() => requestPreview(backend, request));
    if (!live.current || mine !== seq.current) return res;
    setLoading(false);
    if (res.status === "ok") {
      const t = Date.now();
      setPreview(res.data);
      setRefused(false);
      setNow(t);
      setDeadline(res.data.expiresInSecs === null ? null : t + res.data.expiresInSecs * 1000);
    }
    return res;
  };

  // The first preview, when the dialog opens.
  useEffect(() => {
    const first = seq.current + 1;
    void fetchPreview().then((res) => {
      if (live.current && first === seq.current && res.status === "error") setLoadError(res.error);
    });
    // One request per dialog: a new request mounts a new dialog.
  }, []);

  // The time left to confirm (wall clock; the backend has the last word).
  useEffect(() => {
    if (deadline === null || ticket) return;
    const id = setInterval(() => setNow(Date.now()), 250);
    return () => clearInterval(id);
  }, [deadline, ticket]);

  // Progress once confirmed, until finished.
  useEffect(() => {
    if (!ticket) return;
    let active = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const poll = async () => {
      const res = await attempt(() => backend.flattenProgress(ticket.id));
      if (!active) return;
      if (res.status === "ok") {
        setProgress(res.data);
        setProgressError(null);
        if (res.data.finished) return;
      } else {
        setProgressError(res.error);
      }
      timer = setTimeout(() => void poll(), pollMs);
    };
    void poll();
    return () => {
      active = false;
      clearTimeout(timer);
    };
  }, [backend, ticket, pollMs]);

  const secsLeft = deadline === null ? null : Math.max(0, Math.ceil((deadline - now) / 1000));
  const expired = secsLeft === 0;
  const needsPreview = preview === null || expired || refused;
  const invalid = !preview
    ? null
    : refused
      ? "This preview can no longer be confirmed: preview again to see what would be sent now."
      : expired
        ? "This preview expired: preview again to see current prices."
        : null;

  const onConfirm = async (): Promise<ConfirmOutcome> => {
    if (needsPreview || !preview) {
      const res = await fetchPreview();
      return res.status === "ok" ? { status: "ok" } : res;
    }
    const res = await attempt(() => backend.confirmFlatten(preview.id));
    if (!live.current) return { status: "ok" };
    if (res.status === "ok") {
      setTicket(res.data);
      return { status: "ok" };
    }
    // A refused preview is spent or stale either way: the way on is a fresh one.
    setRefused(true);
    return res;
  };

  const title = preview?.title ?? requestTitle(request);
  const finished = progress?.finished ?? false;

  return (
    <ConfirmDialog
      title={title}
      confirmLabel={!preview ? (loading ? "Previewing…" : "Preview again") : needsPreview ? "Preview again" : confirmLabelFor(request, preview)}
      busyLabel={needsPreview ? "Previewing…" : "Sending…"}
      danger={!needsPreview && preview?.willSend === true}
      canConfirm={!loading || preview !== null}
      onConfirm={onConfirm}
      onCancel={onClose}
      testId="flatten-dialog"
      titleTestId="flatten-title"
      confirmTestId="flatten-confirm"
      cancelTestId="flatten-cancel"
      errorTestId="flatten-error"
      actions={
        ticket ? (
          finished ? (
            <button type="button" autoFocus onClick={onClose} data-testid="flatten-close">
              Close
            </button>
          ) : (
            <button type="button" className="secondary" autoFocus onClick={onClose} data-testid="flatten-hide">
              Hide — orders keep working
            </button>
          )
        ) : undefined
      }
    >
      {ticket ? (
        <ProgressBody ticket={ticket} progress={progress} error={progressError} />
      ) : (
        <>
          {loading && !preview && (
            <p className="muted" role="status">
              Asking the guard what it would send…
            </p>
          )}
          <ErrorNote error={loadError} testId="flatten-error" />
          {preview && <PreviewBody preview={preview} invalid={invalid} secsLeft={secsLeft} />}
        </>
      )}
    </ConfirmDialog>
  );
}
