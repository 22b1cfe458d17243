//! The alerts file (`alerts.toml`): one `[[channel]]` table per channel, no secrets in it.
//! The desktop writes it from Settings; `tradeguard guard --alerts FILE` reads it.
//!
//! ```toml
//! [[channel]]
//! name = "phone"                 # unique; names the keychain entry of its secret
//! type = "ntfy"                  # email | slack | discord | webhook | ntfy | telegram
//! server = "https://ntfy.sh"
//! topic = "my-tradeguard-alerts"
//! min_severity = "warning"       # critical (default) | warning | info
//! ```
//!
//! Routing: a Critical alert, and every alert of an assignment (`assignment.*`: the detection,
//! each order the guard sends, the close's end), goes to every enabled channel; a Warning or
//! an Info alert goes to the channels whose `min_severity` admits it and, when the channel
//! lists `kinds` (code prefixes such as `"stop"`, `"close"`), whose list names it.

use crate::error::NotifyError;
use serde::{Deserialize, Serialize};
use tradeguard_engine::alert::{Alert, Severity};

/// Every channel of the alerts file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// The daily summary's settings (`[summary]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<SummaryConfig>,
    /// The channels, in file order.
    #[serde(default)]
    pub channel: Vec<ChannelConfig>,
}

/// `[summary]`: when the daily summary goes out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummaryConfig {
    /// New York time, `HH:MM` (default 16:30, after the close).
    #[serde(default = "summary_at")]
    pub at: String,
}

fn summary_at() -> String {
    "16:30".to_owned()
}

impl AlertsConfig {
    /// When the daily summary goes out (New York time), `None` when no channel asks for it.
    pub fn summary_time(&self) -> Option<chrono::NaiveTime> {
        if !self.channel.iter().any(|c| c.enabled && c.daily_summary) {
            return None;
        }
        let at = self
            .summary
            .as_ref()
            .map_or_else(summary_at, |s| s.at.clone());
        chrono::NaiveTime::parse_from_str(&at, "%H:%M").ok()
    }
}

/// How severe an alert must be for a channel to carry it (Critical always is).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MinSeverity {
    /// Everything.
    Info,
    /// Warnings and Critical.
    Warning,
    /// Critical only (the default).
    #[default]
    Critical,
}

impl MinSeverity {
    fn admits(self, s: Severity) -> bool {
        let floor = match self {
            Self::Info => Severity::Info,
            Self::Warning => Severity::Warning,
            Self::Critical => Severity::Critical,
        };
        s >= floor
    }
}

/// One channel. (Unknown keys are refused by [`AlertsConfig::parse`]: serde cannot with
/// `flatten`.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelConfig {
    /// Unique name (letters, digits, `-`, `_`); its secret is the keychain entry
    /// `tradeguard` / `alerts/<name>`.
    pub name: String,
    /// Off: kept in the file, sends nothing.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Least severity carried (Critical and assignments always are).
    #[serde(default)]
    pub min_severity: MinSeverity,
    /// When not empty: the Warning/Info alerts carried are only those whose code starts with
    /// one of these (`"stop"`, `"close"`, `"guard.connection"`).
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Carries the daily summary (`summary.daily`, at the `[summary]` time).
    #[serde(default)]
    pub daily_summary: bool,
    /// Most messages a minute (the rest wait their turn; none is dropped).
    #[serde(default = "default_rate")]
    pub per_minute: u32,
    /// The kind of channel and its settings.
    #[serde(flatten)]
    pub kind: ChannelKind,
}

fn yes() -> bool {
    true
}

fn default_rate() -> u32 {
    20
}

/// Transport security of an SMTP channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (port 587); the default.
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only to a server on this machine (a local relay, tests).
    None,
}

