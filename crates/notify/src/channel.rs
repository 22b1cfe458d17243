//! [`send`]: one message to one channel, once. Retries, rate limits and the record are the
//! relay's. Each transport follows its service's documented request:
//!
//! | channel | request | documentation |
//! |---|---|---|
//! | email | SMTP, STARTTLS (587) or TLS (465), AUTH when a username is set | RFC 5321, RFC 3207 |
//! | slack | `POST <webhook URL>` JSON `{"text": …}` | <https://api.slack.com/messaging/webhooks> |
//! | discord | `POST <webhook URL>?wait=true` JSON `{"content": …}` (≤ 2,000 characters) | <https://discord.com/developers/docs/resources/webhook#execute-webhook> |
//! | webhook | `POST <URL>` JSON: the [`Message`] fields | (ours) |
//! | ntfy | `POST <server>/<topic>`, body = text, headers `Title`, `Priority` (5 urgent, 4 high, 3 default), `Tags`, optional `Authorization: Bearer` | <https://docs.ntfy.sh/publish/> |
//! | telegram | `POST <api>/bot<token>/sendMessage` JSON `{"chat_id", "text"}` (≤ 4,096 characters) | <https://core.telegram.org/bots/api#sendmessage> |
//!
//! An HTTP 429 is [`NotifyError::RateLimited`] with the server's `Retry-After` (Slack, ntfy)
//! or JSON `retry_after` / `parameters.retry_after` (Discord, Telegram); other 4xx are
//! permanent except 408; 5xx and transport failures are retried.

use crate::config::{ChannelConfig, ChannelKind, SmtpSecurity};
use crate::error::NotifyError;
use crate::message::Message;
use std::sync::OnceLock;
use std::time::Duration;

/// Budget of one HTTP request.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Budget of one SMTP exchange (connect, TLS, AUTH, DATA).
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

/// Installs rustls' ring provider as the process default (reqwest and lettre share it). An
/// Err means another part of the process installed one first, which is as good.
// ring is deprecated in rustls 0.23.48 for lacking post-quantum key exchange; aws-lc-rs has
// it but builds a C library with cmake, minutes on the 2-core CI. Classic ECDHE is what SMTP
// servers and webhook hosts negotiate today.
#[allow(deprecated)]
fn install_tls() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

fn http() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        install_tls();
        reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .user_agent(concat!("tradeguard/", env!("CARGO_PKG_VERSION")))
            .build()
            // Only fails when the TLS backend cannot start; the default client then says why
            // at each send instead of a panic here.
            .unwrap_or_default()
    })
}

/// Sends `m` through `ch` with its `secret` (from the keychain; `None` when it has none).
pub async fn send(
    ch: &ChannelConfig,
    secret: Option<&str>,
    m: &Message,
) -> Result<(), NotifyError> {
    let name = ch.name.as_str();
    let need = |s: Option<&str>| -> Result<String, NotifyError> {
        s.filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| NotifyError::SecretMissing(name.to_owned()))
    };
    match &ch.kind {
        ChannelKind::Email {
            host,
            port,
            security,
            username,
            from,
            to,
        } => {
            let password = if username.is_empty() {
                None
            } else {
                Some(need(secret)?)
            };
            email(
                name, host, *port, *security, username, password, from, to, m,
            )
            .await
        }
        ChannelKind::Slack => {
            let url = need(secret)?;
            post_json(
                name,
                &url,
                &serde_json::json!({ "text": m.chat(40_000) }),
                &[],
            )
            .await
        }
        ChannelKind::Discord => {
            let url = need(secret)?;
            let url = if url.contains('?') {
                format!("{url}&wait=true")
            } else {
                format!("{url}?wait=true")
            };
            let body = serde_json::json!({ "content": m.chat(2_000), "username": "Tradeguard" });
            post_json(name, &url, &body, &[]).await
        }
        ChannelKind::Webhook => {
            let url = need(secret)?;
            let body = serde_json::json!({ "source": "tradeguard", "message": m });
            post_json(name, &url, &body, &[]).await
        }
        ChannelKind::Ntfy { server, topic } => {
            let url = format!("{}/{topic}", server.trim_end_matches('/'));
            let (priority, tags) = match m.severity {
                "CRITICAL" => ("5", "rotating_light"),
                "WARNING" => ("4", "warning"),
                _ => ("3", "information_source"),
            };
            let mut req = http()
                .post(&url)
                // Header values must be ASCII-safe: the title may carry "×" and "—".
                .header("Title", ascii_header(&m.subject()))
                .header("Priority", priority)
                .header("Tags", tags)
                .body(m.text());
            if let Some(token) = secret.filter(|s| !s.is_empty()) {
                req = req.bearer_auth(token);
            }
            answer(name, req.send().await).await
        }
        ChannelKind::Telegram { chat_id, api } => {
            let token = need(secret)?;
            let url = format!("{}/bot{token}/sendMessage", api.trim_end_matches('/'));
            let body = serde_json::json!({
                "chat_id": chat_id,
                "text": m.chat(4_096),
                "disable_web_page_preview": true,
            });
            // The URL holds the token: errors are reported without it.
            post_json(name, &url, &body, &[token.as_str()]).await
        }
    }
}

