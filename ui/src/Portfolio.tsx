import { memo, useCallback, useEffect, useState } from "react";
import type { Backend } from "./backend";
import type { ConnectionView, IpcError, PortfolioView, PositionRow, VenueWaiting } from "./bindings";
import { MarginGauge, MarginHistory } from "./Margin";
import { noteCommitted, noteEvent } from "./perfProbe";
import { useRowWindow } from "./useRowWindow";
import { useSubscription } from "./useSubscription";
import { formatEtDateTime, formatGrouped } from "./format";

export function connectionLabel(c: ConnectionView): string {
  switch (c.state) {
    case "connected":
      return "Connected";
    case "connecting":
      return "Connecting…";
    case "disconnected":
      return `Disconnected: ${c.reason}`;
    case "stalled":
      return `Stalled (${(c.silentMs / 1000).toFixed(0)} s without data)`;
    case "unknown":
      return "Unknown";
  }
}

/** "+1,234.50" / "-20.00": signed, grouped, two decimals; exact input string, display rounding only. */
export function formatMoney(s: string | null, signed = false): string {
  if (s === null) return "—";
  const n = Number(s);
  if (!Number.isFinite(n)) return s;
  const body = formatGrouped(Math.abs(n), 2);
  const sign = n < 0 ? "-" : signed && n > 0 ? "+" : "";
  return `${sign}${body}`;
}

function markCell(row: PositionRow) {
  if (row.markStatus === "missing") return <span className="badge warn">no quote</span>;
  const age = row.quoteAgeSecs === null ? "" : `${row.quoteAgeSecs.toFixed(0)} s`;
  return (
    <>
      {row.mark}
      <span className={row.markStatus === "stale" ? "age stale" : "age"} title="quote age (venue time)">
        {row.markStatus === "stale" ? ` stale ${age}` : ` ${age}`}
      </span>
    </>
  );
}

export function pnlClass(s: string | null) {
  if (s === null) return "";
  return Number(s) < 0 ? "neg" : Number(s) > 0 ? "pos" : "";
}

export interface PortfolioState {
  view: PortfolioView | null;
  error: IpcError | null;
}

/** The portfolio as first read, then as pushed by `portfolioChanged`. */
export function usePortfolio(backend: Backend): PortfolioState {
  const [view, setView] = useState<PortfolioView | null>(null);
  const [error, setError] = useState<IpcError | null>(null);

  useEffect(() => {
    let live = true;
    backend.portfolio().then((res) => {
      if (!live) return;
      if (res.status === "ok") setView(res.data);
      else setError(res.error);
    });
    return () => {
      live = false;
    };
  }, [backend]);

  const subscribe = useCallback(
    () =>
      backend.onPortfolio((v) => {
        noteEvent();
        setView(v);
        setError(null);
      }),
    [backend],
  );
  const onSubscribeError = useCallback(
    (e: unknown) => setError({ code: "internal", reason: "ui.subscribe", message: String(e) }),
    [],
  );
  useSubscription(subscribe, onSubscribeError);
  // The benchmark probe: the pushed rows are committed; their paint is the next frame.
  useEffect(() => noteCommitted(), [view]);
  return { view, error };
}

/** The row shows the same thing (each push brings new objects; most rows did not change). */
export function samePosition(a: PositionRow, b: PositionRow): boolean {
  const age = (r: PositionRow) => (r.quoteAgeSecs === null ? null : r.quoteAgeSecs.toFixed(0));
  return (
    a === b ||
    (a.label === b.label &&
      a.qty === b.qty &&
      a.avgCost === b.avgCost &&
      a.mark === b.mark &&
      a.markStatus === b.markStatus &&
      age(a) === age(b) &&
      a.delta === b.delta &&
      a.unrealizedPnl === b.unrealizedPnl)
  );
}

