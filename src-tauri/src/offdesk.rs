//! Settings → Alerts: the off-desk channels (email, Slack, Discord, JSON webhook, ntfy,
//! Telegram). Thin: the file, routing, delivery and the record are `tradeguard-notify`'s; this
//! module reads and writes `alerts.toml` beside the rules file, keeps secrets in the OS
//! keychain, and turns the relay's state into views.

use crate::error::{ErrorCode, IpcError};
use crate::state::AppState;
use serde::{Deserialize, Serialize};
use specta::Type;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tradeguard_engine::enforce::Guard;
use tradeguard_model::Clock;
use tradeguard_notify::{
    AlertsConfig, ChannelConfig, ChannelKind, Keychain, MinSeverity, NotifyError, Relay,
    SecretStore, SmtpSecurity,
};

/// The alerts file: beside the rules file in the configuration folder.
pub fn alerts_file(rules_path: &Path) -> PathBuf {
    rules_path.with_file_name("alerts.toml")
}

fn ipc(e: &NotifyError) -> IpcError {
    let code = match e {
        NotifyError::Config { .. } => ErrorCode::InvalidInput,
        NotifyError::UnknownChannel(_) => ErrorCode::NotFound,
        _ => ErrorCode::Unavailable,
    };
    IpcError::new(code, e.code(), e.to_string())
}

/// Reads the alerts file: none is no channel; a bad one is an error.
fn read(path: &Path) -> Result<AlertsConfig, NotifyError> {
    if !path.exists() {
        return Ok(AlertsConfig::default());
    }
    tradeguard_notify::read_config(path)
}

/// Starts the relay for the venue's guard. A bad alerts file never stops the guard: no
/// channel runs and a Critical alert names the line; saving channels in Settings applies them.
pub async fn start(
    guard: &Guard,
    journal: Arc<dyn tradeguard_engine::Journal>,
    clock: Arc<dyn Clock>,
    rules_path: &Path,
    inbox: (Arc<tradeguard_notify::Inbox>, tradeguard_notify::InboxRx),
) -> Option<Relay> {
    let path = alerts_file(rules_path);
    let config = match read(&path) {
        Ok(c) => c,
        Err(e) => {
            tradeguard_notify::alert_rejected(guard, &path, &e, "Fix it in Settings → Alerts.")
                .await;
            AlertsConfig::default()
        }
    };
    tracing::info!(channels = config.channel.len(), file = %path.display(), "off-desk alerts");
    tradeguard_notify::start_for_guard(guard, journal, clock, config, Arc::new(Keychain), inbox)
        .await
}

/// One channel as Settings edits it (flat: the fields of every kind, the unused ones empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct ChannelForm {
    pub name: String,
    /// `email`, `slack`, `discord`, `webhook`, `ntfy`, `telegram`.
    pub kind: String,
    pub enabled: bool,
    /// `critical`, `warning`, `info`.
    pub min_severity: String,
    /// Code prefixes for Warning/Info (empty: all).
    pub kinds: Vec<String>,
    pub per_minute: u32,
    /// Carries the daily summary.
    pub daily_summary: bool,
    pub host: String,
    pub port: u16,
    /// `starttls`, `tls`, `none`.
    pub security: String,
    pub username: String,
    pub from: String,
    pub to: Vec<String>,
    pub server: String,
    pub topic: String,
    pub chat_id: String,
}

