import { Fragment, useEffect, useState } from "react";
import { attempt, type Backend } from "./backend";
import type { Blotter, BlotterExecution, BlotterGroup, BlotterLeg, BlotterStop, IpcError } from "./bindings";
import { formatAuditTime } from "./AuditScreen";
import { ErrorNote } from "./ErrorNote";
import { formatLocalTime, localZone } from "./format";
import "./orders.css";

/** How long the blotter waits after an answer before it asks again. */
export const BLOTTER_POLL_MS = 1000;

type Polled = { blotter: Blotter | null; error: IpcError | null; asOf: Date | null };

/**
 * The blotter, asked for every `BLOTTER_POLL_MS` while this screen is mounted (visible) and the
 * window is not hidden. The next request is only scheduled once the previous one answered, so
 * requests never overlap. A failed refresh keeps the last good blotter and reports the error.
 */
export function useBlotter(backend: Backend): Polled {
  const [state, setState] = useState<Polled>({ blotter: null, error: null, asOf: null });
  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const next = () => {
      if (live) timer = setTimeout(() => void tick(), BLOTTER_POLL_MS);
    };
    const tick = async () => {
      if (document.hidden) return next();
      const res = await attempt(() => backend.blotter());
      if (!live) return;
      if (res.status === "ok") setState({ blotter: res.data, error: null, asOf: new Date() });
      else setState((s) => ({ ...s, error: res.error }));
      next();
    };
    void tick();
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [backend]);
  return state;
}

/** Colour class of a leg or stop state: done green, failed red, working blue, over grey. */
export function stateTone(state: string): "done" | "failed" | "working" | "over" {
  switch (state) {
    case "filled":
    case "done":
      return "done";
    case "rejected":
    case "failed":
      return "failed";
    case "sent":
    case "partially filled":
    case "working":
    case "cancel pending":
    case "market sent":
      return "working";
    default:
      return "over"; // pending, cancelled, timed out
  }
}

function sideClass(side: string): string {
  return /^b/i.test(side) ? "side buy" : /^s/i.test(side) ? "side sell" : "side";
}

function Side({ side }: { side: string }) {
  return <span className={sideClass(side)}>{side.toUpperCase()}</span>;
}

function StateBadge({ state, testId }: { state: string; testId?: string }) {
  return (
    <span className={`badge order-tone ${stateTone(state)}`} data-testid={testId}>
      {state}
    </span>
  );
}

/** `filled/qty` and a bar; a partial fill is drawn in its own colour. */
export function FillBar({ filled, qty }: { filled: number; qty: number }) {
  const ratio = qty > 0 ? Math.min(1, Math.max(0, filled / qty)) : 0;
  const tone = filled <= 0 ? "none" : filled >= qty ? "full" : "partial";
  return (
    <span className={`fill ${tone}`} data-testid="leg-fill">
      <span className="fill-text">
        {filled}/{qty}
      </span>
      <span className="fill-bar" role="img" aria-label={`${filled} of ${qty} filled`}>
        <span className="fill-done" style={{ width: `${Math.round(ratio * 100)}%` }} />
      </span>
    </span>
  );
}

export function OrdersScreen({ backend }: { backend: Backend }) {
  const { blotter, error, asOf } = useBlotter(backend);
  return (
    <div data-testid="orders-screen">
      <section className="card wide" aria-labelledby="orders-title">
        <div className="row-between">
          <h2 id="orders-title">Orders</h2>
          {asOf && !error && (
            <span className="age" data-testid="orders-as-of">
              Live · {formatLocalTime(asOf)}
            </span>
          )}
        </div>
        <ErrorNote error={error} testId="orders-error" />
        {error && blotter && asOf && (
          <p className="age stale" data-testid="orders-stale">
            Could not refresh: showing the blotter as of {formatLocalTime(asOf)}. Still trying every second.
          </p>
        )}
        {!blotter && !error && <p className="muted">Loading…</p>}
        {blotter && <Groups groups={blotter.groups} />}
      </section>
      {blotter && <Stops stops={blotter.stops} />}
      {blotter && <Executions executions={blotter.executions} error={blotter.executionsError} />}
    </div>
  );
}

