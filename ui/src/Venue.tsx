import { useRef, useState } from "react";
import { attempt, type Backend } from "./backend";
import type { ConnectionTest, IpcError, SimDemo, TradierEnv, VenueKind, VenueSettings, VenueTest } from "./bindings";
import type { Result } from "./backend";
import { ErrorNote } from "./ErrorNote";
import "./venue.css";

/** The backend's venue defaults (a settings file without a `venue`). */
export const DEFAULT_VENUE: Required<VenueSettings> = {
  kind: "sim",
  simDemo: "options",
  ibHost: "127.0.0.1",
  ibPort: 4002,
  ibClientId: 1,
  ibAccount: "",
  tradierAccount: "",
  tradierEnv: "sandbox",
  tradierUrl: "",
  projectxUser: "",
  projectxAccount: "",
  projectxApi: "",
  projectxRtc: "",
};

/** IB's default ports; the live ones trade real money. */
export const PORT_PICKS = [
  { port: 4002, label: "IB Gateway paper", live: false },
  { port: 4001, label: "IB Gateway live", live: true },
  { port: 7497, label: "TWS paper", live: false },
  { port: 7496, label: "TWS live", live: true },
] as const;
const LIVE_PORTS: readonly number[] = PORT_PICKS.filter((p) => p.live).map((p) => p.port);

/** The venue as the person types it: numbers stay text so nothing typed is lost, valid or not. */
export type VenueForm = {
  kind: VenueKind;
  simDemo: SimDemo;
  host: string;
  port: string;
  clientId: string;
  account: string;
  tradierAccount: string;
  tradierEnv: TradierEnv;
  tradierUrl: string;
  projectxUser: string;
  projectxAccount: string;
  projectxApi: string;
  projectxRtc: string;
};
export type VenueErrors = Partial<Record<"host" | "port" | "clientId" | "account", string>>;
export type TradierErrors = Partial<Record<"tradierAccount" | "tradierUrl", string>>;
export type ProjectxErrors = Partial<Record<"projectxUser" | "projectxAccount" | "projectxApi" | "projectxRtc", string>>;

export function venueForm(v: VenueSettings | undefined): VenueForm {
  const d = { ...DEFAULT_VENUE, ...v };
  return {
    kind: d.kind,
    simDemo: d.simDemo,
    host: d.ibHost,
    port: String(d.ibPort),
    clientId: String(d.ibClientId),
    account: d.ibAccount,
    tradierAccount: d.tradierAccount,
    tradierEnv: d.tradierEnv,
    tradierUrl: d.tradierUrl,
    projectxUser: d.projectxUser,
    projectxAccount: d.projectxAccount,
    projectxApi: d.projectxApi,
    projectxRtc: d.projectxRtc,
  };
}

/** An https URL (plain http only to this computer), or empty. */
const urlOk = (u: string) => u === "" || u.startsWith("https://") || u.startsWith("http://127.");

/** What is wrong with the ProjectX fields, per field (empty when they can be sent). */
export function validateProjectx(f: VenueForm): ProjectxErrors {
  const errors: ProjectxErrors = {};
  if (!/^[A-Za-z0-9._@-]+$/.test(f.projectxUser.trim())) errors.projectxUser = "Your ProjectX user name.";
  if (f.projectxAccount.trim() === "") errors.projectxAccount = "The account's name (e.g. 50KTC-V2-…) or id.";
  if (!urlOk(f.projectxApi.trim())) errors.projectxApi = "An https URL (plain http only to this computer), or empty for TopstepX.";
  if (!urlOk(f.projectxRtc.trim())) errors.projectxRtc = "An https URL (plain http only to this computer), or empty.";
  return errors;
}

