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

/**
 * The chart keeps one sample per account in each step of venue time (the newest one), so its
 * memory and redraw cost stay bounded however often portfolios are pushed: 720 points per
 * account over the two-hour window. The demo simulator runs ten venue seconds per wall second
 * and pushes four times a second; a real broker pushes as often at one venue second per second.
 */
export const MARGIN_STEP_MS = 10_000;

const timed = (s: MarginSample[]) => s.filter((x) => x.atMs !== null && Number.isFinite(x.atMs));
const at = (s: MarginSample) => s.atMs as number;
const stepOf = (t: number, stepMs: number) => Math.floor(t / stepMs);

/** Keeps the newest sample of each account in each step (samples are oldest first). */
function thin(samples: MarginSample[], stepMs: number): MarginSample[] {
  const out: MarginSample[] = [];
  for (let i = 0; i < samples.length; i++) {
    const s = samples[i];
    const step = stepOf(at(s), stepMs);
    let newer = false;
    for (let j = i + 1; j < samples.length && stepOf(at(samples[j]), stepMs) === step; j++) {
      if (samples[j].account === s.account) {
        newer = true;
        break;
      }
    }
    if (!newer) out.push(s);
  }
  return out;
}

/** Drops what is older than the window before the newest sample (samples are oldest first). */
function trim(samples: MarginSample[], windowMs: number): MarginSample[] {
  if (samples.length === 0) return samples;
  const from = at(samples[samples.length - 1]) - windowMs;
  const first = samples.findIndex((s) => at(s) >= from);
  return first <= 0 ? samples : samples.slice(first);
}

/**
 * History read at mount, then samples appended from portfolio pushes. Pushes that arrived before
 * the history answer are kept when they are newer than its last sample. Oldest first, at most
 * `windowMs` of them, one per account per `stepMs` (the newest: the chart ends at the live value).
 */
export function marginReducer(state: MarginSample[], action: MarginAction, windowMs = MARGIN_WINDOW_MS, stepMs = MARGIN_STEP_MS): MarginSample[] {
  if (action.kind === "history") {
    const history = timed(action.samples).sort((a, b) => at(a) - at(b));
    const last = history.length ? at(history[history.length - 1]) : -Infinity;
    return trim(thin([...history, ...state.filter((s) => at(s) > last)], stepMs), windowMs);
  }
  const fresh = timed(action.samples);
  if (fresh.length === 0) return state;
  const earliest = Math.min(...fresh.map(at));
  // What the fresh samples replace: the same or a later venue time (a frozen or rewound clock),
  // and the same accounts' samples in the fresh samples' step.
  const accounts = new Set(fresh.map((f) => f.account));
  const step = stepOf(earliest, stepMs);
  let cut = state.length;
  while (cut > 0 && stepOf(at(state[cut - 1]), stepMs) >= step) cut--;
  const kept = state.slice(0, cut);
  for (const s of state.slice(cut)) if (at(s) < earliest && !accounts.has(s.account)) kept.push(s);
  return trim([...kept, ...fresh], windowMs);
}

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
