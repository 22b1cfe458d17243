// Number formatting for a trader: dollars with separators, signed P&L, percentages.
//
// Every Intl formatter here is built once and kept. Building one is expensive (the engine
// loads locale and time-zone data for it), and `toLocaleString` with options builds a new one
// per call: at four updates a second that churned the webview's memory by tens of megabytes.

const grouped = new Map<number, Intl.NumberFormat>();

/** 1234.5 → "1,234.50" with `digits` decimals (en-US grouping; the sign is the caller's). */
export function formatGrouped(n: number, digits: number): string {
  let f = grouped.get(digits);
  if (!f) {
    f = new Intl.NumberFormat("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
    grouped.set(digits, f);
  }
  return f.format(n);
}

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
  const body = formatGrouped(Math.abs(n), opts.whole ? 0 : 2);
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
  const body = formatGrouped(Math.abs(n), digits);
  const zero = body.replace(/[0.,]/g, "") === "";
  return `${zero ? "" : n < 0 ? "−" : "+"}${body}`;
}

/**
 * The time zone the app's clock times are shown in (the machine's own, as `Date` and uPlot use
 * it), for column headers: "UTC", "Europe/London". Market times are shown in ET and say so.
 */
export function localZone(): string {
  zone ??= readLocalZone();
  return zone;
}

let zone: string | undefined;

/** What [`localZone`] reads once and keeps. */
export function readLocalZone(): string {
  try {
    const z = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (!z) return "local time";
    return z === "Etc/UTC" || z === "UTC" || z === "Etc/GMT" ? "UTC" : z;
  } catch {
    return "local time";
  }
}

const ET = "America/New_York";
const dateTimeFormats = new Map<string, Intl.DateTimeFormat>();

function dateTimeFormat(key: string, options: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  let f = dateTimeFormats.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", options);
    dateTimeFormats.set(key, f);
  }
  return f;
}

/** A date or time (ms since the epoch or an ISO string) in a kept formatter; the input as given when it is not a date. */
function formatWith(t: number | string, key: string, options: Intl.DateTimeFormatOptions): string {
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return String(t);
  return dateTimeFormat(key, options).format(d);
}

/** Market time in New York: "3/4/2025, 10:01:17 AM ET". */
export function formatEtDateTime(t: number | string): string {
  return `${formatWith(t, "et-datetime", { timeZone: ET, year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "2-digit", second: "2-digit" })} ET`;
}

/** Market clock time in New York: "10:01:17 AM ET". */
export function formatEtTime(t: number | string): string {
  return `${formatWith(t, "et-time", { timeZone: ET, hour: "numeric", minute: "2-digit", second: "2-digit" })} ET`;
}

/** A market session in New York: "Tue, Mar 4, 09:30 AM ET" (`withDate` false: "Tue 09:30 AM ET"). */
export function formatEtSession(t: number | string, withDate = true): string {
  const options: Intl.DateTimeFormatOptions = withDate
    ? { timeZone: ET, weekday: "short", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" }
    : { timeZone: ET, weekday: "short", hour: "2-digit", minute: "2-digit" };
  return `${formatWith(t, withDate ? "et-session-date" : "et-session", options)} ET`;
}

/** Clock time in the machine's zone: "10:01:17 AM". */
export function formatLocalTime(t: number | string | Date): string {
  return formatWith(t instanceof Date ? t.getTime() : t, "local-time", { hour: "numeric", minute: "2-digit", second: "2-digit" });
}

/** Date and time in the machine's zone: "3/4/2025, 10:01:17 AM". */
export function formatLocalDateTime(t: number | string): string {
  return formatWith(t, "local-datetime", { year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "2-digit", second: "2-digit" });
}
