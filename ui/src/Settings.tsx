import { AboutCard, type BackendHealth } from "./About";
import { useEffect, useState, type FormEvent } from "react";
import { attempt, type Backend, type Result } from "./backend";
import type { AppPaths, IpcError, LogLevel, Settings } from "./bindings";
import { ErrorNote } from "./ErrorNote";
import { AlertChannelsCard } from "./AlertChannels";
import { DEFAULT_VENUE, toVenueSettings, VenueFields, venueForm, venueSwitches, type VenueForm } from "./Venue";

export const LOG_LEVELS: LogLevel[] = ["error", "warn", "info", "debug", "trace"];

/** The backend's defaults for fields a settings file leaves out. */
export function withDefaults(s: Settings): Required<Settings> {
  return {
    startAtLogin: s.startAtLogin ?? false,
    logLevel: s.logLevel ?? "info",
    venue: s.venue ?? { ...DEFAULT_VENUE },
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

export function SettingsScreen({ backend, health }: { backend: Backend; health?: BackendHealth }) {
  return (
    <>
      <LocationsCard backend={backend} />
      <PreferencesCard backend={backend} />
      <AlertChannelsCard backend={backend} />
      <LogsCard backend={backend} />
      {health && <AboutCard health={health} />}
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
  // `draft` and `venue` are what the person sees and edits; only what the backend saved replaces them.
  const [draft, setDraft] = useState<Required<Settings> | null>(null);
  const [venue, setVenue] = useState<VenueForm | null>(null);
  const [loadError, setLoadError] = useState<IpcError | null>(null);
  const [saveError, setSaveError] = useState<IpcError | null>(null);
  const [invalid, setInvalid] = useState(false);
  const [saving, setSaving] = useState(false);
  const [saved, setSaved] = useState<"saved" | "saved-venue" | null>(null);

  const load = (s: Required<Settings>) => {
    setDraft(s);
    setVenue(venueForm(s.venue));
  };

  useEffect(() => {
    let live = true;
    backend.settings().then((res) => {
      if (!live) return;
      if (res.status === "ok") load(withDefaults(res.data));
      else {
        // The file could not be read: the app runs on the defaults; saving writes a valid file.
        setLoadError(res.error);
        load(withDefaults({}));
      }
    });
    return () => {
      live = false;
    };
  }, [backend]);

  const edit = (change: Partial<Settings>) => {
    setDraft((d) => (d ? { ...d, ...change } : d));
    setSaved(null);
  };
  const editVenue = (f: VenueForm) => {
    setVenue(f);
    setInvalid(false);
    setSaved(null);
  };

  const save = async (e: FormEvent) => {
    e.preventDefault();
    if (!draft || !venue) return;
    const nextVenue = toVenueSettings(venue, draft.venue);
    if (!nextVenue) {
      // Nothing is sent; the inline errors say what to fix.
      setInvalid(true);
      return;
    }
    const settings = { ...draft, venue: nextVenue };
    const venueChanged = venueSwitches(draft.venue, nextVenue);
    setSaving(true);
    setSaveError(null);
    setSaved(null);
    const res = await attempt(() => backend.saveSettings(settings));
    setSaving(false);
    if (res.status === "ok") {
      load(withDefaults(res.data));
      setLoadError(null);
      setSaved(venueChanged ? "saved-venue" : "saved");
    } else {
      setSaveError(res.error);
    }
  };

  return (
    <section className="card wide" aria-labelledby="prefs-title">
      <h2 id="prefs-title">Start, logs and venue</h2>
      {loadError && (
        <>
          <p className="muted">Your saved settings could not be read; showing the defaults. Saving replaces the file.</p>
          <ErrorNote error={loadError} testId="settings-load-error" />
        </>
      )}
      {!draft || !venue ? (
        <p className="muted">Loading…</p>
      ) : (
        <form className="form" onSubmit={(e) => void save(e)} noValidate>
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
          <VenueFields backend={backend} form={venue} onChange={editVenue} disabled={saving} />
          <div className="actions">
            <button type="submit" data-testid="save-settings" disabled={saving}>
              {saving ? "Saving…" : "Save"}
            </button>
            {invalid && (
              <span className="error" role="alert" data-testid="settings-invalid">
                Not saved: fix the venue fields marked above.
              </span>
            )}
            {saved && (
              <span className="pos" role="status" data-testid="settings-saved">
                {saved === "saved-venue"
                  ? "Saved. Restart Tradeguard to switch venue; the log level also applies at the next start."
                  : "Saved. The log level applies at the next start."}
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