/** What is wrong with the Tradier fields, per field (empty when they can be sent). */
export function validateTradier(f: VenueForm): TradierErrors {
  const errors: TradierErrors = {};
  if (!/^[A-Za-z0-9]+$/.test(f.tradierAccount.trim())) errors.tradierAccount = "The Tradier account number: letters and digits (e.g. VA12345678).";
  if (!urlOk(f.tradierUrl.trim())) errors.tradierUrl = "An https URL (plain http only to this computer), or empty for the environment's.";
  return errors;
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
  const ibBad = Object.keys(validateVenue(f)).length > 0;
  const tradierBad = Object.keys(validateTradier(f)).length > 0;
  const projectxBad = Object.keys(validateProjectx(f)).length > 0;
  if ((f.kind === "ib" && ibBad) || (f.kind === "tradier" && tradierBad) || (f.kind === "projectx" && projectxBad)) return null;
  const saved = { ...DEFAULT_VENUE, ...fallback };
  const ib = ibBad
    ? { ibHost: saved.ibHost, ibPort: saved.ibPort, ibClientId: saved.ibClientId, ibAccount: saved.ibAccount }
    : { ibHost: f.host.trim(), ibPort: Number(f.port.trim()), ibClientId: Number(f.clientId.trim()), ibAccount: f.account.trim() };
  const tradier = tradierBad
    ? { tradierAccount: saved.tradierAccount, tradierEnv: saved.tradierEnv, tradierUrl: saved.tradierUrl }
    : { tradierAccount: f.tradierAccount.trim(), tradierEnv: f.tradierEnv, tradierUrl: f.tradierUrl.trim() };
  const projectx = projectxBad
    ? { projectxUser: saved.projectxUser, projectxAccount: saved.projectxAccount, projectxApi: saved.projectxApi, projectxRtc: saved.projectxRtc }
    : {
        projectxUser: f.projectxUser.trim(),
        projectxAccount: f.projectxAccount.trim(),
        projectxApi: f.projectxApi.trim(),
        projectxRtc: f.projectxRtc.trim(),
      };
  return { kind: f.kind, simDemo: f.simDemo, ...ib, ...tradier, ...projectx };
}