/// The kinds of channel. The secret of each (password, webhook URL, token) is in the keychain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ChannelKind {
    /// Email over SMTP. Secret: the password (none when `username` is empty).
    Email {
        /// SMTP server.
        host: String,
        /// Port (587 STARTTLS, 465 TLS).
        port: u16,
        /// Transport security.
        #[serde(default)]
        security: SmtpSecurity,
        /// Login (empty: no authentication).
        #[serde(default)]
        username: String,
        /// Sender address.
        from: String,
        /// Recipients.
        to: Vec<String>,
    },
    /// Slack incoming webhook. Secret: the webhook URL.
    Slack,
    /// Discord webhook. Secret: the webhook URL.
    Discord,
    /// Any HTTP endpoint taking a JSON POST. Secret: the URL.
    Webhook,
    /// ntfy topic (phone push; ntfy.sh or self-hosted). Secret: an access token (optional).
    Ntfy {
        /// Server, e.g. `https://ntfy.sh`.
        server: String,
        /// Topic.
        topic: String,
    },
    /// Telegram bot message. Secret: the bot token.
    Telegram {
        /// Chat id the bot writes to.
        chat_id: String,
        /// Bot API base (default `https://api.telegram.org`).
        #[serde(default = "telegram_api")]
        api: String,
    },
}

fn telegram_api() -> String {
    "https://api.telegram.org".to_owned()
}

impl ChannelKind {
    /// The `type` word of the file.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Email { .. } => "email",
            Self::Slack => "slack",
            Self::Discord => "discord",
            Self::Webhook => "webhook",
            Self::Ntfy { .. } => "ntfy",
            Self::Telegram { .. } => "telegram",
        }
    }

    /// Whether the channel has a secret to look up (an ntfy token is optional; an email
    /// channel without a login has none).
    pub fn uses_secret(&self) -> bool {
        !matches!(self, Self::Email { username, .. } if username.is_empty())
    }

    /// Whether the channel cannot send without its secret.
    pub fn needs_secret(&self) -> bool {
        match self {
            Self::Email { username, .. } => !username.is_empty(),
            Self::Ntfy { .. } => false,
            _ => true,
        }
    }
}

