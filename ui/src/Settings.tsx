import { useEffect, useState, type FormEvent } from "react";
import { attempt, type Backend, type Result } from "./backend";
import type { AppPaths, IpcError, LogLevel, Settings } from "./bindings";
import { ErrorNote } from "./ErrorNote";

export const LOG_LEVELS: LogLevel[] = ["error", "warn", "info", "debug", "trace"];

/** The backend's defaults for fields a settings file leaves out. */
export function withDefaults(s: Settings): Required<Settings> {
  return {
    startAtLogin: s.startAtLogin ?? false,
    logLevel: s.logLevel ?? "info",
    venue: s.venue ?? { kind: "sim", ibHost: "127.0.0.1", ibPort: 4002, ibClientId: 1, ibAccount: "" },
  };
}

const SOURCE_LABEL: Record<string, string> = {
  "--data-dir": "the --data-dir option",
  TRADEGUARD_DATA_DIR: "the TRADEGUARD_DATA_DIR variable",
  platform: "the platform's conventions (XDG)",
};

/** One button's call: its progress, its error (shown beside it) and its last answer. */
function useAction<T>(call: () => Promise<Result<T>>) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<IpcError | null>(null);
  const [data, setData] = useState<T | null>(null);
  const run = async () => {
    setBusy(true);
    setError(null);
    const res = await attempt(call);
    setBusy(false);
    if (res.status === "ok") setData(res.data);
    else setError(res.error);
  };
  return { busy, error, data, run };
}

export function SettingsScreen({ backend }: { backend: Backend }) {
  return (
    <>
      <LocationsCard backend={backend} />
      <PreferencesCard backend={backend} />
      <LogsCard backend={backend} />
    </>
  );
}

function LocationsCard({ backend }: { backend: Backend }) {
  const [paths, setPaths] = useState<AppPaths | null>(null);
  const [error, setError] = useState<IpcError | null>(null);
  useEffect(() => {
    let live = true;
    backend.locations().then((res) => {
      if (!live) return;
      if (res.status === "ok") setPaths(res.data);
      else setError(res.error);
    });
    return () => {
      live = false;
    };
  }, [backend]);
  return (
    <section className="card wide" aria-labelledby="locations-title">
      <h2 id="locations-title">Locations</h2>
      <ErrorNote error={error} testId="locations-error" />
      {!paths && !error && <p className="muted">Loading…</p>}
      {paths && (
        <>
          <dl className="facts">
            <dt>Data</dt>
            <dd><code data-testid="settings-data-dir">{paths.dataDir}</code></dd>
            <dt>Configuration</dt>
            <dd><code data-testid="settings-config-dir">{paths.configDir}</code></dd>
            <dt>Logs</dt>
            <dd><code data-testid="settings-log-dir">{paths.logDir}</code></dd>
          </dl>
          <p className="muted" data-testid="settings-source">
            Chosen by {SOURCE_LABEL[paths.source] ?? paths.source}.
          </p>
        </>
      )}
    </section>
  );
}

function PreferencesCard({ backend }: { backend: Backend }) {
  // `draft` is what the person sees and edits; it is only replaced by what the backend saved.
  const [draft, setDraft] = useState<Required<Settings> | null>(null);
  const [loadError, setLoadError] = useState<IpcError | null>(null);
  const [saveError, setSaveError] = useState<IpcError | null>(null);
  const [saving, setSaving] = useState(false);
  const [saved, setSaved] = useState(false);

  useEffect(() => {
    let live = true;
    backend.settings().then((res) => {
      if (!live) return;
      if (res.status === "ok") setDraft(withDefaults(res.data));
      else {
        // The file could not be read: the app runs on the defaults; saving writes a valid file.
        setLoadError(res.error);
        setDraft(withDefaults({}));
      }
    });
    return () => {
      live = false;
    };
  }, [backend]);

  const edit = (change: Partial<Settings>) => {
    setDraft((d) => (d ? { ...d, ...change } : d));
    setSaved(false);
  };

  const save = async (e: FormEvent) => {
    e.preventDefault();
    if (!draft) return;
    setSaving(true);
    setSaveError(null);
    setSaved(false);
    const res = await attempt(() => backend.saveSettings(draft));
    setSaving(false);
    if (res.status === "ok") {
      setDraft(withDefaults(res.data));
      setLoadError(null);
      setSaved(true);
    } else {
      setSaveError(res.error);
    }
  };

  return (
    <section className="card wide" aria-labelledby="prefs-title">
      <h2 id="prefs-title">Start and logs</h2>
      {loadError && (
        <>
          <p className="muted">Your saved settings could not be read; showing the defaults. Saving replaces the file.</p>
          <ErrorNote error={loadError} testId="settings-load-error" />
        </>
      )}
      {!draft ? (
        <p className="muted">Loading…</p>
      ) : (
        <form className="form" onSubmit={(e) => void save(e)}>
          <label className="check">
            <input
              type="checkbox"
              data-testid="start-at-login"
              checked={draft.startAtLogin}
              onChange={(e) => edit({ startAtLogin: e.target.checked })}
              disabled={saving}
            />
            Start Tradeguard when I log in
          </label>
          <p className="hint">A guard protects nothing while it is not running. Off by default.</p>
          <label className="field">
            <span>Log level</span>
            <select
              data-testid="log-level"
              value={draft.logLevel}
              onChange={(e) => edit({ logLevel: e.target.value as LogLevel })}
              disabled={saving}
            >
              {LOG_LEVELS.map((l) => (
                <option key={l} value={l}>
                  {l}
                </option>
              ))}
            </select>
          </label>
          <p className="hint">The log level applies at the next start.</p>
          <div className="actions">
            <button type="submit" data-testid="save-settings" disabled={saving}>
              {saving ? "Saving…" : "Save"}
            </button>
            {saved && (
              <span className="pos" role="status" data-testid="settings-saved">
                Saved. The log level applies at the next start.
              </span>
            )}
          </div>
          <ErrorNote error={saveError} testId="settings-error" />
        </form>
      )}
    </section>
  );
}

function LogsCard({ backend }: { backend: Backend }) {
  const open = useAction(() => backend.openLogsFolder());
  const exp = useAction(() => backend.exportDiagnostics());
  return (
    <section className="card wide" aria-labelledby="logs-title">
      <h2 id="logs-title">Logs and diagnostics</h2>
      <div className="actions">
        <button type="button" className="secondary" data-testid="open-logs" disabled={open.busy} onClick={() => void open.run()}>
          {open.busy ? "Opening…" : "Open logs folder"}
        </button>
      </div>
      <ErrorNote error={open.error} testId="open-logs-error" />
      <p className="hint">
        For a bug report: one file with versions, the configuration without secrets, recent logs and the last reconciliation.
      </p>
      <div className="actions">
        <button type="button" className="secondary" data-testid="export-diagnostics" disabled={exp.busy} onClick={() => void exp.run()}>
          {exp.busy ? "Exporting…" : "Export diagnostics"}
        </button>
      </div>
      {exp.data && !exp.error && (
        <p role="status">
          Written to <code data-testid="diagnostics-path">{exp.data}</code>
        </p>
      )}
      <ErrorNote error={exp.error} testId="diagnostics-error" />
    </section>
  );
}
