import { memo } from "react";
import type { IpcError, RuleDistanceView } from "./bindings";
import { ErrorNote } from "./ErrorNote";

const STATUS_LABEL: Record<string, string> = { clear: "clear", triggered: "triggered", unknown: "unknown", inactive: "inactive" };

function Progress({ value }: { value: number | null }) {
  if (value === null || !Number.isFinite(value)) return <span className="muted">—</span>;
  const pct = Math.round(Math.min(1, Math.max(0, value)) * 100);
  return (
    <span className="progress" role="meter" aria-valuemin={0} aria-valuemax={100} aria-valuenow={pct} aria-label="Toward the trigger">
      <span className="progress-fill" style={{ width: `${pct}%` }} />
      <span className="progress-text">{pct} %</span>
    </span>
  );
}

/** Every rule that applies to the strategy and how far it is from firing. */
export const RulesTable = memo(function RulesTable({
  rules,
  error,
  path,
}: {
  rules: RuleDistanceView[];
  error: IpcError | null;
  path: string;
}) {
  return (
    <div data-testid="detail-rules">
      <ErrorNote error={error} testId="rules-error" />
      {rules.length === 0 && !error && <p className="muted">No rule applies to this strategy.</p>}
      {rules.length > 0 && (
        <table className="positions rules-table">
          <thead>
            <tr>
              <th scope="col">Rule</th>
              <th scope="col">Kind</th>
              <th scope="col">Action</th>
              <th scope="col">Trigger</th>
              <th scope="col">Current</th>
              <th scope="col">Distance</th>
              <th scope="col">Progress</th>
              <th scope="col">Status</th>
            </tr>
          </thead>
          <tbody>
            {rules.map((r) => (
              <tr key={r.ruleId} className={`rule-row ${r.status}`} data-testid="rule-row" data-status={r.status}>
                <td className="mono">{r.ruleId}</td>
                <td>{r.kind.replace(/_/g, " ")}</td>
                <td>
                  {r.action}
                  {r.dryRun && (
                    <span className="badge info dry" data-testid="rule-dry-run">
                      DRY-RUN
                    </span>
                  )}
                </td>
                <td className="mono">{r.trigger}</td>
                <td className="mono">{r.current}</td>
                <td className="mono">{r.distance}</td>
                <td>
                  <Progress value={r.progress} />
                </td>
                <td>
                  <span className={`rule-status ${r.status}`}>{STATUS_LABEL[r.status] ?? r.status}</span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <p className="hint">
        Rules file: <code data-testid="rules-path">{path}</code>
      </p>
    </div>
  );
});
