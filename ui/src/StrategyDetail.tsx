import { memo, useEffect, useState } from "react";
import { attempt, type Backend, type Unlisten } from "./backend";
import type { AssignmentPlanView, GreeksView, IpcError, StrategyDetail, StrategyLegRow, StrategyRow } from "./bindings";
import { ErrorNote } from "./ErrorNote";
import type { FlattenRequest } from "./FlattenDialog";
import { formatLocalTime, formatSigned, formatUsd } from "./format";
import { PayoffChart } from "./PayoffChart";
import { pnlClass } from "./Portfolio";
import { RulesTable } from "./RulesTable";
import { badgeClass, badgeLabel, kindLabel } from "./Strategies";
import { StressTable } from "./StressTable";

export interface DetailState {
  detail: StrategyDetail | null;
  error: IpcError | null;
  /** When the shown detail was read (ms since the epoch). */
  loadedAt: number | null;
}

/**
 * One strategy's detail: read at once, then `pollMs` after each read, sooner after `strategiesChanged` (at
 * most one read per `throttleMs`). Never two reads at a time; a failed read keeps the last good
 * detail (the screen marks it stale).
 */
export function useStrategyDetail(backend: Backend, strategyId: string, pollMs = 2000, throttleMs = 1000): DetailState {
  const [state, setState] = useState<DetailState>({ detail: null, error: null, loadedAt: null });
  useEffect(() => {
    let live = true;
    let inFlight = false;
    let again = false;
    let lastStart = -Infinity;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let dueAt = Infinity;
    const schedule = (delay: number) => {
      clearTimeout(timer);
      dueAt = Date.now() + delay;
      timer = setTimeout(() => {
        dueAt = Infinity;
        void load();
      }, delay);
    };
    const throttled = () => Math.max(0, lastStart + throttleMs - Date.now());
    const load = async () => {
      inFlight = true;
      lastStart = Date.now();
      const res = await attempt(() => backend.strategyDetail(strategyId));
      inFlight = false;
      if (!live) return;
      if (res.status === "ok") setState({ detail: res.data, error: null, loadedAt: Date.now() });
      else setState((s) => ({ ...s, error: res.error }));
      // The next read: the poll, or sooner when an event came in during this one.
      schedule(again ? throttled() : pollMs);
      again = false;
    };
    const nudge = () => {
      if (!live) return;
      if (inFlight) again = true;
      else if (Date.now() + throttled() < dueAt) schedule(throttled());
    };
    void load();
    let unlisten: Unlisten | undefined;
    backend
      .onStrategies(nudge)
      .then((u) => (live ? (unlisten = u) : u()))
      .catch(() => {}); // the poll still refreshes
    return () => {
      live = false;
      clearTimeout(timer);
      unlisten?.();
    };
  }, [backend, strategyId, pollMs, throttleMs]);
  return state;
}

const LegRow = memo(
  function LegRow({ l }: { l: StrategyLegRow }) {
    return (
      <tr data-testid="detail-leg">
        <td>{l.label}</td>
        <td className={`num mono ${l.qty < 0 ? "neg" : ""}`}>{l.qty > 0 ? `+${l.qty}` : l.qty}</td>
        <td className="num mono">{formatUsd(l.avgPrice)}</td>
        <td className="num mono">{l.mark === null ? <span className="badge warn">no quote</span> : formatUsd(l.mark)}</td>
        <td className={`num mono ${pnlClass(l.pnl)}`}>{formatUsd(l.pnl, { signed: true })}</td>
        <td className="num mono">{l.delta === null ? "—" : formatSigned(l.delta)}</td>
      </tr>
    );
  },
  (a, b) =>
    a.l.label === b.l.label && a.l.qty === b.l.qty && a.l.avgPrice === b.l.avgPrice && a.l.mark === b.l.mark && a.l.pnl === b.l.pnl && a.l.delta === b.l.delta,
);

function Legs({ legs }: { legs: StrategyLegRow[] }) {
  return (
    <table className="positions" data-testid="detail-legs">
      <thead>
        <tr>
          <th scope="col">Leg</th>
          <th scope="col" className="num">Qty</th>
          <th scope="col" className="num">Avg price</th>
          <th scope="col" className="num">Mark</th>
          <th scope="col" className="num">P&amp;L</th>
          <th scope="col" className="num">Delta</th>
        </tr>
      </thead>
      <tbody>
        {legs.map((l, i) => (
          <LegRow key={`${l.label}:${i}`} l={l} />
        ))}
      </tbody>
    </table>
  );
}

function Greeks({ g }: { g: GreeksView }) {
  return (
    <dl className="figures" data-testid="detail-greeks">
      <div><dt>Delta (shares)</dt><dd data-testid="greek-delta">{formatSigned(g.delta, 1)}</dd></div>
      <div><dt>Gamma (shares)</dt><dd data-testid="greek-gamma">{formatSigned(g.gamma, 2)}</dd></div>
      <div><dt>Vega (per vol point)</dt><dd data-testid="greek-vega">{formatUsd(g.vega, { signed: true })}</dd></div>
      <div><dt>Theta (per day)</dt><dd data-testid="greek-theta">{formatUsd(g.theta, { signed: true })}</dd></div>
      {!g.complete && (
        <div>
          <dt>&nbsp;</dt>
          <dd>
            <span className="badge warn" data-testid="greeks-partial" title="Some option legs had no Greeks: the sums cover only the others">
              partial
            </span>
          </dd>
        </div>
      )}
    </dl>
  );
}