/// `s` with every non-ASCII character replaced (HTTP header values).
fn ascii_header(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '—' | '–' => '-',
            '×' => 'x',
            c if c.is_ascii() && !c.is_ascii_control() => c,
            _ => '?',
        })
        .collect()
}

/// `text` with every secret in it replaced by `***`.
fn redact(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(text.to_owned(), |t, s| t.replace(s, "***"))
}

async fn post_json(
    name: &str,
    url: &str,
    body: &serde_json::Value,
    hide: &[&str],
) -> Result<(), NotifyError> {
    // The URL itself is a secret (Slack, Discord, webhooks): never in an error.
    let mut hide = hide.to_vec();
    hide.push(url);
    answer(name, http().post(url).json(body).send().await)
        .await
        .map_err(|e| match e {
            NotifyError::Unreachable { channel, detail } => NotifyError::Unreachable {
                channel,
                detail: redact(&detail, &hide),
            },
            NotifyError::Rejected {
                channel,
                status,
                detail,
                permanent,
            } => NotifyError::Rejected {
                channel,
                status,
                detail: redact(&detail, &hide),
                permanent,
            },
            e => e,
        })
}

async fn answer(
    name: &str,
    r: Result<reqwest::Response, reqwest::Error>,
) -> Result<(), NotifyError> {
    let resp = match r {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return Err(NotifyError::Timeout {
                channel: name.to_owned(),
                after: HTTP_TIMEOUT,
            });
        }
        Err(e) => {
            return Err(NotifyError::Unreachable {
                channel: name.to_owned(),
                // Without the URL (reqwest puts it in its Display).
                detail: e.without_url().to_string(),
            });
        }
    };
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let header_wait = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok());
    let text = resp.text().await.unwrap_or_default();
    if status.as_u16() == 429 {
        let json: Option<serde_json::Value> = serde_json::from_str(&text).ok();
        let body_wait = json.as_ref().and_then(|j| {
            j.get("retry_after")
                .or_else(|| j.get("parameters").and_then(|p| p.get("retry_after")))
                .and_then(serde_json::Value::as_f64)
        });
        let secs = header_wait
            .or(body_wait)
            .unwrap_or(30.0)
            .clamp(1.0, 3_600.0);
        return Err(NotifyError::RateLimited {
            channel: name.to_owned(),
            retry_after: Duration::from_secs_f64(secs),
        });
    }
    let detail: String = text.chars().take(300).collect();
    Err(NotifyError::Rejected {
        channel: name.to_owned(),
        status: status.as_u16(),
        detail: if detail.is_empty() {
            status.canonical_reason().unwrap_or("").to_owned()
        } else {
            detail
        },
        permanent: status.is_client_error() && status.as_u16() != 408,
    })
}

#[allow(clippy::too_many_arguments)]
async fn email(
    name: &str,
    host: &str,
    port: u16,
    security: SmtpSecurity,
    username: &str,
    password: Option<String>,
    from: &str,
    to: &[String],
    m: &Message,
) -> Result<(), NotifyError> {
    use lettre::message::header::ContentType;
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
    let cfg_err = |field: &str, reason: String| NotifyError::Config {
        line: None,
        field: format!("channel {name:?}: {field}"),
        reason,
    };
    install_tls();
    let mut mail = lettre::Message::builder()
        .from(from.parse().map_err(|e| cfg_err("from", format!("{e}")))?)
        .subject(m.subject())
        .header(ContentType::TEXT_PLAIN);
    for t in to {
        mail = mail.to(t.parse().map_err(|e| cfg_err("to", format!("{t}: {e}")))?);
    }
    let mail = mail
        .body(m.text())
        .map_err(|e| cfg_err("message", e.to_string()))?;
    let builder = match security {
        SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
        SmtpSecurity::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
        SmtpSecurity::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
            host,
        )),
    }
    .map_err(|e| cfg_err("host", e.to_string()))?;
    let mut builder = builder.port(port).timeout(Some(SMTP_TIMEOUT));
    if let Some(pw) = password {
        builder = builder.credentials(Credentials::new(username.to_owned(), pw));
    }
    let transport = builder.build();
    match transport.send(mail).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_timeout() => Err(NotifyError::Timeout {
            channel: name.to_owned(),
            after: SMTP_TIMEOUT,
        }),
        Err(e) => match e.status() {
            Some(code) => Err(NotifyError::Rejected {
                channel: name.to_owned(),
                status: code.into(),
                detail: e.to_string(),
                permanent: e.is_permanent(),
            }),
            None => Err(NotifyError::Unreachable {
                channel: name.to_owned(),
                detail: e.to_string(),
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_reach_an_error_text() {
        let t = redact(
            "POST https://hooks.slack.com/services/T0/B0/XYZ failed: bot123:ABC",
            &["https://hooks.slack.com/services/T0/B0/XYZ", "123:ABC"],
        );
        assert_eq!(t, "POST *** failed: bot***");
    }

    #[test]
    fn header_text_is_ascii() {
        assert_eq!(
            ascii_header("SPY 440 P ×1 — sent é"),
            "SPY 440 P x1 - sent ?"
        );
    }
}