const PositionLine = memo(
  function PositionLine({ p }: { p: PositionRow }) {
    return (
      <tr data-testid="position-row">
        <td>{p.label}</td>
        <td className={`num ${p.qty < 0 ? "neg" : ""}`}>{p.qty > 0 ? `+${p.qty}` : p.qty}</td>
        <td className="num">{p.avgCost}</td>
        <td className="num">{markCell(p)}</td>
        <td className="num">{p.delta === null ? "—" : p.delta.toFixed(2)}</td>
        <td className={`num ${pnlClass(p.unrealizedPnl)}`}>{formatMoney(p.unrealizedPnl, true)}</td>
      </tr>
    );
  },
  (a, b) => samePosition(a.p, b.p),
);

function OwnPortfolioPanel({ backend }: { backend: Backend }) {
  return <PortfolioCard backend={backend} portfolio={usePortfolio(backend)} />;
}

/** The portfolio card; reads the portfolio itself unless the parent shares its own. */
export function PortfolioPanel({ backend, portfolio }: { backend: Backend; portfolio?: PortfolioState }) {
  return portfolio ? <PortfolioCard backend={backend} portfolio={portfolio} /> : <OwnPortfolioPanel backend={backend} />;
}

/** While the app waits for IB Gateway/TWS to come up: the countdown to the next attempt and Retry. */
export function GatewayWait({ backend }: { backend: Backend }) {
  const [wait, setWait] = useState<VenueWaiting | null>(null);
  const subscribe = useCallback(() => backend.onVenueWaiting(setWait), [backend]);
  useSubscription(subscribe, () => {});
  if (!wait) return null;
  return (
    <div className="notice" role="status" data-testid="gateway-wait">
      <p>
        Waiting for IB Gateway/TWS at <strong>{wait.address}</strong>: next attempt in{" "}
        <strong data-testid="gateway-wait-secs">{wait.nextInSecs} s</strong> (attempt {wait.attempt}). Tradeguard
        connects as soon as it is up.
      </p>
      <p className="muted">
        {wait.message} <code>{wait.code}</code>
      </p>
      <button type="button" data-testid="gateway-retry" onClick={() => void backend.retryVenueConnect()}>
        Retry now
      </button>
    </div>
  );
}

function PortfolioCard({ backend, portfolio }: { backend: Backend; portfolio: PortfolioState }) {
  const { view, error } = portfolio;
  if (error && !view) {
    return (
      <section className="card wide">
        <h2>Portfolio</h2>
        <p role="alert" className="error" data-testid="portfolio-error">
          {error.message} <code>{error.reason}</code>
        </p>
        <GatewayWait backend={backend} />
      </section>
    );
  }
  if (!view)
    return (
      <section className="card wide">
        Connecting to the venue…
        <GatewayWait backend={backend} />
      </section>
    );

  return (
    <section className="card wide" aria-labelledby="portfolio-title">
      <div className="row-between">
        <h2 id="portfolio-title">Portfolio</h2>
        <span className="muted" data-testid="venue">
          Venue <strong>{view.venue}</strong> · <span data-testid="connection">{connectionLabel(view.connection)}</span>
          {view.venueTime && <> · {formatEtDateTime(view.venueTime)}</>}
        </span>
      </div>
      {view.accounts.map((a) => (
        <dl className="figures" key={a.account} data-testid="account">
          <div><dt>Account</dt><dd>{a.account}</dd></div>
          <div><dt>Net liquidation</dt><dd>{formatMoney(a.netLiquidation)}</dd></div>
          <div><dt>Maintenance margin</dt><dd>{formatMoney(a.maintenanceMargin)}</dd></div>
          <div><dt>Excess liquidity</dt><dd className={pnlClass(a.excessLiquidity)}>{formatMoney(a.excessLiquidity)}</dd></div>
          <div><dt>Margin used</dt><dd><MarginGauge a={a} /></dd></div>
        </dl>
      ))}
      <MarginHistory backend={backend} view={view} />
      <PositionsTable positions={view.positions} />
      {view.positions.length === 0 && <p className="muted">No open positions.</p>}
      {view.simActions && <SimulatorActions backend={backend} positions={view.positions} />}
    </section>
  );
}

