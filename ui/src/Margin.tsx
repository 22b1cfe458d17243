import { useEffect, useMemo, useReducer, useState } from "react";
import type uPlot from "uplot";
import { attempt, type Backend } from "./backend";
import type { AccountView, IpcError, MarginSample, PortfolioView } from "./bindings";
import { ErrorNote } from "./ErrorNote";
import { formatRatioPct, formatUsd, localZone } from "./format";
import { marginChartData, marginReducer, samplesFromView, utilisation, type MarginAction } from "./marginHistory";
import { UPlotChart, type ChartOptions } from "./UPlotChart";

/** Margin used = maintenance margin / net liquidation, as a bar, with the excess liquidity. */
export function MarginGauge({ a }: { a: AccountView }) {
  const u = utilisation(a);
  const pct = u === null ? 0 : Math.round(Math.min(1, Math.max(0, u)) * 1000) / 10;
  const level = u === null ? "" : u >= 0.8 ? " high" : u >= 0.5 ? " warn" : "";
  return (
    <div className="margin-gauge" data-testid="margin-gauge">
      <span
        className="gauge-track"
        role="meter"
        aria-label={`Margin used by ${a.account}`}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={pct}
        aria-valuetext={formatRatioPct(u)}
      >
        <span className={`gauge-fill${level}`} style={{ width: `${pct}%` }} />
      </span>
      <span className="age">
        <strong data-testid="margin-used">{formatRatioPct(u)}</strong> used · excess liquidity{" "}
        <span data-testid="margin-excess">{formatUsd(a.excessLiquidity)}</span>
      </span>
    </div>
  );
}

const NO_SAMPLES: MarginSample[] = [];
const reduce = (state: MarginSample[], action: MarginAction) => marginReducer(state, action);

/** Margin history from the backend at mount, then a sample per account from every pushed portfolio. */
export function useMarginHistory(backend: Backend, view: PortfolioView | null) {
  const [samples, dispatch] = useReducer(reduce, NO_SAMPLES);
  const [error, setError] = useState<IpcError | null>(null);
  useEffect(() => {
    let live = true;
    void attempt(() => backend.marginHistory()).then((res) => {
      if (!live) return;
      if (res.status === "ok") dispatch({ kind: "history", samples: res.data });
      else setError(res.error);
    });
    return () => {
      live = false;
    };
  }, [backend]);
  useEffect(() => {
    if (view) dispatch({ kind: "append", samples: samplesFromView(view) });
  }, [view]);
  return { samples, error };
}

/**
 * The time axis' range from the data itself: first to last sample, a minute either side of a single
 * one (uPlot widens a single point's time range to years).
 */
export function timeRange(xs: ArrayLike<number>): [number, number] {
  if (xs.length === 0) return [0, 1];
  const lo = xs[0];
  const hi = xs[xs.length - 1];
  return lo === hi ? [lo - 60, hi + 60] : [lo, hi];
}

const COLOURS = ["#58a6ff", "#d2a8ff", "#3fb950", "#d29922", "#ff7b72"];
const GRID = { stroke: "#1f2a35", width: 1 };

function chartOptions(accounts: string[]): ChartOptions {
  return {
    cursor: { drag: { x: false, y: false } },
    scales: {
      // One sample (just started): a minute either side, not uPlot's years-wide default.
      x: { range: (u) => timeRange(u.data[0]) },
      y: { range: (_u, _min, max) => [0, Math.max(10, Math.ceil((max ?? 0) / 10) * 10)] },
    },
    series: [
      {},
      ...accounts.map((acc, i) => ({
        label: acc,
        stroke: COLOURS[i % COLOURS.length],
        width: 2,
        spanGaps: true,
        value: (_u: uPlot, v: number | null) => (v === null ? "—" : `${v.toFixed(1)} %`),
      })),
    ],
    axes: [
      { stroke: "#8b98a5", grid: GRID, ticks: GRID },
      { stroke: "#8b98a5", grid: GRID, ticks: GRID, size: 50, values: (_u, ticks) => ticks.map((t) => `${t} %`) },
    ],
  };
}

/** Margin utilisation over the last two hours, one line per account. */
export function MarginHistory({ backend, view }: { backend: Backend; view: PortfolioView | null }) {
  const { samples, error } = useMarginHistory(backend, view);
  const accountKey = (view?.accounts ?? []).map((a) => a.account).join("\n");
  const accounts = useMemo(() => (accountKey ? accountKey.split("\n") : []), [accountKey]);
  const options = useMemo(() => chartOptions(accounts), [accounts]);
  const data = useMemo(() => marginChartData(samples, accounts), [samples, accounts]);
  return (
    <div className="margin-chart" data-testid="margin-history">
      <ErrorNote error={error} testId="margin-history-error" />
      {accounts.length > 0 && (
        <UPlotChart options={options} data={data as uPlot.AlignedData} height={160} label={`Margin utilisation over the last two hours (times in ${localZone()})`} />
      )}
      {accounts.length > 0 && <p className="muted chart-note">Times in {localZone()}.</p>}
    </div>
  );
}
