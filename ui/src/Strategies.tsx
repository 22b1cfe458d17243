import { Fragment, memo, useCallback, useEffect, useId, useMemo, useState } from "react";
import { attempt, type Backend } from "./backend";
import type { IpcError, StrategyLegRow, StrategyRow } from "./bindings";
import { ErrorNote } from "./ErrorNote";
import type { FlattenRequest } from "./FlattenDialog";
import { SpacerRow, formatMoney, pnlClass } from "./Portfolio";
import { useRowWindow } from "./useRowWindow";
import { useSubscription } from "./useSubscription";

/**
 * The strategies as pushed by `strategiesChanged` (with every portfolio update), read once at
 * mount and again every `fallbackMs` in case an event was missed.
 */
export function useStrategies(backend: Backend, fallbackMs = 10_000) {
  const [rows, setRows] = useState<StrategyRow[] | null>(null);
  const [error, setError] = useState<IpcError | null>(null);
  useEffect(() => {
    let live = true;
    const poll = async () => {
      const res = await attempt(() => backend.strategies());
      if (!live) return;
      if (res.status === "ok") {
        setRows(res.data);
        setError(null);
      } else {
        setError(res.error);
      }
    };
    void poll();
    const id = setInterval(() => void poll(), fallbackMs);
    return () => {
      live = false;
      clearInterval(id);
    };
  }, [backend, fallbackMs]);

  const subscribe = useCallback(
    () =>
      backend.onStrategies((r) => {
        setRows(r);
        setError(null);
      }),
    [backend],
  );
  const onSubscribeError = useCallback(
    (e: unknown) => setError({ code: "internal", reason: "ui.subscribe", message: `Live strategy updates unavailable: ${String(e)}` }),
    [],
  );
  useSubscription(subscribe, onSubscribeError);
  return { rows, error };
}

/** "iron_condor" → "iron condor". */
export function kindLabel(kind: string): string {
  return kind.replace(/_/g, " ");
}

/** "open" → "Open", "broken: assignment" → "Broken: assignment". */
export function badgeLabel(badge: string): string {
  return badge.charAt(0).toUpperCase() + badge.slice(1);
}

export function badgeClass(s: StrategyRow): string {
  if (s.broken || s.badge.startsWith("broken")) return "badge state broken";
  if (s.badge.startsWith("closing")) return "badge state closing";
  return "badge state open";
}

function ForcedUnwindSwitch({ account, on, onToggle }: { account: string; on: boolean; onToggle: () => void }) {
  return (
    <button
      type="button"
      role="switch"
      aria-checked={on}
      className={on ? "switch on" : "switch"}
      data-testid="forced-unwind"
      data-account={account}
      title="Forced unwind closes every position of the account and blocks new ones; asks for a preview first"
      onClick={onToggle}
    >
      <span className="switch-track" aria-hidden="true">
        <span className="switch-thumb" />
      </span>
      Forced unwind {on ? "on" : "off"}
    </button>
  );
}

const sameLeg = (a: StrategyLegRow, b: StrategyLegRow) =>
  a.label === b.label && a.qty === b.qty && a.avgPrice === b.avgPrice && a.mark === b.mark && a.pnl === b.pnl && a.delta === b.delta;

/** Same figures (each push brings new objects; unchanged strategies need no re-render). */
export function sameStrategy(a: StrategyRow, b: StrategyRow): boolean {
  return (
    a === b ||
    (a.id === b.id &&
      a.account === b.account &&
      a.name === b.name &&
      a.kind === b.kind &&
      a.badge === b.badge &&
      a.broken === b.broken &&
      a.recognized === b.recognized &&
      a.entryCredit === b.entryCredit &&
      a.pnl === b.pnl &&
      a.exits.length === b.exits.length &&
      a.exits.every((x, i) => x === b.exits[i]) &&
      a.legs.length === b.legs.length &&
      a.legs.every((l, i) => sameLeg(l, b.legs[i])))
  );
}

interface RowProps {
  s: StrategyRow;
  /** Whether the legs are shown (kept by the table: a windowed row may unmount and come back). */
  open: boolean;
  onToggle: (id: string) => void;
  onFlatten: (r: FlattenRequest) => void;
  onDetails?: (id: string) => void;
}

