import { useEffect, useState } from "react";
import { attempt, type Backend } from "./backend";
import type { ChainRowView, EntryPreviewView, IpcError, OptionChainView, TicketInput, TicketLegInput } from "./bindings";
import { ConfirmDialog } from "./ConfirmDialog";
import { ErrorNote } from "./ErrorNote";
import { formatUsd } from "./format";
import { PayoffChart } from "./PayoffChart";
import "./trade.css";

/** How long the chain waits after an answer before it asks again. */
export const CHAIN_POLL_MS = 1000;
/** Strikes shown around the price. */
export const CHAIN_STRIKES = 24;

export const TEMPLATES = [
  { id: "iron_condor", label: "Iron condor" },
  { id: "vertical", label: "Vertical" },
  { id: "strangle", label: "Strangle" },
  { id: "straddle", label: "Straddle" },
  { id: "butterfly", label: "Butterfly" },
  { id: "calendar", label: "Calendar" },
  { id: "covered_call", label: "Covered call" },
  { id: "cash_secured_put", label: "Cash-secured put" },
  { id: "custom", label: "Custom (up to 4 legs)" },
] as const;
export type TemplateId = (typeof TEMPLATES)[number]["id"];

export type Right = "call" | "put";
export type Side = "buy" | "sell";
/** A leg on the ticket: what the backend gets, plus what the trader reads. */
export type Leg = TicketLegInput & { label: string; right: Right | null };

/** The instrument of `right` at `strike` in the chain shown, or why not. */
function find(rows: ChainRowView[], strike: number, right: Right): { id: string; label: string } | string {
  const row = rows.find((r) => Math.abs(Number(r.strike) - strike) < 1e-6);
  if (!row) return `strike ${strike} is not in the chain shown`;
  return { id: row[right].instrument, label: `${strike} ${right === "call" ? "C" : "P"}` };
}

/**
 * The legs a click on the chain makes for a template: `strike`, `right` and `side` of the cell
 * clicked (the bid sells, the ask buys), `width` the wing distance. Templates of several legs keep
 * the legs of the other right already on the ticket (an iron condor is a click on a put bid and a
 * click on a call bid). Custom and calendar add the clicked leg. An error says what is missing.
 */
export function clickLegs(
  template: TemplateId,
  legs: Leg[],
  rows: ChainRowView[],
  expiry: string,
  underlying: string,
  strike: number,
  right: Right,
  side: Side,
  width: number,
): Leg[] | string {
  const leg = (k: number, r: Right, s: Side, ratio = 1): Leg | string => {
    const f = find(rows, k, r);
    return typeof f === "string" ? f : { instrument: f.id, side: s, ratio, right: r, label: `${s === "buy" ? "Buy" : "Sell"} ${ratio} ${underlying} ${expiry} ${f.label}` };
  };
  const all = (xs: (Leg | string)[]): Leg[] | string => {
    const bad = xs.find((x) => typeof x === "string");
    return typeof bad === "string" ? bad : (xs as Leg[]);
  };
  const isRight = (l: Leg, r: Right) => l.right === r;
  const away = right === "put" ? -width : width;
  switch (template) {
    case "iron_condor": {
      const other = legs.filter((l) => !isRight(l, right));
      const mine = all([leg(strike + away, right, "buy"), leg(strike, right, "sell")]);
      return typeof mine === "string" ? mine : [...other, ...mine];
    }
    case "vertical":
      return all(side === "sell" ? [leg(strike + away, right, "buy"), leg(strike, right, "sell")] : [leg(strike, right, "buy"), leg(strike + away, right, "sell")]);
    case "strangle": {
      const other = legs.filter((l) => !isRight(l, right) && l.side === side);
      const mine = leg(strike, right, side);
      return typeof mine === "string" ? mine : [...other, mine];
    }
    case "straddle":
      return all([leg(strike, "put", side), leg(strike, "call", side)]);
    case "butterfly":
      return all([leg(strike - width, right, "buy"), leg(strike, right, "sell", 2), leg(strike + width, right, "buy")]);
    case "covered_call":
      if (right !== "call") return "a covered call sells a call: click a call's bid";
      return all([{ instrument: underlying, side: "buy", ratio: 100, right: null, label: `Buy 100 ${underlying}` }, leg(strike, "call", "sell")]);
    case "cash_secured_put":
      if (right !== "put") return "a cash-secured put sells a put: click a put's bid";
      return all([leg(strike, "put", "sell")]);
    case "calendar":
    case "custom": {
      const mine = leg(strike, right, side);
      if (typeof mine === "string") return mine;
      if (legs.some((l) => l.instrument === mine.instrument)) return `${mine.label} is on the ticket already`;
      if (legs.length >= 4) return "a ticket has at most 4 legs";
      return [...legs, mine];
    }
  }
}

