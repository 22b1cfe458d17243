// Settings → Alerts: the channels that reach the trader away from the desk (email, Slack,
// Discord, JSON webhook, ntfy, Telegram). The file, routing and delivery are the backend's;
// secrets go to the OS keychain and never come back to the UI.
import { useEffect, useState, type FormEvent } from "react";
import { attempt, type Backend } from "./backend";
import type { AlertChannels, ChannelForm, IpcError } from "./bindings";
import { ErrorNote } from "./ErrorNote";

export const CHANNEL_KINDS = ["email", "slack", "discord", "webhook", "ntfy", "telegram"] as const;

/** What the keychain holds for each kind. */
export const SECRET_LABEL: Record<string, string> = {
  email: "SMTP password",
  slack: "Incoming-webhook URL",
  discord: "Webhook URL",
  webhook: "URL",
  ntfy: "Access token (optional)",
  telegram: "Bot token",
};

export function emptyChannel(kind = "email"): ChannelForm {
  return {
    name: "",
    kind,
    enabled: true,
    minSeverity: "critical",
    kinds: [],
    perMinute: 20,
    dailySummary: false,
    host: "",
    port: 587,
    security: "starttls",
    username: "",
    from: "",
    to: [],
    server: kind === "ntfy" ? "https://ntfy.sh" : "",
    topic: "",
    chatId: "",
  };
}

const list = (s: string) => s.split(",").map((x) => x.trim()).filter((x) => x.length > 0);