fn word<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl ChannelForm {
    fn of(c: &ChannelConfig) -> Self {
        let mut f = Self {
            name: c.name.clone(),
            kind: c.kind.type_name().to_owned(),
            enabled: c.enabled,
            min_severity: word(&c.min_severity),
            kinds: c.kinds.clone(),
            per_minute: c.per_minute,
            daily_summary: c.daily_summary,
            host: String::new(),
            port: 0,
            security: String::new(),
            username: String::new(),
            from: String::new(),
            to: Vec::new(),
            server: String::new(),
            topic: String::new(),
            chat_id: String::new(),
        };
        match &c.kind {
            ChannelKind::Email {
                host,
                port,
                security,
                username,
                from,
                to,
            } => {
                f.host.clone_from(host);
                f.port = *port;
                f.security = word(security);
                f.username.clone_from(username);
                f.from.clone_from(from);
                f.to.clone_from(to);
            }
            ChannelKind::Ntfy { server, topic } => {
                f.server.clone_from(server);
                f.topic.clone_from(topic);
            }
            ChannelKind::Telegram { chat_id, api } => {
                f.chat_id.clone_from(chat_id);
                f.server.clone_from(api);
            }
            ChannelKind::Slack | ChannelKind::Discord | ChannelKind::Webhook => {}
        }
        f
    }

    fn config(&self) -> Result<ChannelConfig, IpcError> {
        let bad = |field: &str, why: String| {
            IpcError::invalid_input("alerts.config_invalid", format!("{field}: {why}"))
        };
        let min_severity: MinSeverity = serde_json::from_value(self.min_severity.clone().into())
            .map_err(|_| {
                bad(
                    "minimum severity",
                    format!("{:?} is not critical, warning or info", self.min_severity),
                )
            })?;
        let kind = match self.kind.as_str() {
            "email" => ChannelKind::Email {
                host: self.host.trim().to_owned(),
                port: self.port,
                security: serde_json::from_value::<SmtpSecurity>(self.security.clone().into())
                    .map_err(|_| {
                        bad(
                            "security",
                            format!("{:?} is not starttls, tls or none", self.security),
                        )
                    })?,
                username: self.username.trim().to_owned(),
                from: self.from.trim().to_owned(),
                to: self
                    .to
                    .iter()
                    .map(|t| t.trim().to_owned())
                    .filter(|t| !t.is_empty())
                    .collect(),
            },
            "slack" => ChannelKind::Slack,
            "discord" => ChannelKind::Discord,
            "webhook" => ChannelKind::Webhook,
            "ntfy" => ChannelKind::Ntfy {
                server: self.server.trim().to_owned(),
                topic: self.topic.trim().to_owned(),
            },
            "telegram" => ChannelKind::Telegram {
                chat_id: self.chat_id.trim().to_owned(),
                api: if self.server.trim().is_empty() {
                    "https://api.telegram.org".to_owned()
                } else {
                    self.server.trim().to_owned()
                },
            },
            other => return Err(bad("type", format!("{other:?} is not a channel type"))),
        };
        Ok(ChannelConfig {
            name: self.name.trim().to_owned(),
            enabled: self.enabled,
            min_severity,
            kinds: self
                .kinds
                .iter()
                .map(|k| k.trim().to_owned())
                .filter(|k| !k.is_empty())
                .collect(),
            per_minute: self.per_minute,
            daily_summary: self.daily_summary,
            kind,
        })
    }
}

/// One channel with its state.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct ChannelView {
    pub form: ChannelForm,
    /// Its secret is in the keychain (`None`: the keychain could not be asked).
    pub has_secret: Option<bool>,
    /// It cannot send without one.
    pub needs_secret: bool,
    pub pending: u32,
    pub sent: u32,
    /// Failed attempts in a row.
    pub failing: u32,
    /// The last failure.
    pub last_error: Option<String>,
}

/// One delivery of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    pub id: String,
    pub channel: String,
    pub code: String,
    pub severity: String,
    /// `pending`, `sent`, `gave_up`.
    pub state: String,
    pub attempts: u32,
    pub error: Option<String>,
    /// Unix ms of the record.
    pub at_ms: f64,
}

/// Settings → Alerts.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct AlertChannels {
    /// The alerts file.
    pub file: String,
    /// Why the file could not be read, when it could not (the list is then empty).
    pub file_error: Option<String>,
    pub channels: Vec<ChannelView>,
    /// Latest deliveries, newest first.
    pub deliveries: Vec<DeliveryView>,
}

fn venue(state: &AppState) -> Result<Arc<crate::venue::Venue>, IpcError> {
    state.venue()
}