type Chain = { chain: OptionChainView | null; error: IpcError | null };

/** The chain, asked for every `CHAIN_POLL_MS` while the screen is shown; requests never overlap. */
function useChain(backend: Backend, underlying: string, expiry: string): Chain {
  const [state, setState] = useState<Chain>({ chain: null, error: null });
  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async () => {
      if (!document.hidden && underlying.trim() !== "") {
        const res = await attempt(() => backend.optionChain(underlying, expiry, CHAIN_STRIKES));
        if (!live) return;
        if (res.status === "ok") setState({ chain: res.data, error: null });
        else setState((s) => ({ ...s, error: res.error }));
      }
      if (live) timer = setTimeout(() => void tick(), CHAIN_POLL_MS);
    };
    void tick();
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [backend, underlying, expiry]);
  return state;
}

const pct = (v: number | null) => (v === null ? "—" : `${(v * 100).toFixed(1)}%`);
const num = (v: number | null, d = 2) => (v === null ? "—" : v.toFixed(d));

function Quote({ value, testId, onClick, title }: { value: string | null; testId: string; onClick: () => void; title: string }) {
  return (
    <td className="quote">
      <button type="button" className="quote-cell" data-testid={testId} disabled={value === null} onClick={onClick} title={title}>
        {value ?? "—"}
      </button>
    </td>
  );
}