/** Whether saving `after` switches what the next start connects to (IB fields matter only for IB). */
export function venueSwitches(before: VenueSettings, after: VenueSettings): boolean {
  const b = { ...DEFAULT_VENUE, ...before };
  const a = { ...DEFAULT_VENUE, ...after };
  if (a.kind !== b.kind) return true;
  if (a.kind === "sim") return a.simDemo !== b.simDemo;
  if (a.kind === "tradier") {
    return a.tradierAccount !== b.tradierAccount || a.tradierEnv !== b.tradierEnv || a.tradierUrl !== b.tradierUrl;
  }
  if (a.kind === "projectx") {
    return (
      a.projectxUser !== b.projectxUser ||
      a.projectxAccount !== b.projectxAccount ||
      a.projectxApi !== b.projectxApi ||
      a.projectxRtc !== b.projectxRtc
    );
  }
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
      {form.kind === "sim" && (
        <div className="quick-picks" role="group" aria-label="Simulated demo">
          {(["options", "futures"] as const).map((demo) => (
            <button
              key={demo}
              type="button"
              className="secondary"
              data-testid={`sim-demo-${demo}`}
              aria-pressed={form.simDemo === demo}
              disabled={disabled}
              onClick={() => set({ simDemo: demo })}
            >
              {demo === "options" ? "Options demo (SPY strategies)" : "Futures demo (MNQ, MES)"}
            </button>
          ))}
        </div>
      )}
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
      <label className="check">
        <input
          type="radio"
          name="venue-kind"
          data-testid="venue-tradier"
          checked={form.kind === "tradier"}
          disabled={disabled}
          onChange={() => set({ kind: "tradier" })}
        />
        Tradier — with an access token
      </label>
      {form.kind === "tradier" && <TradierFields backend={backend} form={form} onChange={onChange} disabled={disabled} />}
      <label className="check">
        <input
          type="radio"
          name="venue-kind"
          data-testid="venue-projectx"
          checked={form.kind === "projectx"}
          disabled={disabled}
          onChange={() => set({ kind: "projectx" })}
        />
        ProjectX — TopstepX and other prop firms, with an API key
      </label>
      {form.kind === "projectx" && <ProjectxFields backend={backend} form={form} onChange={onChange} disabled={disabled} />}
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
  secret,
  onChange,
}: {
  id: string;
  label: string;
  value: string;
  error?: string;
  disabled: boolean;
  numeric?: boolean;
  placeholder?: string;
  secret?: boolean;
  onChange: (v: string) => void;
}) {
  const errorId = `venue-${id}-error`;
  return (
    <label className="field">
      <span>{label}</span>
      <input
        type={secret ? "password" : "text"}
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
    const full = toVenueSettings({ ...form, kind: "ib" });
    if (!full) return;
    const venue: VenueSettings = { kind: "ib", ibHost: full.ibHost, ibPort: full.ibPort, ibClientId: full.ibClientId, ibAccount: full.ibAccount };
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


type VenueTestState = { phase: "busy"; key: string } | { phase: "ok"; key: string; result: VenueTest } | { phase: "error"; key: string; error: IpcError };

/**
 * The secret of a venue that logs in with one (Tradier's token, ProjectX's API key): it goes
 * straight to the OS keychain (never to settings.toml, never shown again); the screen says only
 * whether one is stored. Then a connection test with the stored secret.
 */
function SecretFields({
  prefix,
  word,
  label,
  who,
  whoOk,
  testKey,
  testReady,
  disabled,
  save,
  stored,
  test,
}: {
  prefix: string;
  word: "token" | "key";
  label: string;
  who: string;
  whoOk: boolean;
  testKey: string;
  testReady: boolean;
  disabled: boolean;
  save: (who: string, secret: string) => Promise<Result<null>>;
  stored: (who: string) => Promise<Result<boolean>>;
  test: () => Promise<Result<VenueTest>>;
}) {
  const [secret, setSecret] = useState("");
  const [known, setKnown] = useState<{ who: string; ok: boolean } | null>(null);
  const [secretError, setSecretError] = useState<IpcError | null>(null);
  const [testState, setTest] = useState<VenueTestState | null>(null);
  const shown = testState && (testState.phase === "busy" || testState.key === testKey) ? testState : null;

  const check = async () => {
    const res = await attempt(() => stored(who));
    if (res.status === "ok") setKnown({ who, ok: res.data });
  };
  const store = async () => {
    setSecretError(null);
    const res = await attempt(() => save(who, secret));
    if (res.status === "ok") {
      setSecret("");
      setKnown({ who, ok: true });
    } else setSecretError(res.error);
  };
  const run = async () => {
    setTest({ phase: "busy", key: testKey });
    const res = await attempt(test);
    setTest(res.status === "ok" ? { phase: "ok", key: testKey, result: res.data } : { phase: "error", key: testKey, error: res.error });
  };
  return (
    <>
      <TextField id={`${prefix}-${word}`} label={label} value={secret} disabled={disabled} secret onChange={setSecret} />
      <div className="actions">
        <button
          type="button"
          className="secondary"
          data-testid={`${prefix}-store-${word}`}
          disabled={disabled || !whoOk || secret.trim() === ""}
          title={`Stores the ${word} in the OS keychain`}
          onClick={() => void store()}
        >
          Store {word}
        </button>
        <button type="button" className="secondary" data-testid={`${prefix}-check-${word}`} disabled={disabled || !whoOk} onClick={() => void check()}>
          Is a {word} stored?
        </button>
        {known && known.who === who && (
          <span className={`test-result ${known.ok ? "ok" : "busy"}`} role="status" data-testid={`${prefix}-${word}-status`}>
            {known.ok ? `A ${word} for ${who} is in the OS keychain.` : `No ${word} stored for ${who}.`}
          </span>
        )}
        {secretError && <ErrorNote error={secretError} testId={`${prefix}-${word}-error`} />}
      </div>
      <div className="actions">
        <button
          type="button"
          className="secondary"
          data-testid={`${prefix}-test`}
          disabled={disabled || !testReady || testState?.phase === "busy"}
          title={`Logs in with the stored ${word} and lists the accounts. Saves nothing.`}
          onClick={() => void run()}
        >
          {testState?.phase === "busy" ? "Testing…" : "Test connection"}
        </button>
        {shown?.phase === "ok" && (
          <span className="test-result ok" role="status" data-testid={`${prefix}-test-status`}>
            {shown.result.apiUrl}: account <strong>{shown.result.account}</strong> in {shown.result.millis} ms
            {shown.result.live ? " — real money" : ""}.
          </span>
        )}
        {shown?.phase === "error" && <ErrorNote error={shown.error} testId={`${prefix}-test-error`} />}
      </div>
      <p className="hint">The {word} is kept in the OS keychain, never in a file; it applies at the next start.</p>
    </>
  );
}

type VenueProps = { backend: Backend; form: VenueForm; onChange: (f: VenueForm) => void; disabled: boolean };

/** Tradier: environment, account, an optional API URL, and the access token. */
function TradierFields({ backend, form, onChange, disabled }: VenueProps) {
  const errors = validateTradier(form);
  const set = (change: Partial<VenueForm>) => onChange({ ...form, ...change });
  const account = form.tradierAccount.trim();
  return (
    <>
      <div className="quick-picks" role="group" aria-label="Tradier environment">
        {(["sandbox", "live"] as const).map((env) => (
          <button
            key={env}
            type="button"
            className="secondary"
            data-testid={`tradier-env-${env}`}
            aria-pressed={form.tradierEnv === env}
            disabled={disabled}
            onClick={() => set({ tradierEnv: env })}
          >
            {env === "sandbox" ? "Sandbox (paper)" : "Live"}
          </button>
        ))}
      </div>
      {form.tradierEnv === "live" && (
        <p className="live-warning error" role="alert" data-testid="tradier-live-warning">
          LIVE Tradier account: orders the guard sends trade real money.
        </p>
      )}
      <TextField
        id="tradier-account"
        label="Account"
        value={form.tradierAccount}
        error={form.tradierAccount === "" ? undefined : errors.tradierAccount}
        disabled={disabled}
        placeholder="VA12345678"
        onChange={(tradierAccount) => set({ tradierAccount })}
      />
      <TextField
        id="tradier-url"
        label="API URL"
        value={form.tradierUrl}
        error={errors.tradierUrl}
        disabled={disabled}
        placeholder="the environment's"
        onChange={(tradierUrl) => set({ tradierUrl })}
      />
      <SecretFields
        prefix="tradier"
        word="token"
        label="Access token"
        who={account}
        whoOk={errors.tradierAccount === undefined}
        testKey={JSON.stringify([account, form.tradierEnv, form.tradierUrl.trim()])}
        testReady={Object.keys(errors).length === 0}
        disabled={disabled}
        save={(who, secret) => backend.saveTradierToken(who, secret)}
        stored={(who) => backend.tradierTokenStored(who)}
        test={async () => {
          const venue = toVenueSettings({ ...form, kind: "tradier" });
          return venue ? backend.testTradierConnection(venue) : { status: "error", error: { code: "invalid_input", reason: "tradier.settings", message: "Fix the fields first" } };
        }}
      />
    </>
  );
}

/** ProjectX: the user, the account, the firm's URLs (empty: TopstepX), and the API key. */
function ProjectxFields({ backend, form, onChange, disabled }: VenueProps) {
  const errors = validateProjectx(form);
  const set = (change: Partial<VenueForm>) => onChange({ ...form, ...change });
  const user = form.projectxUser.trim();
  const shownError = (k: keyof ProjectxErrors, v: string) => (v === "" && (k === "projectxUser" || k === "projectxAccount") ? undefined : errors[k]);
  return (
    <>
      <TextField
        id="projectx-user"
        label="User name"
        value={form.projectxUser}
        error={shownError("projectxUser", form.projectxUser)}
        disabled={disabled}
        onChange={(projectxUser) => set({ projectxUser })}
      />
      <TextField
        id="projectx-account"
        label="Account"
        value={form.projectxAccount}
        error={shownError("projectxAccount", form.projectxAccount)}
        disabled={disabled}
        placeholder="50KTC-V2-…"
        onChange={(projectxAccount) => set({ projectxAccount })}
      />
      <TextField
        id="projectx-api"
        label="Firm API URL"
        value={form.projectxApi}
        error={errors.projectxApi}
        disabled={disabled}
        placeholder="TopstepX"
        onChange={(projectxApi) => set({ projectxApi })}
      />
      <TextField
        id="projectx-rtc"
        label="Firm hubs URL"
        value={form.projectxRtc}
        error={errors.projectxRtc}
        disabled={disabled}
        placeholder="the API URL's (TopstepX: rtc)"
        onChange={(projectxRtc) => set({ projectxRtc })}
      />
      <p className="live-warning error" role="alert" data-testid="projectx-live-warning">
        Prop-firm account: the guard's orders are real orders on it, the firm's rules apply.
      </p>
      <SecretFields
        prefix="projectx"
        word="key"
        label="API key"
        who={user}
        whoOk={errors.projectxUser === undefined}
        testKey={JSON.stringify([user, form.projectxAccount.trim(), form.projectxApi.trim(), form.projectxRtc.trim()])}
        testReady={Object.keys(errors).length === 0}
        disabled={disabled}
        save={(who, secret) => backend.saveProjectxKey(who, secret)}
        stored={(who) => backend.projectxKeyStored(who)}
        test={async () => {
          const venue = toVenueSettings({ ...form, kind: "projectx" });
          return venue ? backend.testProjectxConnection(venue) : { status: "error", error: { code: "invalid_input", reason: "projectx.settings", message: "Fix the fields first" } };
        }}
      />
    </>
  );
}
