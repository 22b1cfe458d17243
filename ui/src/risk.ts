// Pure shaping of a strategy's `RiskView` for the payoff chart and the stress table (tested
// without pixels).
import type { RiskView, StressCellView } from "./bindings";

const finite = (v: number | null | undefined): v is number => typeof v === "number" && Number.isFinite(v);

/** The payoff chart's series: x = underlying price (ascending), P&L at expiry, P&L today. */
export interface PayoffSeries {
  price: number[];
  expiry: (number | null)[];
  today: (number | null)[];
}

/** What a payoff chart draws: the strategy detail's risk view and an entry preview both have it. */
export type PayoffInput = Pick<RiskView, "payoff" | "strikes" | "spot" | "underlying">;

export function payoffSeries(risk: PayoffInput): PayoffSeries {
  const points = risk.payoff.filter((p) => finite(p.spot)).sort((a, b) => (a.spot as number) - (b.spot as number));
  return {
    price: points.map((p) => p.spot as number),
    expiry: points.map((p) => (finite(p.pnlExpiry) ? p.pnlExpiry : null)),
    today: points.map((p) => (finite(p.pnlToday) ? p.pnlToday : null)),
  };
}

/** Vertical markers: the spot and each strike (ascending, without repeats). */
export interface PayoffMarkers {
  spot: number | null;
  strikes: number[];
}

export function payoffMarkers(risk: PayoffInput): PayoffMarkers {
  const strikes = Array.from(new Set(risk.strikes.filter(finite))).sort((a, b) => a - b);
  return { spot: finite(risk.spot) ? risk.spot : null, strikes };
}

/** Multipliers are compared with a little slack (they travel as floats). */
const same = (a: number | null, b: number | null) => finite(a) && finite(b) && Math.abs(a - b) < 1e-9;

/** What closing the strategy in a scenario makes (+) or loses (−): `-loss`. */
export function cellPnl(c: StressCellView): number | null {
  return finite(c.loss) ? -c.loss : null;
}

export interface StressRow {
  volMult: number;
  cells: (StressCellView | null)[];
}

/** The grid for one spread multiplier: rows = IV multipliers, columns = price moves. */
export interface StressTableData {
  moves: number[];
  rows: StressRow[];
  /** Largest |P&L| over the whole grid (every spread multiplier): one colour scale for all. */
  scale: number;
}

export function stressTable(risk: RiskView, spreadMult: number): StressTableData {
  const moves = risk.movesPct.filter(finite);
  const vols = risk.volMults.filter(finite);
  const find = (move: number, vol: number) =>
    risk.cells.find((c) => same(c.movePct, move) && same(c.volMult, vol) && same(c.spreadMult, spreadMult)) ?? null;
  const scale = risk.cells.reduce((m, c) => Math.max(m, Math.abs(cellPnl(c) ?? 0)), 0);
  return { moves, rows: vols.map((volMult) => ({ volMult, cells: moves.map((m) => find(m, volMult)) })), scale };
}

/** The cell is the backend's worst case of the whole grid. */
export function isWorst(c: StressCellView, worst: StressCellView): boolean {
  return same(c.movePct, worst.movePct) && same(c.volMult, worst.volMult) && same(c.spreadMult, worst.spreadMult);
}

/** Cell background: green for a gain, red for a loss, stronger with size (text stays light). */
export function heatColour(pnl: number | null, scale: number): string {
  if (pnl === null || scale <= 0) return "transparent";
  const t = Math.min(1, Math.abs(pnl) / scale);
  const alpha = (0.12 + 0.6 * t).toFixed(2);
  return pnl < 0 ? `rgba(248, 81, 73, ${alpha})` : `rgba(63, 185, 80, ${alpha})`;
}