impl ChannelConfig {
    /// Whether this channel carries `a` (see the module docs).
    pub fn carries(&self, a: &Alert) -> bool {
        if !self.enabled {
            return false;
        }
        if a.code == crate::summary::CODE {
            return self.daily_summary;
        }
        if a.severity == Severity::Critical || a.code.starts_with("assignment.") {
            return true;
        }
        self.min_severity.admits(a.severity)
            && (self.kinds.is_empty() || self.kinds.iter().any(|k| a.code.starts_with(k.as_str())))
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Refuses a key no channel of its type has (a misspelt `min_severity` must not silently
/// route less).
fn unknown_keys(text: &str, cfg: &AlertsConfig) -> Result<(), NotifyError> {
    const COMMON: [&str; 7] = [
        "name",
        "type",
        "enabled",
        "min_severity",
        "kinds",
        "per_minute",
        "daily_summary",
    ];
    let Ok(table) = text.parse::<toml::Table>() else {
        return Ok(());
    };
    let Some(list) = table.get("channel").and_then(toml::Value::as_array) else {
        return Ok(());
    };
    for (c, raw) in cfg.channel.iter().zip(list) {
        let own: &[&str] = match c.kind {
            ChannelKind::Email { .. } => &["host", "port", "security", "username", "from", "to"],
            ChannelKind::Ntfy { .. } => &["server", "topic"],
            ChannelKind::Telegram { .. } => &["chat_id", "api"],
            ChannelKind::Slack | ChannelKind::Discord | ChannelKind::Webhook => &[],
        };
        if let Some(k) = raw.as_table().and_then(|t| {
            t.keys()
                .find(|k| !COMMON.contains(&k.as_str()) && !own.contains(&k.as_str()))
        }) {
            return Err(invalid(
                &c.name,
                "keys",
                format!(
                    "unknown key {k:?} for a {} channel (secrets such as URLs and tokens go in the keychain, not here)",
                    c.kind.type_name()
                ),
            ));
        }
    }
    Ok(())
}

fn invalid(channel: &str, field: &'static str, reason: impl Into<String>) -> NotifyError {
    NotifyError::Config {
        line: None,
        field: format!("channel {channel:?}: {field}"),
        reason: reason.into(),
    }
}

impl AlertsConfig {
    /// Parses and validates the file's text. Errors name the line (when the parser knows it)
    /// and the field.
    pub fn parse(text: &str) -> Result<Self, NotifyError> {
        let cfg: Self = toml::from_str(text).map_err(|e| NotifyError::Config {
            line: e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1),
            field: String::new(),
            reason: e.message().to_owned(),
        })?;
        unknown_keys(text, &cfg)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The file's text.
    pub fn to_toml(&self) -> String {
        // Serializing plain structs and enums of strings cannot fail.
        toml::to_string(self).unwrap_or_default()
    }

    /// Checks every channel; the first problem is the error.
    pub fn validate(&self) -> Result<(), NotifyError> {
        if let Some(s) = &self.summary
            && chrono::NaiveTime::parse_from_str(&s.at, "%H:%M").is_err()
        {
            return Err(NotifyError::Config {
                line: None,
                field: "summary: at".to_owned(),
                reason: format!("{:?} is not a time HH:MM (New York)", s.at),
            });
        }
        let mut seen = std::collections::BTreeSet::new();
        for c in &self.channel {
            let n = c.name.as_str();
            if n.is_empty()
                || !n
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
            {
                return Err(invalid(
                    n,
                    "name",
                    "letters, digits, '-' and '_' only, not empty",
                ));
            }
            if !seen.insert(n) {
                return Err(invalid(n, "name", "two channels have this name"));
            }
            if c.per_minute == 0 {
                return Err(invalid(n, "per_minute", "at least 1"));
            }
            match &c.kind {
                ChannelKind::Email {
                    host,
                    port,
                    security,
                    username,
                    from,
                    to,
                } => {
                    if host.is_empty() || *port == 0 {
                        return Err(invalid(n, "host", "an SMTP host and port are needed"));
                    }
                    if *security == SmtpSecurity::None && !is_loopback(host) {
                        return Err(invalid(
                            n,
                            "security",
                            format!(
                                "\"none\" sends in clear text: only to a server on this machine, not {host}; use \"starttls\" or \"tls\""
                            ),
                        ));
                    }
                    if *security == SmtpSecurity::None && !username.is_empty() {
                        return Err(invalid(
                            n,
                            "username",
                            "no login without encryption (security = \"none\")",
                        ));
                    }
                    if from.parse::<lettre::message::Mailbox>().is_err() {
                        return Err(invalid(n, "from", format!("{from:?} is not an address")));
                    }
                    if to.is_empty() {
                        return Err(invalid(n, "to", "at least one recipient"));
                    }
                    if let Some(bad) = to
                        .iter()
                        .find(|t| t.parse::<lettre::message::Mailbox>().is_err())
                    {
                        return Err(invalid(n, "to", format!("{bad:?} is not an address")));
                    }
                }
                ChannelKind::Ntfy { server, topic } => {
                    if !(server.starts_with("https://") || server.starts_with("http://")) {
                        return Err(invalid(n, "server", "an http(s):// URL"));
                    }
                    if topic.is_empty() || topic.contains('/') {
                        return Err(invalid(n, "topic", "one path segment, not empty"));
                    }
                }
                ChannelKind::Telegram { chat_id, api } => {
                    if chat_id.is_empty() {
                        return Err(invalid(n, "chat_id", "not empty"));
                    }
                    if !(api.starts_with("https://") || api.starts_with("http://")) {
                        return Err(invalid(n, "api", "an http(s):// URL"));
                    }
                }
                ChannelKind::Slack | ChannelKind::Discord | ChannelKind::Webhook => {}
            }
        }
        Ok(())
    }

    /// The channel named `name`.
    pub fn get(&self, name: &str) -> Option<&ChannelConfig> {
        self.channel.iter().find(|c| c.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradeguard_model::Timestamp;

    fn alert(severity: Severity, code: &str) -> Alert {
        Alert {
            ts: Timestamp(0),
            severity,
            code: code.to_owned(),
            message: "m".to_owned(),
            group: None,
            stop: None,
        }
    }

    const FILE: &str = r#"
[[channel]]
name = "mail"
type = "email"
host = "smtp.example.com"
port = 587
username = "me@example.com"
from = "Tradeguard <me@example.com>"
to = ["me@example.com"]

[[channel]]
name = "phone"
type = "ntfy"
server = "https://ntfy.sh"
topic = "tg-alerts"
min_severity = "warning"
kinds = ["stop", "guard.connection"]
"#;

    #[test]
    fn a_file_with_two_channels_parses_and_round_trips() {
        let c = AlertsConfig::parse(FILE).unwrap();
        assert_eq!(c.channel.len(), 2);
        assert_eq!(c.channel[0].kind.type_name(), "email");
        assert!(c.channel[0].kind.needs_secret());
        assert_eq!(c.channel[1].per_minute, 20);
        assert_eq!(AlertsConfig::parse(&c.to_toml()).unwrap(), c);
    }

    #[test]
    fn routing_follows_severity_kinds_and_the_assignment_exception() {
        let c = AlertsConfig::parse(FILE).unwrap();
        let (mail, phone) = (&c.channel[0], &c.channel[1]);
        assert!(mail.carries(&alert(Severity::Critical, "close.needs_manual_action")));
        assert!(!mail.carries(&alert(Severity::Warning, "stop.placed")));
        // The whole assignment story, whatever its severity.
        assert!(mail.carries(&alert(Severity::Info, "assignment.order_sent")));
        assert!(phone.carries(&alert(Severity::Warning, "stop.cancel_rejected")));
        assert!(phone.carries(&alert(Severity::Warning, "guard.connection_lost")));
        assert!(!phone.carries(&alert(Severity::Warning, "group.late_fill")));
        assert!(!phone.carries(&alert(Severity::Info, "stop.placed")));
        let summary = Alert {
            severity: Severity::Info,
            ..alert(Severity::Info, crate::summary::CODE)
        };
        assert!(!mail.carries(&summary) && !phone.carries(&summary));
        let mut daily = phone.clone();
        daily.daily_summary = true;
        assert!(daily.carries(&summary));
        assert_eq!(c.summary_time(), None);
        let mut off = phone.clone();
        off.enabled = false;
        assert!(!off.carries(&alert(Severity::Critical, "assignment.detected")));
    }

    #[test]
    fn bad_files_say_which_line_or_field() {
        let e = AlertsConfig::parse("[[channel]]\nname = \"x\"\ntype = \"pager\"\n").unwrap_err();
        assert_eq!(e.code(), "alerts.config_invalid");
        assert!(e.to_string().contains("line"), "{e}");
        let clear = FILE.replace("port = 587", "port = 587\nsecurity = \"none\"");
        let e = AlertsConfig::parse(&clear).unwrap_err().to_string();
        assert!(e.contains("clear text"), "{e}");
        let e = AlertsConfig::parse(&FILE.replace("min_severity", "min_severity_"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown key \"min_severity_\""), "{e}");
        let e = AlertsConfig::parse(
            "[[channel]]\nname = \"s\"\ntype = \"slack\"\nurl = \"https://hooks\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("keychain"), "{e}");
        let twice = format!("{FILE}\n[[channel]]\nname = \"mail\"\ntype = \"slack\"\n");
        assert!(
            AlertsConfig::parse(&twice)
                .unwrap_err()
                .to_string()
                .contains("two channels")
        );
        let e = AlertsConfig::parse(&FILE.replace("me@example.com\"]", "not an address\"]"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an address"), "{e}");
    }

    #[test]
    fn the_summary_time_is_checked_and_defaults_after_the_close() {
        let f =
            format!("{FILE}\n[[channel]]\nname = \"d\"\ntype = \"slack\"\ndaily_summary = true\n");
        let c = AlertsConfig::parse(&f).unwrap();
        assert_eq!(c.summary_time(), chrono::NaiveTime::from_hms_opt(16, 30, 0));
        let c = AlertsConfig::parse(&format!("[summary]\nat = \"17:05\"\n{f}")).unwrap();
        assert_eq!(c.summary_time(), chrono::NaiveTime::from_hms_opt(17, 5, 0));
        let e = AlertsConfig::parse(&format!("[summary]\nat = \"5pm\"\n{f}")).unwrap_err();
        assert!(e.to_string().contains("summary: at"), "{e}");
    }

    #[test]
    fn the_example_file_parses() {
        let c = AlertsConfig::parse(include_str!("../../../config/alerts.example.toml")).unwrap();
        assert_eq!(c.channel.len(), 3);
    }

    #[test]
    fn clear_text_smtp_is_accepted_on_loopback_only() {
        let local = "[[channel]]\nname = \"l\"\ntype = \"email\"\nhost = \"127.0.0.1\"\nport = 2525\nsecurity = \"none\"\nfrom = \"a@b.c\"\nto = [\"a@b.c\"]\n";
        assert!(AlertsConfig::parse(local).is_ok());
    }
}