fn relay(v: &crate::venue::Venue) -> Result<&Relay, IpcError> {
    v.relay().ok_or_else(|| {
        IpcError::new(
            ErrorCode::Unavailable,
            "alerts.relay_not_started",
            "off-desk alerts did not start (see the alerts)",
        )
    })
}

async fn view(v: &crate::venue::Venue) -> AlertChannels {
    let path = alerts_file(v.rules_path());
    let (cfg, file_error) = match read(&path) {
        Ok(c) => (c, None),
        Err(e) => (AlertsConfig::default(), Some(e.to_string())),
    };
    let status = v.relay().map(Relay::channels).unwrap_or_default();
    let names: Vec<String> = cfg.channel.iter().map(|c| c.name.clone()).collect();
    let held = tokio::task::spawn_blocking(move || {
        names
            .iter()
            .map(|n| Keychain.get(n).ok().map(|s| s.is_some()))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    let channels = cfg
        .channel
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let st = status.iter().find(|s| s.name == c.name);
            ChannelView {
                form: ChannelForm::of(c),
                has_secret: held.get(i).copied().flatten(),
                needs_secret: c.kind.needs_secret(),
                pending: st.map_or(0, |s| u32::try_from(s.pending).unwrap_or(u32::MAX)),
                sent: st.map_or(0, |s| u32::try_from(s.sent).unwrap_or(u32::MAX)),
                failing: st.map_or(0, |s| s.failing),
                last_error: st.and_then(|s| s.last_error.as_ref().map(|(_, m)| m.clone())),
            }
        })
        .collect();
    let deliveries = v
        .relay()
        .map(Relay::recent)
        .unwrap_or_default()
        .into_iter()
        .take(50)
        .map(|d| DeliveryView {
            id: d.id.to_string(),
            channel: d.channel,
            code: d.alert.code,
            severity: format!("{:?}", d.alert.severity),
            state: match d.state {
                tradeguard_engine::alert::DeliveryState::Pending => "pending",
                tradeguard_engine::alert::DeliveryState::Sent => "sent",
                tradeguard_engine::alert::DeliveryState::GaveUp => "gave_up",
            }
            .to_owned(),
            attempts: d.attempts,
            error: d.error,
            at_ms: d.updated.millis() as f64,
        })
        .collect();
    AlertChannels {
        file: path.display().to_string(),
        file_error,
        channels,
        deliveries,
    }
}

/// Writes the alerts file atomically (temp file + rename).
fn write(path: &Path, cfg: &AlertsConfig) -> Result<(), IpcError> {
    let text = format!(
        "# Tradeguard off-desk alert channels (Settings → Alerts). Secrets are in the OS keychain.\n{}",
        cfg.to_toml()
    );
    crate::paths::write_atomically(path, &text).map_err(|e| {
        IpcError::new(
            ErrorCode::Storage,
            "alerts.write",
            format!("cannot write {}: {e}", path.display()),
        )
    })
}

/// The channels, their state and the latest deliveries.
#[tauri::command]
#[specta::specta]
pub async fn alert_channels(state: tauri::State<'_, AppState>) -> Result<AlertChannels, IpcError> {
    let v = venue(&state)?;
    Ok(view(&v).await)
}