/** The positions; a long list renders only the rows in view (`data-total-rows` counts them all). */
function PositionsTable({ positions }: { positions: PositionRow[] }) {
  const w = useRowWindow(positions.length, 'tbody tr[data-testid="position-row"]');
  return (
    <div ref={w.ref} className={w.windowed ? "rows-scroll windowed" : "rows-scroll"} data-testid="positions-scroll">
      <table className="positions" data-testid="positions" data-total-rows={positions.length}>
        <thead>
          <tr>
            <th>Instrument</th>
            <th className="num">Qty</th>
            <th className="num">Avg cost</th>
            <th className="num">Mark · age</th>
            <th className="num">Delta</th>
            <th className="num">Unrealized P&amp;L</th>
          </tr>
        </thead>
        <tbody>
          {w.padTop > 0 && <SpacerRow height={w.padTop} cols={6} />}
          {positions.slice(w.start, w.end).map((p) => (
            <PositionLine key={p.key} p={p} />
          ))}
          {w.padBottom > 0 && <SpacerRow height={w.padBottom} cols={6} />}
        </tbody>
      </table>
    </div>
  );
}

/** Stands in for the rows outside the window, so the scrollbar shows the whole list. */
export function SpacerRow({ height, cols }: { height: number; cols: number }) {
  return (
    <tr className="spacer" aria-hidden="true" data-testid="spacer-row" style={{ height }}>
      <td colSpan={cols} />
    </tr>
  );
}

/** Simulator only (debug builds: `view.simActions`): assign a short option now, to see the assignment guard act. */
export function SimulatorActions({ backend, positions }: { backend: Backend; positions: PositionRow[] }) {
  const shorts = positions.filter((p) => p.kind === "option" && p.qty < 0);
  const [result, setResult] = useState<string | null>(null);
  const [error, setError] = useState<IpcError | null>(null);
  // The underlyings held (the OCC root of an option symbol, a stock's ticker).
  const underlyings = Array.from(new Set(positions.filter((p) => p.kind !== "future").map((p) => p.instrumentId.slice(0, 6).trim()))).sort();
  if (shorts.length === 0 && underlyings.length === 0) return null;
  const move = async (symbol: string, bps: number) => {
    const res = await backend.simMoveMarket(symbol, bps);
    if (res.status === "ok") {
      setError(null);
      setResult(`${symbol} moved ${bps > 0 ? "+" : "−"}${Math.abs(bps) / 100} % to ${res.data}.`);
    } else {
      setResult(null);
      setError(res.error);
    }
  };
  const assign = async (p: PositionRow) => {
    const res = await backend.simForceAssignment(p.instrumentId, 1);
    if (res.status === "ok") {
      setError(null);
      setResult(`Assigned 1 × ${p.label}: the broker delivers it as a position change, with no execution.`);
    } else {
      setResult(null);
      setError(res.error);
    }
  };
  return (
    <details className="sim-actions" data-testid="sim-actions">
      <summary>Simulator: trigger an assignment, move the market</summary>
      <div className="sim-buttons">
        {shorts.map((p) => (
          <button type="button" key={p.key} data-testid="sim-assign" data-instrument={p.instrumentId} onClick={() => void assign(p)}>
            Assign 1 × {p.label}
          </button>
        ))}
      </div>
      <div className="sim-buttons">
        {underlyings.flatMap((u) =>
          [-300, 300].map((bps) => (
            <button type="button" key={`${u}${bps}`} data-testid="sim-move" data-symbol={u} data-bps={bps} onClick={() => void move(u, bps)}>
              {u} {bps > 0 ? "+" : "−"}
              {Math.abs(bps) / 100} %
            </button>
          )),
        )}
      </div>
      {result && <p className="muted" data-testid="sim-result">{result}</p>}
      {error && (
        <p role="alert" className="error">
          {error.message} <code>{error.reason}</code>
        </p>
      )}
    </details>
  );
}