export function AlertChannelsCard({ backend }: { backend: Backend }) {
  const [data, setData] = useState<AlertChannels | null>(null);
  const [error, setError] = useState<IpcError | null>(null);
  const [form, setForm] = useState<ChannelForm | null>(null);
  const [previous, setPrevious] = useState<string | null>(null);
  const [secret, setSecret] = useState("");
  const [busy, setBusy] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);

  useEffect(() => {
    let live = true;
    backend.alertChannels().then((res) => {
      if (!live) return;
      if (res.status === "ok") setData(res.data);
      else setError(res.error);
    });
    return () => {
      live = false;
    };
  }, [backend]);

  const run = async (what: string, call: () => ReturnType<Backend["alertChannels"]>, done: string) => {
    setBusy(what);
    setError(null);
    setNote(null);
    const res = await attempt(call);
    setBusy(null);
    if (res.status === "ok") {
      setData(res.data);
      setNote(done);
      return true;
    }
    setError(res.error);
    return false;
  };

  const save = async (e: FormEvent) => {
    e.preventDefault();
    if (!form) return;
    const ok = await run("save", () => backend.saveAlertChannel(form, previous, secret.trim() ? secret : null), `Channel "${form.name}" saved.`);
    if (ok) {
      setForm(null);
      setSecret("");
    }
  };

  const set = (change: Partial<ChannelForm>) => setForm((f) => (f ? { ...f, ...change } : f));

  return (
    <section className="card wide" aria-labelledby="alert-channels-title">
      <h2 id="alert-channels-title">Alerts away from the desk</h2>
      <p className="muted">
        Critical alerts and every step of an assignment go to every channel; warnings to the channels that ask for them.
        Secrets are kept in the OS keychain{data ? <>; channels in <code>{data.file}</code></> : null}.
      </p>
      <ErrorNote error={error} testId="alert-channels-error" />
      {data?.fileError && <p className="error" data-testid="alert-file-error">The alerts file was rejected: {data.fileError}</p>}
      {note && <p className="ok" role="status">{note}</p>}
      {data && data.channels.length === 0 && <p className="muted" data-testid="no-channels">No channel yet: alerts stay on this machine.</p>}
      {data && data.channels.length > 0 && (
        <table className="table" data-testid="alert-channels">
          <thead>
            <tr><th>Channel</th><th>Type</th><th>Carries</th><th>Secret</th><th>Delivery</th><th /></tr>
          </thead>
          <tbody>
            {data.channels.map((c) => (
              <tr key={c.form.name} data-testid={`channel-${c.form.name}`}>
                <td>{c.form.name}{!c.form.enabled && <span className="muted"> (off)</span>}</td>
                <td>{c.form.kind}</td>
                <td>{c.form.minSeverity}{c.form.kinds.length > 0 ? ` (${c.form.kinds.join(", ")})` : ""}{c.form.dailySummary ? ", daily summary" : ""}</td>
                <td>{c.hasSecret ? "in keychain" : !c.needsSecret ? "not needed" : c.hasSecret === null ? "keychain unavailable" : "missing"}</td>
                <td data-testid={`channel-state-${c.form.name}`}>
                  {c.failing > 0 ? <span className="error">failing ×{c.failing}: {c.lastError}</span> : `${c.sent} sent`}
                  {c.pending > 0 ? `, ${c.pending} waiting` : ""}
                </td>
                <td>
                  <button type="button" disabled={busy !== null} onClick={() => run(`test-${c.form.name}`, () => backend.testAlertChannel(c.form.name), `Test message delivered to "${c.form.name}".`)}>
                    {busy === `test-${c.form.name}` ? "Sending…" : "Test"}
                  </button>{" "}
                  <button type="button" disabled={busy !== null} onClick={() => { setForm({ ...c.form }); setPrevious(c.form.name); setSecret(""); }}>Edit</button>{" "}
                  <button type="button" disabled={busy !== null} onClick={() => run(`delete-${c.form.name}`, () => backend.deleteAlertChannel(c.form.name), `Channel "${c.form.name}" removed.`)}>Remove</button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {!form && (
        <p>
          <button type="button" data-testid="add-channel" onClick={() => { setForm(emptyChannel()); setPrevious(null); setSecret(""); }}>Add a channel</button>
        </p>
      )}
      {form && (
        <form onSubmit={save} className="form" data-testid="channel-form">
          <label>Name <input value={form.name} onChange={(e) => set({ name: e.target.value })} data-testid="channel-name" required /></label>
          <label>Type{" "}
            <select value={form.kind} onChange={(e) => set({ ...emptyChannel(e.target.value), name: form.name, minSeverity: form.minSeverity })} data-testid="channel-kind">
              {CHANNEL_KINDS.map((k) => <option key={k} value={k}>{k}</option>)}
            </select>
          </label>
          <label>Carries{" "}
            <select value={form.minSeverity} onChange={(e) => set({ minSeverity: e.target.value })} data-testid="channel-severity">
              <option value="critical">Critical only</option>
              <option value="warning">Warnings and Critical</option>
              <option value="info">Everything</option>
            </select>
          </label>
          <label>Only these kinds (code prefixes, comma-separated; empty: all) <input value={form.kinds.join(", ")} onChange={(e) => set({ kinds: list(e.target.value) })} /></label>
          {form.kind === "email" && (
            <>
              <label>SMTP host <input value={form.host} onChange={(e) => set({ host: e.target.value })} data-testid="channel-host" /></label>
              <label>Port <input type="number" value={form.port} onChange={(e) => set({ port: Number(e.target.value) })} /></label>
              <label>Security{" "}
                <select value={form.security} onChange={(e) => set({ security: e.target.value })}>
                  <option value="starttls">STARTTLS (587)</option>
                  <option value="tls">TLS (465)</option>
                  <option value="none">None (a relay on this machine)</option>
                </select>
              </label>
              <label>Username <input value={form.username} onChange={(e) => set({ username: e.target.value })} /></label>
              <label>From <input value={form.from} onChange={(e) => set({ from: e.target.value })} data-testid="channel-from" /></label>
              <label>To (comma-separated) <input value={form.to.join(", ")} onChange={(e) => set({ to: list(e.target.value) })} data-testid="channel-to" /></label>
            </>
          )}
          {form.kind === "ntfy" && (
            <>
              <label>Server <input value={form.server} onChange={(e) => set({ server: e.target.value })} /></label>
              <label>Topic <input value={form.topic} onChange={(e) => set({ topic: e.target.value })} data-testid="channel-topic" /></label>
            </>
          )}
          {form.kind === "telegram" && (
            <label>Chat id <input value={form.chatId} onChange={(e) => set({ chatId: e.target.value })} /></label>
          )}
          <label>{SECRET_LABEL[form.kind]} (stored in the OS keychain{previous ? "; empty keeps the stored one" : ""}){" "}
            <input type="password" autoComplete="off" value={secret} onChange={(e) => setSecret(e.target.value)} data-testid="channel-secret" />
          </label>
          <label><input type="checkbox" checked={form.dailySummary} onChange={(e) => set({ dailySummary: e.target.checked })} data-testid="channel-daily" /> Daily summary after the close (positions, P&amp;L, what the guard did)</label>
          <label><input type="checkbox" checked={form.enabled} onChange={(e) => set({ enabled: e.target.checked })} /> Enabled</label>
          <p>
            <button type="submit" disabled={busy !== null} data-testid="channel-save">{busy === "save" ? "Saving…" : "Save channel"}</button>{" "}
            <button type="button" onClick={() => setForm(null)}>Cancel</button>
          </p>
        </form>
      )}
      {data && data.deliveries.length > 0 && (
        <details>
          <summary>Latest deliveries</summary>
          <ul className="plain" data-testid="deliveries">
            {data.deliveries.slice(0, 20).map((d) => (
              <li key={`${d.id}-${d.state}-${d.attempts}`}>
                {new Date(d.atMs ?? 0).toLocaleString()} · {d.channel} · {d.code} · {d.state}
                {d.attempts > 1 ? ` after ${d.attempts} attempts` : ""}{d.error ? ` — ${d.error}` : ""}
              </li>
            ))}
          </ul>
        </details>
      )}
    </section>
  );
}
