import { useRef, useState } from "react";
import { attempt, type Backend } from "./backend";
import type { ConnectionTest, IpcError, VenueKind, VenueSettings } from "./bindings";
import { ErrorNote } from "./ErrorNote";
import "./venue.css";

/** The backend's venue defaults (a settings file without a `venue`). */
export const DEFAULT_VENUE: Required<VenueSettings> = { kind: "sim", ibHost: "127.0.0.1", ibPort: 4002, ibClientId: 1, ibAccount: "" };

/** IB's default ports; the live ones trade real money. */
export const PORT_PICKS = [
  { port: 4002, label: "IB Gateway paper", live: false },
  { port: 4001, label: "IB Gateway live", live: true },
  { port: 7497, label: "TWS paper", live: false },
  { port: 7496, label: "TWS live", live: true },
] as const;
const LIVE_PORTS: readonly number[] = PORT_PICKS.filter((p) => p.live).map((p) => p.port);

/** The venue as the person types it: numbers stay text so nothing typed is lost, valid or not. */
export type VenueForm = { kind: VenueKind; host: string; port: string; clientId: string; account: string };
export type VenueErrors = Partial<Record<"host" | "port" | "clientId" | "account", string>>;

export function venueForm(v: VenueSettings | undefined): VenueForm {
  const d = { ...DEFAULT_VENUE, ...v };
  return { kind: d.kind, host: d.ibHost, port: String(d.ibPort), clientId: String(d.ibClientId), account: d.ibAccount };
}

/** A whole number within [min, max], else null. */
function wholeIn(text: string, min: number, max: number): number | null {
  const t = text.trim();
  if (!/^\d+$/.test(t)) return null;
  const n = Number(t);
  return n >= min && n <= max ? n : null;
}

/** What is wrong with the IB fields, per field (empty when they can be sent). */
export function validateVenue(f: VenueForm): VenueErrors {
  const errors: VenueErrors = {};
  if (f.host.trim() === "") errors.host = "Enter the host IB Gateway or TWS runs on (127.0.0.1 on this computer).";
  if (wholeIn(f.port, 1, 65535) === null) errors.port = "The port is a whole number from 1 to 65535.";
  if (wholeIn(f.clientId, 0, 999_999_999) === null) errors.clientId = "The client id is a whole number from 0 to 999999999.";
  if (!/^[A-Za-z0-9]*$/.test(f.account.trim())) errors.account = "An account is letters and digits only (e.g. DU1234567), or empty.";
  return errors;
}

export const isLivePort = (port: string): boolean => LIVE_PORTS.includes(wholeIn(port, 1, 65535) ?? -1);

/**
 * The settings to send, or null when the IB fields are invalid. With the simulated venue chosen,
 * invalid IB fields do not block: `fallback` (what was saved) is sent for them instead.
 */
export function toVenueSettings(f: VenueForm, fallback: VenueSettings = DEFAULT_VENUE): VenueSettings | null {
  if (Object.keys(validateVenue(f)).length > 0) {
    return f.kind === "sim" ? { ...DEFAULT_VENUE, ...fallback, kind: "sim" } : null;
  }
  return {
    kind: f.kind,
    ibHost: f.host.trim(),
    ibPort: Number(f.port.trim()),
    ibClientId: Number(f.clientId.trim()),
    ibAccount: f.account.trim(),
  };
}

/** Whether saving `after` switches what the next start connects to (IB fields matter only for IB). */
export function venueSwitches(before: VenueSettings, after: VenueSettings): boolean {
  const b = { ...DEFAULT_VENUE, ...before };
  const a = { ...DEFAULT_VENUE, ...after };
  if (a.kind !== b.kind) return true;
  return (
    a.kind === "ib" &&
    (a.ibHost !== b.ibHost || a.ibPort !== b.ibPort || a.ibClientId !== b.ibClientId || a.ibAccount !== b.ibAccount)
  );
}

type TestState =
  | { phase: "busy"; key: string; address: string }
  | { phase: "ok"; key: string; result: ConnectionTest }
  | { phase: "error"; key: string; error: IpcError };

const formKey = (f: VenueForm) => JSON.stringify([f.host.trim(), f.port.trim(), f.clientId.trim(), f.account.trim()]);

