// Number formatting for a trader: dollars with separators, signed P&L, percentages.

const usd = (digits: number) =>
  new Intl.NumberFormat("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
const USD2 = usd(2);
const USD0 = usd(0);

/** Decimal strings (money from the backend) and numbers alike; `null` for anything not a finite number. */
export function toNumber(v: number | string | null | undefined): number | null {
  if (v === null || v === undefined || v === "") return null;
  const n = typeof v === "number" ? v : Number(v);
  return Number.isFinite(n) ? n : null;
}

/**
 * "$1,234.50", "−$20.00"; `signed` adds "+" to gains (P&L). `whole` drops the cents (charts,
 * large figures). Anything not a number shows "—".
 */
export function formatUsd(v: number | string | null | undefined, opts: { signed?: boolean; whole?: boolean } = {}): string {
  const n = toNumber(v);
  if (n === null) return "—";
  const body = (opts.whole ? USD0 : USD2).format(Math.abs(n));
  const zero = body.replace(/[0.,]/g, "") === "";
  const sign = zero ? "" : n < 0 ? "−" : opts.signed ? "+" : "";
  return `${sign}$${body}`;
}

/** 0.1234 → "12.3 %" (a ratio, not percent points). */
export function formatRatioPct(r: number | null | undefined, digits = 1): string {
  if (r === null || r === undefined || !Number.isFinite(r)) return "—";
  return `${(r * 100).toFixed(digits)} %`;
}

/** -1.5 → "−1.5 %", 3 → "+3 %" (percent points, signed: a price move). */
export function formatMovePct(p: number | null | undefined): string {
  if (p === null || p === undefined || !Number.isFinite(p)) return "—";
  const body = Number.isInteger(p) ? Math.abs(p).toString() : Math.abs(p).toFixed(1);
  return `${p < 0 ? "−" : p > 0 ? "+" : ""}${body} %`;
}

/** 1.3 → "×1.3" (a multiplier). */
export function formatMult(m: number | null | undefined): string {
  if (m === null || m === undefined || !Number.isFinite(m)) return "—";
  return `×${m.toFixed(1)}`;
}

/** Signed number with fixed digits: 12.345 → "+12.35"; `null` → "—". */
export function formatSigned(n: number | null | undefined, digits = 2): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "—";
  const body = Math.abs(n).toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  const zero = body.replace(/[0.,]/g, "") === "";
  return `${zero ? "" : n < 0 ? "−" : "+"}${body}`;
}

/**
 * The time zone the app's clock times are shown in (the machine's own, as `Date` and uPlot use
 * it), for column headers: "UTC", "Europe/London". Market times are shown in ET and say so.
 */
export function localZone(): string {
  try {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (!zone) return "local time";
    return zone === "Etc/UTC" || zone === "UTC" || zone === "Etc/GMT" ? "UTC" : zone;
  } catch {
    return "local time";
  }
}