function ChainTable({ chain, onPick }: { chain: OptionChainView; onPick: (strike: number, right: Right, side: Side) => void }) {
  const spot = chain.spot === null ? null : Number(chain.spot);
  return (
    <table className="chain" data-testid="chain-table">
      <thead>
        <tr>
          <th colSpan={4}>Calls</th>
          <th />
          <th colSpan={4}>Puts</th>
        </tr>
        <tr>
          <th>Δ</th>
          <th>IV</th>
          <th>Bid</th>
          <th>Ask</th>
          <th>Strike</th>
          <th>Bid</th>
          <th>Ask</th>
          <th>IV</th>
          <th>Δ</th>
        </tr>
      </thead>
      <tbody>
        {chain.rows.map((r) => {
          const k = Number(r.strike);
          const itmCall = spot !== null && k < spot;
          return (
            <tr key={r.strike} data-testid={`chain-row-${k}`}>
              <td className={itmCall ? "itm" : ""}>{num(r.call.delta)}</td>
              <td className={itmCall ? "itm" : ""}>{pct(r.call.iv)}</td>
              <Quote value={r.call.bid} testId={`chain-${k}-call-bid`} title="sell this call" onClick={() => onPick(k, "call", "sell")} />
              <Quote value={r.call.ask} testId={`chain-${k}-call-ask`} title="buy this call" onClick={() => onPick(k, "call", "buy")} />
              <th className="strike">{r.strike}</th>
              <Quote value={r.put.bid} testId={`chain-${k}-put-bid`} title="sell this put" onClick={() => onPick(k, "put", "sell")} />
              <Quote value={r.put.ask} testId={`chain-${k}-put-ask`} title="buy this put" onClick={() => onPick(k, "put", "buy")} />
              <td className={!itmCall ? "itm" : ""}>{pct(r.put.iv)}</td>
              <td className={!itmCall ? "itm" : ""}>{num(r.put.delta)}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function PreviewBody({ p }: { p: EntryPreviewView }) {
  return (
    <div className="entry-preview">
      <p>
        Account <strong>{p.account}</strong> · net <strong data-testid="entry-net">{p.netLabel}</strong> per share · cash{" "}
        {formatUsd(p.netCash, { signed: true })}
      </p>
      <table className="entry-orders" data-testid="entry-orders">
        <thead>
          <tr>
            <th>Step</th>
            <th>Side</th>
            <th>Qty</th>
            <th>Contract</th>
            <th>Limit</th>
            <th>Bid × Ask</th>
          </tr>
        </thead>
        <tbody>
          {p.orders.map((o, i) => (
            <tr key={i} data-testid="entry-order" data-step={o.step} data-side={o.side} data-qty={o.qty} data-label={o.label}>
              <td>{o.step}</td>
              <td>{o.side}</td>
              <td>{o.qty}</td>
              <td>{o.label}</td>
              <td>{o.limit}</td>
              <td>
                {o.bid ?? "—"} × {o.ask ?? "—"}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {p.exits.length > 0 && (
        <p data-testid="entry-exits">
          Attached: <strong>{p.exits.join(" · ")}</strong>
        </p>
      )}
      <ul className="entry-plan">
        {p.plan.map((l) => (
          <li key={l}>{l}</li>
        ))}
      </ul>
      <div className="entry-chart">
        <PayoffChart risk={p} />
      </div>
      <dl className="entry-figures" data-testid="entry-figures">
        <dt>Max profit</dt>
        <dd>{p.maxProfit === null ? "unbounded" : formatUsd(p.maxProfit)}</dd>
        <dt>Max loss</dt>
        <dd data-testid="entry-max-loss">{p.maxLoss === null ? "unbounded" : formatUsd(p.maxLoss)}</dd>
        <dt>Breakevens</dt>
        <dd>{p.breakevens.length === 0 ? "none" : p.breakevens.map((b) => num(b)).join(" · ")}</dd>
        <dt>Probability of profit</dt>
        <dd>
          {p.probabilityOfProfit === null ? "—" : `${(p.probabilityOfProfit * 100).toFixed(1)}%`} <span className="muted">(model{p.profileExact ? "" : ", from a grid"})</span>
        </dd>
        <dt>Margin</dt>
        <dd data-testid="entry-margin">
          {formatUsd(p.marginGross)} <span className="muted">({p.marginSource})</span>
        </dd>
        <dt>Stress</dt>
        <dd data-testid="entry-stress">
          {p.stress.error !== null
            ? p.stress.error
            : `worst case ${formatUsd(p.stress.worstCase)} (${p.stress.scenario}) against ${p.stress.pct}% of available funds: ${formatUsd(p.stress.limit)}`}
        </dd>
      </dl>
      <p className={p.passes ? "verdict pass" : "verdict refuse"} data-testid="entry-verdict">
        {p.passes ? "The pre-trade gate would pass this order now." : `The pre-trade gate would refuse it: ${p.refusal}`}
      </p>
      <p className="muted">This preview is good for {Math.max(0, Math.floor(p.expiresInSecs ?? 0))} s; nothing has been sent.</p>
    </div>
  );
}

/** The Trade screen: the venue's chain, a ticket filled from it, preview, then place. */
export function TradeScreen({ backend }: { backend: Backend }) {
  const [underlying, setUnderlying] = useState("SPY");
  const [typed, setTyped] = useState("SPY");
  const [expiry, setExpiry] = useState("");
  const { chain, error } = useChain(backend, underlying, expiry);
  const [template, setTemplate] = useState<TemplateId>("iron_condor");
  const [width, setWidth] = useState("10");
  const [legs, setLegs] = useState<Leg[]>([]);
  const [quantity, setQuantity] = useState("1");
  const [limit, setLimit] = useState<"mid" | "natural" | "custom">("mid");
  const [net, setNet] = useState("");
  const [tif, setTif] = useState<"day" | "gtc">("day");
  const [stop, setStop] = useState("");
  const [target, setTarget] = useState("");
  const [note, setNote] = useState<string | null>(null);
  const [previewError, setPreviewError] = useState<IpcError | null>(null);
  const [preview, setPreview] = useState<EntryPreviewView | null>(null);
  const [placed, setPlaced] = useState<string | null>(null);
  const shownExpiry = chain?.expiry ?? expiry;

  const pick = (strike: number, right: Right, side: Side) => {
    if (!chain) return;
    const w = Number(width);
    const next = clickLegs(template, legs, chain.rows, chain.expiry, chain.underlying, strike, right, side, Number.isFinite(w) && w > 0 ? w : 5);
    if (typeof next === "string") setNote(next);
    else {
      setNote(null);
      setLegs(next);
    }
  };

  const ticket = (): TicketInput => ({
    account: chain?.account ?? "",
    template,
    legs: legs.map(({ instrument, side, ratio }) => ({ instrument, side, ratio })),
    quantity: Math.trunc(Number(quantity)),
    limit,
    net: limit === "custom" ? net : null,
    tif,
    stopLossMultiple: stop.trim() === "" ? null : stop.trim(),
    profitTargetPct: target.trim() === "" ? null : Math.trunc(Number(target)),
  });

  const askPreview = async () => {
    setPreviewError(null);
    setPlaced(null);
    const res = await attempt(() => backend.previewEntry(ticket()));
    if (res.status === "ok") setPreview(res.data);
    else setPreviewError(res.error);
  };

  return (
    <section className="trade" aria-label="Trade">
      <div className="trade-bar">
        <form
          onSubmit={(e) => {
            e.preventDefault();
            setUnderlying(typed.trim().toUpperCase());
            setExpiry("");
            setLegs([]);
          }}
        >
          <label>
            Underlying <input data-testid="trade-underlying" value={typed} onChange={(e) => setTyped(e.target.value)} size={8} />
          </label>{" "}
          <button type="submit">Show chain</button>
        </form>
        <label>
          Expiry{" "}
          <select data-testid="trade-expiry" value={shownExpiry} onChange={(e) => setExpiry(e.target.value)}>
            {(chain?.expiries ?? []).map((d) => (
              <option key={d} value={d}>
                {d}
              </option>
            ))}
          </select>
        </label>
        <span className="muted" data-testid="trade-spot">
          {chain ? `${chain.underlying} ${chain.spot ?? "—"}` : "loading…"}
        </span>
      </div>
      <ErrorNote error={error} testId="chain-error" />
      <div className="trade-body">
        <div className="chain-wrap">{chain && <ChainTable chain={chain} onPick={pick} />}</div>
        <form
          className="ticket"
          data-testid="ticket"
          onSubmit={(e) => {
            e.preventDefault();
            void askPreview();
          }}
        >
          <h3>Ticket</h3>
          <label>
            Strategy{" "}
            <select
              data-testid="ticket-template"
              value={template}
              onChange={(e) => {
                setTemplate(e.target.value as TemplateId);
                setLegs([]);
              }}
            >
              {TEMPLATES.map((t) => (
                <option key={t.id} value={t.id}>
                  {t.label}
                </option>
              ))}
            </select>
          </label>
          <label>
            Wing width <input data-testid="ticket-width" value={width} onChange={(e) => setWidth(e.target.value)} size={4} />
          </label>
          <p className="muted">Click a bid to sell, an ask to buy; the template adds the wings.</p>
          {note && (
            <p className="note" role="status" data-testid="ticket-note">
              {note}
            </p>
          )}
          <ul className="ticket-legs" data-testid="ticket-legs">
            {legs.map((l) => (
              <li key={l.instrument}>
                {l.label}{" "}
                <button type="button" onClick={() => setLegs(legs.filter((x) => x.instrument !== l.instrument))} aria-label={`remove ${l.label}`}>
                  ×
                </button>
              </li>
            ))}
            {legs.length === 0 && <li className="muted">no legs yet</li>}
          </ul>
          <label>
            Quantity <input data-testid="ticket-qty" value={quantity} onChange={(e) => setQuantity(e.target.value)} size={4} />
          </label>
          <label>
            Price{" "}
            <select data-testid="ticket-limit" value={limit} onChange={(e) => setLimit(e.target.value as typeof limit)}>
              <option value="mid">Mid</option>
              <option value="natural">Natural</option>
              <option value="custom">Custom net</option>
            </select>
          </label>
          {limit === "custom" && (
            <label>
              Net per share (credit negative) <input data-testid="ticket-net" value={net} onChange={(e) => setNet(e.target.value)} size={6} />
            </label>
          )}
          <label>
            Time in force{" "}
            <select data-testid="ticket-tif" value={tif} onChange={(e) => setTif(e.target.value as typeof tif)}>
              <option value="day">Day</option>
              <option value="gtc">GTC</option>
            </select>
          </label>
          <fieldset className="ticket-exits">
            <legend>Exits attached to the strategy</legend>
            <label>
              Stop-loss at a loss of <input data-testid="ticket-stop" value={stop} onChange={(e) => setStop(e.target.value)} size={4} placeholder="—" /> × the
              credit (hybrid exit)
            </label>
            <label>
              Profit target at <input data-testid="ticket-target" value={target} onChange={(e) => setTarget(e.target.value)} size={4} placeholder="—" /> % of
              the credit
            </label>
          </fieldset>
          <button type="submit" data-testid="ticket-preview" disabled={legs.length === 0}>
            Preview…
          </button>
          <ErrorNote error={previewError} testId="ticket-error" />
          {placed && (
            <p className="placed" role="status" data-testid="entry-placed">
              {placed}
            </p>
          )}
        </form>
      </div>
      {preview && (
        <ConfirmDialog
          title={preview.title}
          confirmLabel="Place order"
          busyLabel="Placing…"
          canConfirm={preview.passes}
          testId="entry-preview"
          confirmTestId="entry-preview-confirm"
          cancelTestId="entry-preview-cancel"
          onCancel={() => setPreview(null)}
          onConfirm={async () => {
            const res = await attempt(() => backend.placeEntry(preview.id));
            if (res.status === "ok") {
              setPlaced(`Placed as group ${res.data.group}: follow it on the Orders screen.`);
              setLegs([]);
              return { status: "ok" };
            }
            return { status: "error", error: res.error };
          }}
          onConfirmed={() => setPreview(null)}
        >
          <PreviewBody p={preview} />
        </ConfirmDialog>
      )}
    </section>
  );
}
