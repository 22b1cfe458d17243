import { Fragment, useEffect, useRef, useState } from "react";
import { attempt, type Backend } from "./backend";
import type { AuditFilter, AuditPage, AuditRow, IpcError } from "./bindings";
import { ErrorNote } from "./ErrorNote";
import { localZone } from "./format";
import { useDebounced } from "./useDebounced";
import "./screens.css";

/** How long the text filter waits for typing to pause before it asks the backend. */
export const AUDIT_TEXT_DEBOUNCE_MS = 250;

/** The filter as the backend takes it: an empty kind or text means "any". */
export function auditFilter(kind: string, text: string): AuditFilter {
  const t = text.trim();
  return { kind: kind === "" ? null : kind, text: t === "" ? null : t };
}

/** Local date and time of an RFC 3339 instant ("2025-03-04 15:00:07"); the raw text when it does not parse. */
export function formatAuditTime(at: string): string {
  const d = new Date(at);
  if (Number.isNaN(d.getTime())) return at;
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** The details JSON indented for reading; the text as it is when it is not JSON. */
export function prettyDetails(details: string): string {
  try {
    return JSON.stringify(JSON.parse(details), null, 2);
  } catch {
    return details;
  }
}

/** Kinds that deserve a colour; the rest get a neutral badge. */
function kindClass(kind: string): string {
  if (/fail|error|reject|refus|lost|broken|assign/.test(kind)) return "badge kind critical";
  if (/fired|flatten|emergency|unwind|halt|warn/.test(kind)) return "badge kind warning";
  if (/sent|fill|order|confirm/.test(kind)) return "badge kind info";
  return "badge kind";
}

export function AuditScreen({ backend }: { backend: Backend }) {
  const [kind, setKind] = useState("");
  const [text, setText] = useState("");
  const settledText = useDebounced(text, AUDIT_TEXT_DEBOUNCE_MS);
  const [reload, setReload] = useState(0);
  const [page, setPage] = useState<AuditPage | null>(null);
  const [kinds, setKinds] = useState<string[]>([]);
  const [error, setError] = useState<IpcError | null>(null);
  const [loading, setLoading] = useState(false);
  const [open, setOpen] = useState<ReadonlySet<number>>(new Set());
  const [exporting, setExporting] = useState(false);
  const [exported, setExported] = useState<string | null>(null);
  const [exportError, setExportError] = useState<IpcError | null>(null);
  // Only the answer to the latest request is shown (an older, slower one must not overwrite it).
  const latest = useRef(0);

  useEffect(() => {
    const id = ++latest.current;
    setLoading(true);
    void attempt(() => backend.auditLog(auditFilter(kind, settledText))).then((res) => {
      if (id !== latest.current) return;
      setLoading(false);
      if (res.status === "ok") {
        setPage(res.data);
        setKinds(res.data.kinds);
        setError(null);
      } else {
        // Keep what was shown; the note says why it did not change.
        setError(res.error);
      }
    });
  }, [backend, kind, settledText, reload]);

  const toggle = (id: number) =>
    setOpen((prev) => {
      const next = new Set(prev);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });

  const exportCsv = async () => {
    setExporting(true);
    setExportError(null);
    setExported(null);
    // What the person sees in the filter bar, even if the list has not caught up with the typing yet.
    const res = await attempt(() => backend.exportAuditCsv(auditFilter(kind, text)));
    setExporting(false);
    if (res.status === "ok") setExported(res.data);
    else setExportError(res.error);
  };

  const kindOptions = kind !== "" && !kinds.includes(kind) ? [...kinds, kind] : kinds;

  return (
    <section className="card wide" aria-labelledby="audit-title" data-testid="audit-screen">
      <div className="row-between">
        <h2 id="audit-title">Audit log</h2>
        <button
          type="button"
          className="secondary"
          data-testid="audit-refresh"
          disabled={loading}
          onClick={() => setReload((n) => n + 1)}
        >
          {loading ? "Loading…" : "Refresh"}
        </button>
      </div>
      <p className="hint">Every decision, order and change the guard made, newest first.</p>
      <div className="filter-bar" role="search">
        <label className="field">
          <span>Kind</span>
          <select data-testid="audit-kind" value={kind} onChange={(e) => setKind(e.target.value)}>
            <option value="">all</option>
            {kindOptions.map((k) => (
              <option key={k} value={k}>
                {k}
              </option>
            ))}
          </select>
        </label>
        <label className="field">
          <span>Text</span>
          <input
            type="search"
            data-testid="audit-text"
            placeholder="in subject or reason"
            value={text}
            onChange={(e) => setText(e.target.value)}
          />
        </label>
      </div>
      <ErrorNote error={error} testId="audit-error" />
      {!page && !error && <p className="muted">Loading…</p>}
      {page && (
        <>
          <p className="muted" role="status">
            <span data-testid="audit-count">
              {page.rows.length} shown of {page.total}
            </span>
            {page.truncated && (
              <span data-testid="audit-truncated"> · more entries match than are shown: export to see all.</span>
            )}
          </p>
          {page.rows.length === 0 ? (
            <p className="muted" data-testid="audit-empty">
              {page.total === 0 ? "The audit log is empty." : "No entries match the filter."}
            </p>
          ) : (
            <table className="audit">
              <thead>
                <tr>
                  <th>Time ({localZone()})</th>
                  <th>Kind</th>
                  <th>Subject</th>
                  <th>Reason</th>
                </tr>
              </thead>
              <tbody data-testid="audit-rows">
                {page.rows.map((row) => (
                  <AuditRowView key={row.id} row={row} open={open.has(row.id)} onToggle={() => toggle(row.id)} />
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
      <div className="actions">
        <button
          type="button"
          className="secondary"
          data-testid="audit-export"
          disabled={exporting}
          onClick={() => void exportCsv()}
        >
          {exporting ? "Exporting…" : "Export CSV"}
        </button>
        <span className="hint">Every matching entry, oldest first, into the data folder.</span>
      </div>
      {exported && !exportError && (
        <p role="status">
          Written to <code data-testid="audit-export-path">{exported}</code>
        </p>
      )}
      <ErrorNote error={exportError} testId="audit-export-error" />
    </section>
  );
}

function AuditRowView({ row, open, onToggle }: { row: AuditRow; open: boolean; onToggle: () => void }) {
  const detailsId = `audit-details-${row.id}`;
  return (
    <Fragment>
      <tr className="audit-row" data-testid="audit-row" data-kind={row.kind} onClick={onToggle}>
        <td className="time" title={row.at}>
          <button
            type="button"
            className="row-toggle"
            aria-expanded={open}
            aria-controls={open ? detailsId : undefined}
            aria-label={open ? "Hide details" : "Show details"}
            data-testid="audit-row-toggle"
            onClick={(e) => {
              e.stopPropagation();
              onToggle();
            }}
          >
            {open ? "▾" : "▸"}
          </button>
          {formatAuditTime(row.at)}
        </td>
        <td>
          <span className={kindClass(row.kind)}>{row.kind}</span>
        </td>
        <td>{row.subject}</td>
        <td>{row.reason}</td>
      </tr>
      {open && (
        <tr id={detailsId} data-testid="audit-details">
          <td colSpan={4}>
            <pre className="details">{prettyDetails(row.details)}</pre>
          </td>
        </tr>
      )}
    </Fragment>
  );
}
