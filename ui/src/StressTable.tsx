import { memo, useMemo, useState } from "react";
import type { RiskView, StressCellView } from "./bindings";
import { formatMovePct, formatMult, formatUsd } from "./format";
import { cellPnl, heatColour, isWorst, stressTable } from "./risk";

/** "Worst case: −$1,900.00 at move −15 %, IV ×1.5, spreads ×2.0". */
export function worstCaseText(w: StressCellView): string {
  const pnl = cellPnl(w);
  return `Worst case: ${formatUsd(pnl, { signed: true })} at move ${formatMovePct(w.movePct)}, IV ${formatMult(w.volMult)}, spreads ${formatMult(w.spreadMult)}`;
}

function BufferNote({ worst, buffer, exceeds }: { worst: StressCellView; buffer: number | null; exceeds: boolean | null }) {
  if (buffer === null || exceeds === null) return <span className="muted">margin buffer unknown</span>;
  if (!exceeds) return <span className="pos">margin buffer {formatUsd(buffer)}: covered</span>;
  return (
    <strong className="neg" data-testid="stress-exceeds">
      exceeds the margin buffer by {formatUsd((worst.loss ?? 0) - buffer)}
    </strong>
  );
}

function SpreadChoice({ mults, value, onChange }: { mults: number[]; value: number; onChange: (m: number) => void }) {
  return (
    <div className="segmented" role="radiogroup" aria-label="Spread multiplier">
      {mults.map((m) => (
        <button
          key={m}
          type="button"
          role="radio"
          aria-checked={m === value}
          className={m === value ? "segment current" : "segment"}
          data-testid={`spread-${m}`}
          onClick={() => onChange(m)}
        >
          {formatMult(m)}
        </button>
      ))}
    </div>
  );
}

/**
 * The stress grid as a heat table: what closing the strategy would make or lose for each price
 * move and IV multiplier, at the chosen bid/ask spread multiplier; the worst case of the whole
 * grid against the account's margin buffer.
 */
export const StressTable = memo(function StressTable({
  risk,
  marginBuffer,
  worstExceedsBuffer,
}: {
  risk: RiskView;
  marginBuffer: number | null;
  worstExceedsBuffer: boolean | null;
}) {
  const mults = risk.spreadMults.filter((m): m is number => m !== null && Number.isFinite(m));
  const [chosen, setChosen] = useState<number>(mults.includes(1) ? 1 : mults[0] ?? 1);
  const spread = mults.includes(chosen) ? chosen : mults[0] ?? 1;
  const table = useMemo(() => stressTable(risk, spread), [risk, spread]);
  return (
    <div className="stress" data-testid="stress">
      <div className="row-between">
        <p className="hint">P&amp;L if closed in the scenario (model value less crossing the widened spreads).</p>
        <SpreadChoice mults={mults} value={spread} onChange={setChosen} />
      </div>
      <div className="table-scroll">
        <table className="stress-table" data-testid="stress-table">
          <thead>
            <tr>
              <th scope="col">IV \ move</th>
              {table.moves.map((m) => (
                <th scope="col" className="num" key={m}>
                  {formatMovePct(m)}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {table.rows.map((r) => (
              <tr key={r.volMult} data-testid="stress-row">
                <th scope="row">IV {formatMult(r.volMult)}</th>
                {r.cells.map((c, i) => {
                  const pnl = c ? cellPnl(c) : null;
                  const worst = c !== null && isWorst(c, risk.worst);
                  return (
                    <td
                      key={table.moves[i]}
                      className={worst ? "num mono worst" : "num mono"}
                      style={{ background: heatColour(pnl, table.scale) }}
                      data-testid={worst ? "stress-worst" : "stress-cell"}
                      title={c ? `move ${formatMovePct(c.movePct)}, IV ${formatMult(c.volMult)}, spreads ${formatMult(c.spreadMult)}` : undefined}
                    >
                      {formatUsd(pnl, { signed: true, whole: true })}
                    </td>
                  );
                })}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <p className="stress-worst" data-testid="stress-summary">
        {worstCaseText(risk.worst)} — <BufferNote worst={risk.worst} buffer={marginBuffer} exceeds={worstExceedsBuffer} />
      </p>
    </div>
  );
});