function Header({ s, onFlatten }: { s: StrategyRow; onFlatten: (r: FlattenRequest) => void }) {
  const broken = s.broken || s.badge.startsWith("broken");
  return (
    <div className="detail-head">
      <div>
        <h2 id="detail-title" data-testid="detail-name">
          {s.name}
        </h2>
        <p className="muted" data-testid="detail-meta">
          {kindLabel(s.kind)} · account <strong>{s.account}</strong>
        </p>
      </div>
      <span className={badgeClass(s)} data-testid="detail-badge">
        {badgeLabel(s.badge)}
      </span>
      <dl className="figures">
        <div><dt>P&amp;L</dt><dd className={pnlClass(s.pnl)} data-testid="detail-pnl">{formatUsd(s.pnl, { signed: true })}</dd></div>
        <div><dt>Entry credit</dt><dd data-testid="detail-credit">{formatUsd(s.entryCredit, { signed: true })}</dd></div>
      </dl>
      <button
        type="button"
        className={broken ? "danger" : "secondary"}
        data-testid="detail-flatten"
        onClick={() => onFlatten({ kind: "strategy", strategyId: s.id, name: s.name })}
      >
        Flatten…
      </button>
    </div>
  );
}

/** What the assignment guard does when an option of the strategy is assigned, and the person's choice. */
export function AssignmentPlan({ backend, strategyId, plan }: { backend: Backend; strategyId: string; plan: AssignmentPlanView }) {
  const [shown, setShown] = useState(plan);
  const [error, setError] = useState<IpcError | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => setShown(plan), [plan]);
  const choose = async (wheel: boolean, stock: string | null) => {
    setBusy(true);
    const res = await backend.setAssignmentChoice({ strategyId, wheel, stock });
    setBusy(false);
    if (res.status === "ok") {
      setShown(res.data);
      setError(null);
    } else setError(res.error);
  };
  const stockDefault = shown.stockChoice === null ? shown.stock : null;
  return (
    <div data-testid="assignment-plan">
      <p data-testid="assignment-plan-text">{shown.text}</p>
      <label>
        <input
          type="checkbox"
          data-testid="assignment-wheel"
          checked={shown.wheel}
          disabled={busy}
          onChange={(e) => void choose(e.currentTarget.checked, shown.stockChoice)}
        />{" "}
        Wheel: an assignment of its short leg is the plan (alert only)
      </label>{" "}
      <label>
        Delivered shares:{" "}
        <select
          data-testid="assignment-stock"
          value={shown.stockChoice ?? "default"}
          disabled={busy}
          onChange={(e) => void choose(shown.wheel, e.currentTarget.value === "default" ? null : e.currentTarget.value)}
        >
          <option value="default">default for {shown.shape.replace(/_/g, " ")}{stockDefault ? ` (${stockDefault})` : ""}</option>
          <option value="keep">keep</option>
          <option value="close">close at once</option>
        </select>
      </label>
      <ErrorNote error={error} testId="assignment-choice-error" />
    </div>
  );
}

/** Detail body; memoized parts re-render only when their own data changed. */
function DetailBody({ backend, d, onFlatten }: { backend: Backend; d: StrategyDetail; onFlatten: (r: FlattenRequest) => void }) {
  return (
    <>
      <Header s={d.strategy} onFlatten={onFlatten} />
      <h3>Legs</h3>
      <Legs legs={d.strategy.legs} />
      <h3>Net Greeks</h3>
      <Greeks g={d.greeks} />
      <h3>Payoff{d.risk ? ` (${d.risk.underlying})` : ""}</h3>
      {d.risk ? (
        <>
          <PayoffChart risk={d.risk} />
          <h3>Stress</h3>
          <StressTable risk={d.risk} marginBuffer={d.marginBuffer} worstExceedsBuffer={d.worstExceedsBuffer} />
        </>
      ) : (
        <ErrorNote error={d.riskError ?? { code: "unavailable", reason: "ui.no_risk", message: "No payoff or stress for this strategy." }} testId="risk-error" />
      )}
      <h3>Rules that apply</h3>
      <RulesTable rules={d.rules} error={d.rulesError} path={d.rulesPath} />
      <h3>When an option is assigned</h3>
      <AssignmentPlan backend={backend} strategyId={d.strategy.id} plan={d.assignment} />
    </>
  );
}

/** The strategy detail screen: opened from the dashboard's strategies, Escape or the button goes back. */
export function StrategyDetailScreen({
  backend,
  strategyId,
  onBack,
  onFlatten,
  escapeGoesBack = true,
}: {
  backend: Backend;
  strategyId: string;
  onBack: () => void;
  onFlatten: (r: FlattenRequest) => void;
  /** Off while a dialog is open over the screen (its Escape is the dialog's). */
  escapeGoesBack?: boolean;
}) {
  const { detail, error, loadedAt } = useStrategyDetail(backend, strategyId);
  useEffect(() => {
    if (!escapeGoesBack) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape" && !e.defaultPrevented) onBack();
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, [escapeGoesBack, onBack]);
  return (
    <section className="card wide detail" aria-labelledby="detail-title" data-testid="strategy-detail">
      <div className="row-between">
        <button type="button" className="secondary" data-testid="detail-back" onClick={onBack}>
          ← Back to dashboard
        </button>
        {detail && error && loadedAt !== null && (
          <span className="badge warn" data-testid="detail-stale">
            stale: last read {formatLocalTime(loadedAt)}
          </span>
        )}
      </div>
      <ErrorNote error={error} testId="detail-error" />
      {!detail && !error && (
        <p className="muted" data-testid="detail-loading">
          <span className="spinner" aria-hidden="true" /> Loading the strategy…
        </p>
      )}
      {!detail && error && <h2 id="detail-title">Strategy</h2>}
      {detail && <DetailBody backend={backend} d={detail} onFlatten={onFlatten} />}
    </section>
  );
}