const StrategyRows = memo(function StrategyRows({ s, open, onToggle, onFlatten, onDetails }: RowProps) {
  const legsId = useId();
  const broken = s.broken || s.badge.startsWith("broken");
  return (
    <Fragment>
      <tr data-testid="strategy" data-strategy-name={s.name} data-badge={s.badge} className={broken ? "strategy broken" : "strategy"}>
        <td>
          <button
            type="button"
            className="expander"
            aria-expanded={open}
            aria-controls={legsId}
            aria-label={`${open ? "Hide" : "Show"} legs of ${s.name}`}
            data-testid="strategy-expand"
            onClick={() => onToggle(s.id)}
          >
            {open ? "▾" : "▸"}
          </button>
        </td>
        <td>
          {s.name}
          {!s.recognized && <span className="age"> (not recognized)</span>}
          {s.exits.length > 0 && (
            <div className="age" data-testid="strategy-exits">
              {s.exits.join(" · ")}
            </div>
          )}
        </td>
        <td className="muted">{kindLabel(s.kind)}</td>
        <td>
          <span className={badgeClass(s)} data-testid="strategy-badge">
            {badgeLabel(s.badge)}
          </span>
        </td>
        <td className="num mono">{formatMoney(s.entryCredit, true)}</td>
        <td className={`num mono ${pnlClass(s.pnl)}`}>{formatMoney(s.pnl, true)}</td>
        <td className="num row-actions">
          {onDetails && (
            <button
              type="button"
              className="secondary"
              data-testid={`strategy-details-${s.id}`}
              aria-label={`Details of ${s.name}`}
              onClick={() => onDetails(s.id)}
            >
              Details
            </button>
          )}
          <button
            type="button"
            className={broken ? "danger" : "secondary"}
            data-testid="strategy-flatten"
            aria-label={`Flatten ${s.name}…`}
            onClick={() => onFlatten({ kind: "strategy", strategyId: s.id, name: s.name })}
          >
            Flatten…
          </button>
        </td>
      </tr>
      {open && (
        <tr className="legs-row" id={legsId}>
          <td />
          <td colSpan={6}>
            <table className="legs" data-testid="strategy-legs" aria-label={`Legs of ${s.name}`}>
              <thead>
                <tr>
                  <th scope="col">Leg</th>
                  <th scope="col" className="num">Qty</th>
                  <th scope="col" className="num">Avg</th>
                  <th scope="col" className="num">Mark</th>
                  <th scope="col" className="num">P&amp;L</th>
                  <th scope="col" className="num">Delta</th>
                </tr>
              </thead>
              <tbody>
                {s.legs.map((l, i) => (
                  <tr key={`${l.label}:${i}`} data-testid="strategy-leg">
                    <td>{l.label}</td>
                    <td className={`num mono ${l.qty < 0 ? "neg" : ""}`}>{l.qty > 0 ? `+${l.qty}` : l.qty}</td>
                    <td className="num mono">{l.avgPrice}</td>
                    <td className="num mono">{l.mark ?? <span className="badge warn">no quote</span>}</td>
                    <td className={`num mono ${pnlClass(l.pnl)}`}>{formatMoney(l.pnl, true)}</td>
                    <td className="num mono">{l.delta === null ? "—" : l.delta.toFixed(2)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </td>
        </tr>
      )}
    </Fragment>
  );
},
(a, b) =>
  a.open === b.open &&
  a.onToggle === b.onToggle &&
  a.onFlatten === b.onFlatten &&
  a.onDetails === b.onDetails &&
  sameStrategy(a.s, b.s));

/** Height of a strategy row (fixed in windowed tables by styles.css). */
const STRATEGY_ROW_PX = 36;
/** Height of an expanded legs row: its cell's padding and border, the legs table's margins, and
 *  its rows (header included) at their fixed height in windowed tables (styles.css). */
export const legsRowPx = (legs: number) => 19 + 24 * (legs + 1);

/** One account's strategies; a long list renders only the rows in view. */
function StrategyTable({
  rows,
  onFlatten,
  onDetails,
}: {
  rows: StrategyRow[];
  onFlatten: (r: FlattenRequest) => void;
  onDetails?: (id: string) => void;
}) {
  const [open, setOpen] = useState<ReadonlySet<string>>(() => new Set());
  const onToggle = useCallback(
    (id: string) =>
      setOpen((prev) => {
        const next = new Set(prev);
        if (!next.delete(id)) next.add(id);
        return next;
      }),
    [],
  );
  const extraPx = useMemo(
    () => (open.size === 0 ? undefined : (i: number) => (open.has(rows[i].id) ? legsRowPx(rows[i].legs.length) : 0)),
    [open, rows],
  );
  const w = useRowWindow(rows.length, ":scope > table > tbody > tr.strategy", { rowPx: STRATEGY_ROW_PX, extraPx });
  return (
    <div ref={w.ref} className={w.windowed ? "rows-scroll windowed" : "rows-scroll"} data-testid="strategies-scroll">
      <table className="positions strategies-table" data-total-rows={rows.length}>
        <thead>
          <tr>
            <th scope="col">
              <span className="sr-only">Legs</span>
            </th>
            <th scope="col">Strategy</th>
            <th scope="col">Kind</th>
            <th scope="col">State</th>
            <th scope="col" className="num">Entry credit</th>
            <th scope="col" className="num">P&amp;L</th>
            <th scope="col">
              <span className="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {w.padTop > 0 && <SpacerRow height={w.padTop} cols={7} />}
          {rows.slice(w.start, w.end).map((s) => (
            <StrategyRows key={s.id} s={s} open={open.has(s.id)} onToggle={onToggle} onFlatten={onFlatten} onDetails={onDetails} />
          ))}
          {w.padBottom > 0 && <SpacerRow height={w.padBottom} cols={7} />}
        </tbody>
      </table>
    </div>
  );
}

/**
 * The strategies by account, with their state (Broken ones stand out), and the actions that go
 * through a preview: flatten one strategy, flatten all of an account, switch forced unwind.
 */
export function StrategiesPanel({
  rows,
  error,
  accounts,
  forcedUnwind,
  onFlatten,
  onDetails,
}: {
  rows: StrategyRow[] | null;
  error: IpcError | null;
  /** The portfolio's accounts (an account without strategies can still be flattened). */
  accounts: string[];
  /** Accounts where forced unwind is on (from the guard). */
  forcedUnwind: string[];
  onFlatten: (r: FlattenRequest) => void;
  /** Opens the detail screen of a strategy (by `StrategyRow.id`). */
  onDetails?: (id: string) => void;
}) {
  const names = Array.from(new Set([...accounts, ...(rows ?? []).map((r) => r.account)]));
  return (
    <section className="card wide" aria-labelledby="strategies-title" data-testid="strategies">
      <h2 id="strategies-title">Strategies</h2>
      <ErrorNote error={error} testId="strategies-error" />
      {rows === null && !error && <p className="muted">Reading the strategies…</p>}
      {rows !== null && names.length === 0 && <p className="muted">No account and no strategy yet.</p>}
      {names.map((account) => {
        const mine = (rows ?? []).filter((r) => r.account === account);
        const on = forcedUnwind.includes(account);
        return (
          <section key={account} className="strategy-account" data-testid="strategy-account" data-account={account} aria-label={`Account ${account}`}>
            <div className="row-between account-head">
              <h3>{account}</h3>
              <div className="account-actions">
                <ForcedUnwindSwitch account={account} on={on} onToggle={() => onFlatten({ kind: "forcedUnwind", account, on: !on })} />
                <button
                  type="button"
                  className="danger"
                  data-testid="flatten-all"
                  data-account={account}
                  aria-label={`Flatten all of ${account}…`}
                  onClick={() => onFlatten({ kind: "account", account })}
                >
                  Flatten all…
                </button>
              </div>
            </div>
            {rows !== null && mine.length === 0 ? (
              <p className="muted">No strategy in this account.</p>
            ) : (
              mine.length > 0 && (
                <StrategyTable rows={mine} onFlatten={onFlatten} onDetails={onDetails} />
              )
            )}
          </section>
        );
      })}
    </section>
  );
}
