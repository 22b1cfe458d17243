import { useCallback, useEffect, useRef, useState } from "react";
import { attempt, type Backend } from "./backend";
import type { GoLivePreview, IpcError, RulesFile, RulesSave } from "./bindings";
import { ErrorNote } from "./ErrorNote";
import { useDebounced } from "./useDebounced";
import "./screens.css";

/** How long inline validation waits for typing to pause before it asks the backend. */
export const RULES_CHECK_DEBOUNCE_MS = 300;

/** A TOML table header (`[guard]`, `[[stop_loss]]`): top-level keys end at the first one. */
const HEADER = /^\s*\[\[?\s*[A-Za-z0-9_."' -]+\s*\]\]?\s*(#.*)?$/;
/** The global `dry_run = ...` line: key, value, and whatever follows (a comment). */
const DRY_RUN = /^(\s*dry_run\s*=\s*)([^\s#]*)(.*)$/;

function splitLines(text: string): { lines: string[]; eol: string } {
  return { lines: text.split(/\r?\n/), eol: text.includes("\r\n") ? "\r\n" : "\n" };
}

/** Index of the first table header, or the number of lines when there is none. */
function topLevelEnd(lines: string[]): number {
  const i = lines.findIndex((l) => HEADER.test(l));
  return i === -1 ? lines.length : i;
}

/** The global dry-run as the text sets it (a top-level `dry_run = true|false`); null when it is absent or not a boolean. */
export function readDryRun(text: string): boolean | null {
  const { lines } = splitLines(text);
  for (const line of lines.slice(0, topLevelEnd(lines))) {
    const m = DRY_RUN.exec(line);
    if (m) return m[2] === "true" ? true : m[2] === "false" ? false : null;
  }
  return null;
}

/**
 * The text with the global dry-run set to `on`: the top-level `dry_run` line is rewritten in place
 * (its comment kept); when there is none, one is inserted among the top-level keys, before the
 * first table and the comment that introduces it.
 */
export function setDryRun(text: string, on: boolean): string {
  const { lines, eol } = splitLines(text);
  const end = topLevelEnd(lines);
  for (let i = 0; i < end; i++) {
    const m = DRY_RUN.exec(lines[i]);
    if (m) {
      lines[i] = `${m[1]}${on}${m[3]}`;
      return lines.join(eol);
    }
  }
  const line = `dry_run = ${on}`;
  if (end === lines.length) {
    // No table: append (before the final newline, if the text ends with one).
    if (lines.length > 0 && lines[lines.length - 1] === "") lines.splice(lines.length - 1, 0, line);
    else if (text === "") return `${line}${eol}`;
    else lines.push(line);
    return lines.join(eol);
  }
  // Step back over the comment lines that belong to the first table.
  let at = end;
  while (at > 0 && lines[at - 1].trim().startsWith("#")) at--;
  lines.splice(at, 0, line, "");
  return lines.join(eol);
}

/** Start and end offsets of a 1-based line in `text` (clamped to the text). */
export function lineRange(text: string, line: number): [number, number] {
  let start = 0;
  for (let n = 1; n < line; n++) {
    const nl = text.indexOf("\n", start);
    if (nl === -1) break;
    start = nl + 1;
  }
  const nl = text.indexOf("\n", start);
  const end = nl === -1 ? text.length : text[nl - 1] === "\r" ? nl - 1 : nl;
  return [start, end];
}

type Checked = { text: string; result: RulesFile };
/** A save that turns the global dry-run off, waiting for its second confirmation. */
type GoLive = { text: string; preview: GoLivePreview };

export function RulesScreen({
  backend,
  draft: kept = null,
  onDraftChange,
}: {
  backend: Backend;
  /** Unsaved text from an earlier visit: shown instead of the file's text (null: none). */
  draft?: string | null;
  /** Told the unsaved text on every change (null once nothing is unsaved), so it outlives this screen. */
  onDraftChange?: (draft: string | null) => void;
}) {
  // The kept draft is read once, at load: later it is this screen's own `draft` that counts.
  const keptDraft = useRef(kept);
  const [restored, setRestored] = useState(false);
  const [saved, setSaved] = useState<RulesFile | null>(null);
  const [loadError, setLoadError] = useState<IpcError | null>(null);
  const [draft, setDraft] = useState("");
  const [checked, setChecked] = useState<Checked | null>(null);
  const [checkError, setCheckError] = useState<IpcError | null>(null);
  const [saving, setSaving] = useState(false);
  const [saveError, setSaveError] = useState<IpcError | null>(null);
  const [savedNote, setSavedNote] = useState(false);
  const [goLive, setGoLive] = useState<GoLive | null>(null);
  const textRef = useRef<HTMLTextAreaElement>(null);
  const latestCheck = useRef(0);
  const settledDraft = useDebounced(draft, RULES_CHECK_DEBOUNCE_MS);

  const load = useCallback(async () => {
    setLoadError(null);
    const res = await attempt(() => backend.rulesFile());
    if (res.status === "ok") {
      const text = keptDraft.current ?? res.data.text;
      keptDraft.current = null;
      setSaved(res.data);
      setDraft(text);
      setRestored(text !== res.data.text);
      setChecked({ text: res.data.text, result: res.data });
    } else {
      setLoadError(res.error);
    }
  }, [backend]);
  useEffect(() => {
    void load();
  }, [load]);

  // Inline validation: once typing pauses, check the text unless its check is already known.
  useEffect(() => {
    if (!saved || settledDraft !== draft || checked?.text === settledDraft) return;
    const id = ++latestCheck.current;
    const text = settledDraft;
    void attempt(() => backend.checkRules(text)).then((res) => {
      if (id !== latestCheck.current) return;
      if (res.status === "ok") {
        setChecked({ text, result: res.data });
        setCheckError(null);
      } else {
        setCheckError(res.error);
      }
    });
  }, [backend, saved, settledDraft, draft, checked]);

  // Report what is unsaved (only once the file is known: before that, nothing is decided).
  useEffect(() => {
    if (saved) onDraftChange?.(draft !== saved.text ? draft : null);
  }, [saved, draft, onDraftChange]);

  const edit = (text: string) => {
    setDraft(text);
    setRestored(false);
    setSavedNote(false);
    setSaveError(null);
    // A go-live confirmation is for the exact text it previewed.
    setGoLive(null);
  };

  const current = checked && checked.text === draft ? checked.result : null;
  const changed = saved !== null && draft !== saved.text;
  const canSave = saved !== null && changed && current !== null && current.valid && !saving;

  const write = async (text: string, confirm: string | null) => {
    setSaving(true);
    setSaveError(null);
    setSavedNote(false);
    const res = await attempt(() => backend.saveRules(text, confirm));
    setSaving(false);
    setGoLive(null);
    if (res.status === "ok") {
      const r: RulesSave = res.data;
      if (r.outcome === "confirmGoLive") {
        // Nothing written yet: going live needs a second, explicit confirmation.
        setGoLive({ text, preview: r.preview });
        return;
      }
      setSaved(r.file);
      setDraft(r.file.text);
      setChecked({ text: r.file.text, result: r.file });
      setSavedNote(true);
    } else {
      // Refused: nothing was written; the person's text stays as it is.
      setSaveError(res.error);
    }
  };

  const save = async () => {
    if (!canSave || goLive) return;
    await write(draft, null);
  };

  const confirmGoLive = async () => {
    if (!goLive || saving || goLive.text !== draft) return;
    await write(goLive.text, goLive.preview.previewId);
  };

  const revert = () => {
    if (!saved) return;
    setGoLive(null);
    setDraft(saved.text);
    setRestored(false);
    setChecked({ text: saved.text, result: saved });
    setCheckError(null);
    setSaveError(null);
    setSavedNote(false);
  };

  const goToLine = (line: number) => {
    const el = textRef.current;
    if (!el) return;
    const [start, end] = lineRange(el.value, line);
    el.focus();
    el.setSelectionRange(start, end);
    const lh = Number.parseFloat(getComputedStyle(el).lineHeight);
    const lineHeight = Number.isFinite(lh) && lh > 4 ? lh : 19;
    el.scrollTop = Math.max(0, (line - 1) * lineHeight - el.clientHeight / 3);
  };

  const dryRun = readDryRun(draft);

  return (
    <section className="card wide" aria-labelledby="rules-title" data-testid="rules-screen">
      <h2 id="rules-title">Risk rules</h2>
      {loadError && (
        <>
          <ErrorNote error={loadError} testId="rules-load-error" />
          <div className="actions">
            <button type="button" className="secondary" data-testid="rules-reload" onClick={() => void load()}>
              Try again
            </button>
          </div>
        </>
      )}
      {!saved && !loadError && <p className="muted">Loading…</p>}
      {saved && (
        <>
          <p className="muted">
            The file: <code data-testid="rules-path">{saved.path}</code>. The guard re-reads it when it changes; a saved
            change applies without a restart, and a file with errors is never applied (the last good rules stay in force).
          </p>

          <label className="check">
            <input
              type="checkbox"
              data-testid="rules-dry-run"
              checked={dryRun !== false}
              disabled={saving}
              onChange={(e) => edit(setDryRun(draft, e.target.checked))}
            />
            Global dry-run{dryRun === null ? " (not set in the file: on)" : ""}
          </label>
          <p className="hint">
            In dry-run every rule still evaluates, decides and writes what it would do to the audit log, but no order is
            sent. A file without a <code>dry_run</code> line is in dry-run: only <code>dry_run = false</code> lets the
            rules send orders. This edits the <code>dry_run = …</code> line of the file; it applies when you save.
          </p>

          <Status current={current} checkError={checkError} />
          <ErrorNote error={checkError} testId="rules-check-error" />
          {current && current.problems.length > 0 && (
            <ul className="rules-problems" data-testid="rules-problems" aria-label="Problems">
              {current.problems.map((p, i) => (
                <li key={`${i}-${p.code}`} data-testid="rules-problem" className="error">
                  {p.line !== null ? (
                    <button type="button" title="Go to this line" onClick={() => goToLine(p.line as number)}>
                      Line {p.line}
                    </button>
                  ) : (
                    <span className="muted">—</span>
                  )}
                  <span>{p.message}</span>
                  <code>{p.code}</code>
                </li>
              ))}
            </ul>
          )}

          <textarea
            ref={textRef}
            className="rules-text"
            data-testid="rules-text"
            aria-label="Rules file text"
            spellCheck={false}
            autoCapitalize="off"
            autoCorrect="off"
            wrap="off"
            readOnly={saving}
            value={draft}
            onChange={(e) => edit(e.target.value)}
          />

          <div className="actions">
            <button
              type="button"
              data-testid="rules-save"
              disabled={!canSave || goLive !== null}
              title={!changed ? "Nothing changed" : current === null ? "Checking…" : !current.valid ? "Fix the problems first" : undefined}
              onClick={() => void save()}
            >
              {saving ? "Saving…" : "Save"}
            </button>
            <button type="button" className="secondary" data-testid="rules-revert" disabled={!changed || saving} onClick={revert}>
              Revert
            </button>
            {changed && !saving && <span className="muted" data-testid="rules-unsaved">Unsaved changes</span>}
            {restored && changed && (
              <span className="muted" data-testid="rules-restored">
                (kept from before you left this screen)
              </span>
            )}
            {savedNote && (
              <span className="pos" role="status" data-testid="rules-saved">
                Saved — applies without restart
              </span>
            )}
          </div>
          {goLive && (
            <div className="flatten-notice armed" role="alertdialog" aria-labelledby="go-live-title" data-testid="rules-go-live">
              <p id="go-live-title">
                <strong>Go live?</strong> This turns the global dry-run off: nothing was saved yet.
              </p>
              <p data-testid="rules-go-live-summary">
                {goLive.preview.willSend.length === 0
                  ? `${goLive.preview.rules} enabled ${goLive.preview.rules === 1 ? "rule" : "rules"}; none closes positions on its own (alert only or in its own dry-run).`
                  : `These rules will send orders on their own: ${goLive.preview.willSend.join(", ")} (${goLive.preview.rules} enabled ${goLive.preview.rules === 1 ? "rule" : "rules"} in all).`}
              </p>
              <div className="actions">
                <button type="button" data-testid="rules-go-live-confirm" disabled={saving} onClick={() => void confirmGoLive()}>
                  {saving ? "Saving…" : "Go live: save with dry-run off"}
                </button>
                <button type="button" className="secondary" data-testid="rules-go-live-cancel" disabled={saving} onClick={() => setGoLive(null)}>
                  Keep dry-run (not saved)
                </button>
              </div>
            </div>
          )}
          <ErrorNote error={saveError} testId="rules-error" />
        </>
      )}
    </section>
  );
}

function Status({ current, checkError }: { current: RulesFile | null; checkError: IpcError | null }) {
  if (!current) {
    return (
      <p className="status-line pending" role="status" data-testid="rules-status">
        {checkError ? "Could not check the rules" : "Checking…"}
      </p>
    );
  }
  if (!current.valid) {
    const n = current.problems.length;
    return (
      <p className="status-line invalid" role="status" data-testid="rules-status">
        Invalid · {n} {n === 1 ? "problem" : "problems"} · not applied until fixed
      </p>
    );
  }
  return (
    <p className="status-line valid" role="status" data-testid="rules-status">
      Valid · {current.rules} {current.rules === 1 ? "rule" : "rules"} · dry-run {current.dryRun ? "on" : "off"}
    </p>
  );
}