export function VenueFields({
  backend,
  form,
  onChange,
  disabled,
}: {
  backend: Backend;
  form: VenueForm;
  onChange: (f: VenueForm) => void;
  disabled: boolean;
}) {
  const errors = validateVenue(form);
  const set = (change: Partial<VenueForm>) => onChange({ ...form, ...change });
  return (
    <fieldset className="venue" data-testid="venue-settings">
      <legend>Venue</legend>
      <label className="check">
        <input
          type="radio"
          name="venue-kind"
          data-testid="venue-sim"
          checked={form.kind === "sim"}
          disabled={disabled}
          onChange={() => set({ kind: "sim" })}
        />
        Simulated — a built-in market, no account needed (default)
      </label>
      <label className="check">
        <input
          type="radio"
          name="venue-kind"
          data-testid="venue-ib"
          checked={form.kind === "ib"}
          disabled={disabled}
          onChange={() => set({ kind: "ib" })}
        />
        Interactive Brokers — through IB Gateway or TWS
      </label>
      {form.kind === "ib" && (
        <>
          <TextField id="host" label="Host" value={form.host} error={errors.host} disabled={disabled} onChange={(host) => set({ host })} />
          <TextField id="port" label="Port" value={form.port} error={errors.port} disabled={disabled} numeric onChange={(port) => set({ port })} />
          <div className="quick-picks" role="group" aria-label="Common ports">
            {PORT_PICKS.map((p) => (
              <button
                key={p.port}
                type="button"
                className="secondary"
                data-testid={`port-pick-${p.port}`}
                aria-pressed={form.port.trim() === String(p.port)}
                disabled={disabled}
                onClick={() => set({ port: String(p.port) })}
              >
                {p.label} {p.port}
              </button>
            ))}
          </div>
          {isLivePort(form.port) && (
            <p className="live-warning error" role="alert" data-testid="venue-live-warning">
              LIVE trading port: orders the guard sends through it trade real money.
            </p>
          )}
          <TextField
            id="client-id"
            label="Client id"
            value={form.clientId}
            error={errors.clientId}
            disabled={disabled}
            numeric
            onChange={(clientId) => set({ clientId })}
          />
          <TextField
            id="account"
            label="Account"
            value={form.account}
            error={errors.account}
            disabled={disabled}
            placeholder="first managed account"
            onChange={(account) => set({ account })}
          />
          <p className="hint">
            The client id must differ from any other API connection to the same gateway. Leave the account empty to use the first
            account the gateway manages.
          </p>
          <ConnectionTester backend={backend} form={form} valid={Object.keys(errors).length === 0} disabled={disabled} />
        </>
      )}
      <p className="hint" data-testid="venue-restart-hint">
        Restart Tradeguard to switch venue: the one saved here is used from the next start.
      </p>
    </fieldset>
  );
}

function TextField({
  id,
  label,
  value,
  error,
  disabled,
  numeric,
  placeholder,
  onChange,
}: {
  id: string;
  label: string;
  value: string;
  error?: string;
  disabled: boolean;
  numeric?: boolean;
  placeholder?: string;
  onChange: (v: string) => void;
}) {
  const errorId = `venue-${id}-error`;
  return (
    <label className="field">
      <span>{label}</span>
      <input
        type="text"
        data-testid={`venue-${id}`}
        inputMode={numeric ? "numeric" : undefined}
        autoComplete="off"
        spellCheck={false}
        placeholder={placeholder}
        value={value}
        disabled={disabled}
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? errorId : undefined}
        onChange={(e) => onChange(e.target.value)}
      />
      {error && (
        <span className="field-error" id={errorId} data-testid={errorId}>
          {error}
        </span>
      )}
    </label>
  );
}

/** "Test connection": connects with the typed settings (saves nothing) and says what it found. */
function ConnectionTester({ backend, form, valid, disabled }: { backend: Backend; form: VenueForm; valid: boolean; disabled: boolean }) {
  const [test, setTest] = useState<TestState | null>(null);
  const latest = useRef(0);
  const key = formKey(form);
  // A result for other settings than the ones on screen would mislead: it is not shown.
  const busy = test?.phase === "busy";
  const shown = test && (busy || test.key === key) ? test : null;

  const run = async () => {
    const venue = toVenueSettings({ ...form, kind: "ib" });
    if (!venue) return;
    const id = ++latest.current;
    setTest({ phase: "busy", key, address: `${venue.ibHost}:${venue.ibPort}` });
    const res = await attempt(() => backend.testIbConnection(venue));
    if (id !== latest.current) return;
    setTest(res.status === "ok" ? { phase: "ok", key, result: res.data } : { phase: "error", key, error: res.error });
  };

  return (
    <div className="actions">
      <button
        type="button"
        className="secondary"
        data-testid="venue-test"
        disabled={!valid || busy || disabled}
        title={valid ? "Connects, reads the account, disconnects. Saves nothing." : "Fix the fields first"}
        onClick={() => void run()}
      >
        {busy ? "Testing…" : "Test connection"}
      </button>
      {shown?.phase === "busy" && (
        <span className="test-result busy" role="status" data-testid="venue-test-status">
          Connecting to {shown.address}…
        </span>
      )}
      {shown?.phase === "ok" && (
        <span className="test-result ok" role="status" data-testid="venue-test-status">
          Connected to {shown.result.address}: account <strong>{shown.result.account}</strong> in {shown.result.millis} ms
          {shown.result.livePort ? " — a LIVE port (real money)" : ""}.
        </span>
      )}
      {shown?.phase === "error" && <ErrorNote error={shown.error} testId="venue-test-error" />}
    </div>
  );
}