const ALL = "";

function Groups({ groups }: { groups: BlotterGroup[] }) {
  const [workingOnly, setWorkingOnly] = useState(false);
  const [purpose, setPurpose] = useState(ALL);
  const [open, setOpen] = useState<ReadonlySet<string>>(new Set());

  const purposes = [...new Set(groups.map((g) => g.purpose))].sort();
  if (purpose !== ALL && !purposes.includes(purpose)) purposes.push(purpose);
  // Live groups first, otherwise the backend's order (newest first).
  const shown = groups
    .filter((g) => (!workingOnly || g.live) && (purpose === ALL || g.purpose === purpose))
    .sort((a, b) => Number(b.live) - Number(a.live));
  const working = groups.filter((g) => g.live).length;

  const toggle = (id: string) =>
    setOpen((prev) => {
      const next = new Set(prev);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });

  return (
    <>
      <h3 className="section-title">
        Order groups{" "}
        <span className="muted" data-testid="groups-count">
          {groups.length} this session · {working} working
        </span>
      </h3>
      {groups.length === 0 ? (
        <p className="muted" data-testid="groups-empty">
          No orders this session. Orders the guard or you send (closes, flattens, stops, rollbacks) appear here.
        </p>
      ) : (
        <>
          <div className="filter-bar">
            <label className="check">
              <input
                type="checkbox"
                data-testid="filter-working"
                checked={workingOnly}
                onChange={(e) => setWorkingOnly(e.target.checked)}
              />
              Working only
            </label>
            <label className="field">
              <span>Purpose</span>
              <select data-testid="filter-purpose" value={purpose} onChange={(e) => setPurpose(e.target.value)}>
                <option value={ALL}>All purposes</option>
                {purposes.map((p) => (
                  <option key={p} value={p}>
                    {p}
                  </option>
                ))}
              </select>
            </label>
          </div>
          {shown.length === 0 ? (
            <p className="muted" data-testid="groups-none-match">
              No order group matches these filters{workingOnly ? " (nothing is working now)" : ""}.
            </p>
          ) : (
            <table className="positions blotter" data-testid="groups">
              <thead>
                <tr>
                  <th aria-label="Expand" />
                  <th>Purpose</th>
                  <th>Account</th>
                  <th>Phase</th>
                  <th>Legs filled</th>
                  <th>Created ({localZone()})</th>
                  <th>Reason</th>
                </tr>
              </thead>
              <tbody>
                {shown.map((g) => (
                  <GroupRow key={g.id} group={g} open={open.has(g.id)} onToggle={() => toggle(g.id)} />
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
    </>
  );
}

function GroupRow({ group: g, open, onToggle }: { group: BlotterGroup; open: boolean; onToggle: () => void }) {
  const filledLegs = g.legs.filter((l) => l.qty > 0 && l.filled >= l.qty).length;
  return (
    <Fragment>
      <tr className={g.live ? "group live" : "group"} data-testid="group" data-group={g.id}>
        <td>
          <button
            type="button"
            className="expander"
            aria-expanded={open}
            aria-label={`${open ? "Hide" : "Show"} the legs of this ${g.purpose} group`}
            data-testid="group-toggle"
            onClick={onToggle}
          >
            {open ? "▾" : "▸"}
          </button>
        </td>
        <td>
          {g.purpose}
          {g.live && (
            <>
              {" "}
              <span className="badge working" data-testid="group-working">
                working
              </span>
            </>
          )}
        </td>
        <td>{g.account}</td>
        <td data-testid="group-phase">{g.phase}</td>
        <td className="num" data-testid="group-legs">
          {filledLegs}/{g.legs.length}
        </td>
        <td className="time" title={g.created}>
          {formatAuditTime(g.created)}
        </td>
        <td>{g.reason ?? <span className="muted">—</span>}</td>
      </tr>
      {open && (
        <tr className="legs-row">
          <td />
          <td colSpan={6}>
            <Legs legs={g.legs} />
          </td>
        </tr>
      )}
    </Fragment>
  );
}

function Legs({ legs }: { legs: BlotterLeg[] }) {
  if (legs.length === 0) return <p className="muted">No legs sent yet.</p>;
  return (
    <table className="legs" data-testid="legs">
      <thead>
        <tr>
          <th>Leg</th>
          <th>Side</th>
          <th className="num">Qty</th>
          <th>Order</th>
          <th>Filled</th>
          <th>State</th>
          <th>Order id</th>
          <th>Reason</th>
        </tr>
      </thead>
      <tbody>
        {legs.map((l, i) => (
          <tr key={`${i}-${l.orderId ?? l.label}`} data-testid="leg" className={`leg ${stateTone(l.state)}`}>
            <td>
              {l.label}
              {l.rollback && (
                <>
                  {" "}
                  <span className="badge rollback" data-testid="leg-rollback">
                    rollback
                  </span>
                </>
              )}
            </td>
            <td>
              <Side side={l.side} />
            </td>
            <td className="num">{l.qty}</td>
            <td className="mono" data-testid="leg-order">
              {l.order}
            </td>
            <td>
              <FillBar filled={l.filled} qty={l.qty} />
            </td>
            <td>
              <StateBadge state={l.state} testId="leg-state" />
            </td>
            <td className="mono">{l.orderId ?? <span className="muted">not sent</span>}</td>
            <td>{l.reason ?? ""}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Stops({ stops }: { stops: BlotterStop[] }) {
  return (
    <section className="card wide" aria-labelledby="stops-title">
      <h2 id="stops-title">Managed stops</h2>
      {stops.length === 0 ? (
        <p className="muted" data-testid="stops-empty">
          No managed stops. Stop-loss rules place them here when they protect a position.
        </p>
      ) : (
        <table className="positions" data-testid="stops">
          <thead>
            <tr>
              <th>Instrument</th>
              <th>Account</th>
              <th>Side</th>
              <th className="num">Qty</th>
              <th className="num">Stop</th>
              <th className="num">Limit</th>
              <th>State</th>
              <th className="num">Filled</th>
            </tr>
          </thead>
          <tbody>
            {stops.map((s) => (
              <tr key={s.id} data-testid="stop">
                <td>{s.label}</td>
                <td>{s.account}</td>
                <td>
                  <Side side={s.side} />
                </td>
                <td className="num">{s.qty}</td>
                <td className="num">{s.stop}</td>
                <td className="num">{s.limit}</td>
                <td>
                  <StateBadge state={s.state} testId="stop-state" />
                </td>
                <td className="num">{s.filled}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function Executions({ executions, error }: { executions: BlotterExecution[]; error: IpcError | null }) {
  return (
    <section className="card wide" aria-labelledby="executions-title">
      <h2 id="executions-title">Executions</h2>
      {error && (
        <>
          <p className="muted">Executions could not be read; the order groups above are still current.</p>
          <ErrorNote error={error} testId="executions-error" />
        </>
      )}
      {executions.length === 0 && !error && (
        <p className="muted" data-testid="executions-empty">
          No executions today.
        </p>
      )}
      {executions.length > 0 && (
        <table className="positions" data-testid="executions">
          <thead>
            <tr>
              <th>Time ({localZone()})</th>
              <th>Instrument</th>
              <th>Side</th>
              <th className="num">Qty</th>
              <th className="num">Price</th>
              <th className="num">Commission</th>
              <th>Order id</th>
            </tr>
          </thead>
          <tbody>
            {executions.map((x) => (
              <tr key={x.execId} data-testid="execution">
                <td className="time" title={x.time}>
                  {formatAuditTime(x.time)}
                </td>
                <td>{x.instrument}</td>
                <td>
                  <Side side={x.side} />
                </td>
                <td className="num">{x.qty}</td>
                <td className="num">{x.price}</td>
                <td className="num">{x.commission}</td>
                <td className="mono">{x.orderId ?? <span className="muted">—</span>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
