import type { EmergencyCloseView } from "./bindings";
import { formatEtSession } from "./format";

/** "2 h 13 min", "13 min 5 s", "45 s", "1 d 3 h": whole units, rounded down; the venue's seconds. */
export function formatCountdown(secs: number | null): string {
  if (secs === null || !Number.isFinite(secs)) return "—";
  const s = Math.max(0, Math.floor(secs));
  if (s === 0) return "now";
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

function releaseTime(iso: string): string {
  return formatEtSession(iso, false);
}

function headline(c: EmergencyCloseView) {
  switch (c.phase) {
    case "armed":
      return (
        <strong data-testid="emergency-countdown">
          {c.releasesInSecs === null || c.releasesInSecs <= 0
            ? "Emergency close armed — goes out now"
            : `Emergency close armed — goes out in ${formatCountdown(c.releasesInSecs)}`}
        </strong>
      );
    case "working":
      return <strong>Emergency close working — orders are at the broker</strong>;
    case "completed":
      return <strong>Emergency close completed — confirmed by the account's positions</strong>;
    case "failed":
      return <strong>Emergency close failed — a person is needed: close what is left at the broker</strong>;
    default:
      return <strong>Emergency close: {c.phase}</strong>;
  }
}

/**
 * Emergency closes of broken strategies (after an assignment). Armed ones wait for the open and
 * count down in venue time (the value the guard last reported; the dashboard polls every second).
 */
export function EmergencyCloses({ closes }: { closes: EmergencyCloseView[] }) {
  if (closes.length === 0) return null;
  return (
    <section className="card wide" aria-labelledby="emergency-title" data-testid="emergency-closes">
      <h2 id="emergency-title">Emergency closes</h2>
      {closes.map((c) => (
        <article
          key={`${c.account}:${c.strategy}:${c.releaseAt}`}
          className={`emergency ${c.phase}`}
          data-testid="emergency-close"
          data-phase={c.phase}
          role={c.phase === "failed" ? "alert" : undefined}
        >
          <div className="row-between">
            {headline(c)}
            <span className="muted">
              {c.strategy} · {c.account} · {c.phase === "armed" ? "release" : "released"} {releaseTime(c.releaseAt)}
            </span>
          </div>
          {c.how && (
            <p className="muted" data-testid="emergency-how">
              {c.how}
            </p>
          )}
          <ol className="emergency-orders">
            {c.orders.map((o, i) => (
              <li key={i} className={/— failed/.test(o) ? "neg" : /— filled$/.test(o) ? "pos" : undefined}>
                {o}
              </li>
            ))}
          </ol>
        </article>
      ))}
    </section>
  );
}