/// Adds or replaces the channel `form.name` (`previous`: its name before an edit), and stores
/// `secret` in the keychain when one is given (an empty one keeps the stored secret). The
/// whole file is validated before anything is written; the relay applies it at once.
#[tauri::command]
#[specta::specta]
pub async fn save_alert_channel(
    state: tauri::State<'_, AppState>,
    form: ChannelForm,
    previous: Option<String>,
    secret: Option<String>,
) -> Result<AlertChannels, IpcError> {
    let v = venue(&state)?;
    let path = alerts_file(v.rules_path());
    let mut cfg = read(&path).map_err(|e| ipc(&e))?;
    let c = form.config()?;
    let old = previous.unwrap_or_else(|| c.name.clone());
    match cfg.channel.iter_mut().find(|x| x.name == old) {
        Some(x) => *x = c.clone(),
        None => cfg.channel.push(c.clone()),
    }
    cfg.validate().map_err(|e| ipc(&e))?;
    if let Some(s) = secret.filter(|s| !s.trim().is_empty()) {
        let name = c.name.clone();
        tokio::task::spawn_blocking(move || Keychain.set(&name, s.trim()))
            .await
            .map_err(|e| IpcError::new(ErrorCode::Internal, "alerts.keychain", e.to_string()))?
            .map_err(|e| ipc(&e))?;
    }
    write(&path, &cfg)?;
    if old != c.name {
        let old2 = old.clone();
        let moved = tokio::task::spawn_blocking(move || Keychain.get(&old2)).await;
        if let Ok(Ok(Some(s))) = moved
            && Keychain.get(&c.name).ok().flatten().is_none()
        {
            let _ = Keychain.set(&c.name, &s);
        }
        let _ = tokio::task::spawn_blocking(move || Keychain.delete(&old)).await;
    }
    let r = relay(&v)?;
    r.reconfigure(cfg).await;
    tracing::info!(channel = %c.name, kind = c.kind.type_name(), "alert channel saved");
    Ok(view(&v).await)
}

/// Removes a channel and its secret; what it had pending is given up (journaled).
#[tauri::command]
#[specta::specta]
pub async fn delete_alert_channel(
    state: tauri::State<'_, AppState>,
    name: String,
) -> Result<AlertChannels, IpcError> {
    let v = venue(&state)?;
    let path = alerts_file(v.rules_path());
    let mut cfg = read(&path).map_err(|e| ipc(&e))?;
    let before = cfg.channel.len();
    cfg.channel.retain(|c| c.name != name);
    if cfg.channel.len() == before {
        return Err(ipc(&NotifyError::UnknownChannel(name)));
    }
    write(&path, &cfg)?;
    let n = name.clone();
    if let Ok(Err(e)) = tokio::task::spawn_blocking(move || Keychain.delete(&n)).await {
        tracing::warn!(code = e.code(), "secret of channel {name} not removed: {e}");
    }
    relay(&v)?.reconfigure(cfg).await;
    Ok(view(&v).await)
}

/// Sends a test message through one channel now; the answer is the server's.
#[tauri::command]
#[specta::specta]
pub async fn test_alert_channel(
    state: tauri::State<'_, AppState>,
    name: String,
) -> Result<AlertChannels, IpcError> {
    let v = venue(&state)?;
    relay(&v)?.test(&name).await.map_err(|e| ipc(&e))?;
    Ok(view(&v).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_round_trips_every_channel_kind() {
        let cfg = AlertsConfig::parse(
            "[[channel]]\nname = \"m\"\ntype = \"email\"\nhost = \"smtp.example.com\"\nport = 465\nsecurity = \"tls\"\nusername = \"u\"\nfrom = \"a@b.c\"\nto = [\"a@b.c\"]\nmin_severity = \"warning\"\nkinds = [\"stop\"]\n\n[[channel]]\nname = \"n\"\ntype = \"ntfy\"\nserver = \"https://ntfy.sh\"\ntopic = \"t\"\n\n[[channel]]\nname = \"t\"\ntype = \"telegram\"\nchat_id = \"1\"\n\n[[channel]]\nname = \"s\"\ntype = \"slack\"\n",
        )
        .unwrap();
        for c in &cfg.channel {
            assert_eq!(&ChannelForm::of(c).config().unwrap(), c);
        }
    }

    #[test]
    fn a_bad_form_is_refused_with_its_field() {
        let mut f = ChannelForm::of(
            &AlertsConfig::parse("[[channel]]\nname = \"s\"\ntype = \"slack\"\n")
                .unwrap()
                .channel[0],
        );
        f.min_severity = "loud".into();
        let e = f.config().unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert!(e.message.contains("minimum severity"), "{}", e.message);
        f.min_severity = "critical".into();
        f.kind = "pager".into();
        assert!(f.config().unwrap_err().message.contains("pager"));
    }
}
