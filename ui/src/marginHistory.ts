// Margin use over time (pure): samples from the backend's history and from pushed portfolios.
import type { AccountView, MarginSample, PortfolioView } from "./bindings";
import { toNumber } from "./format";

/** The chart keeps this much history (the newest sample's time minus two hours). */
export const MARGIN_WINDOW_MS = 2 * 60 * 60 * 1000;

/** Maintenance margin / net liquidation; 0 when net liquidation is not positive (as the backend). */
export function utilisation(a: AccountView): number | null {
  const nl = toNumber(a.netLiquidation);
  const mm = toNumber(a.maintenanceMargin);
  if (nl === null || mm === null) return null;
  return nl > 0 ? mm / nl : 0;
}

/** One sample per account of a pushed portfolio, at the venue's time (else now). */
export function samplesFromView(view: PortfolioView, now = Date.now()): MarginSample[] {
  const venue = view.venueTime ? Date.parse(view.venueTime) : NaN;
  const atMs = Number.isFinite(venue) ? venue : now;
  return view.accounts.map((a) => ({
    account: a.account,
    atMs,
    netLiquidation: toNumber(a.netLiquidation),
    maintenanceMargin: toNumber(a.maintenanceMargin),
    excessLiquidity: toNumber(a.excessLiquidity),
    utilisation: utilisation(a),
  }));
}

export type MarginAction = { kind: "history"; samples: MarginSample[] } | { kind: "append"; samples: MarginSample[] };

const timed = (s: MarginSample[]) => s.filter((x) => x.atMs !== null && Number.isFinite(x.atMs));

/** Drops what is older than the window before the newest sample (samples are oldest first). */
function trim(samples: MarginSample[], windowMs: number): MarginSample[] {
  if (samples.length === 0) return samples;
  const from = (samples[samples.length - 1].atMs as number) - windowMs;
  const first = samples.findIndex((s) => (s.atMs as number) >= from);
  return first <= 0 ? samples : samples.slice(first);
}

/**
 * History read at mount, then samples appended from portfolio pushes. Pushes that arrived before
 * the history answer are kept when they are newer than its last sample. Oldest first, at most
 * `windowMs` of them.
 */
export function marginReducer(state: MarginSample[], action: MarginAction, windowMs = MARGIN_WINDOW_MS): MarginSample[] {
  if (action.kind === "history") {
    const history = timed(action.samples).sort((a, b) => (a.atMs as number) - (b.atMs as number));
    const last = history.length ? (history[history.length - 1].atMs as number) : -Infinity;
    return trim([...history, ...state.filter((s) => (s.atMs as number) > last)], windowMs);
  }
  const fresh = timed(action.samples);
  if (fresh.length === 0) return state;
  const last = state.length ? (state[state.length - 1].atMs as number) : -Infinity;
  // A push at the same venue time as the last one (a frozen clock) replaces it.
  const kept = fresh.every((s) => (s.atMs as number) > last) ? state : state.filter((s) => (s.atMs as number) < Math.min(...fresh.map((f) => f.atMs as number)));
  return trim([...kept, ...fresh], windowMs);
}

/** uPlot data: x = seconds since the epoch (ascending), one utilisation series (%) per account. */
export function marginChartData(samples: MarginSample[], accounts: string[]): [number[], ...(number | null)[][]] {
  const byTime = new Map<number, Map<string, number | null>>();
  for (const s of samples) {
    const t = s.atMs as number;
    let row = byTime.get(t);
    if (!row) byTime.set(t, (row = new Map()));
    row.set(s.account, s.utilisation === null ? null : s.utilisation * 100);
  }
  const times = Array.from(byTime.keys()).sort((a, b) => a - b);
  return [times.map((t) => t / 1000), ...accounts.map((acc) => times.map((t) => byTime.get(t)?.get(acc) ?? null))];
}
