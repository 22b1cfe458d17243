//! ProjectX's REST API: JSON `POST`s with `Authorization: Bearer`, answers in an envelope
//! (`success`, `errorCode`, `errorMessage`), 429 with `Retry-After` past 200 requests a minute
//! (<https://gateway.docs.projectx.com/docs/getting-started/rate-limits>).
//!
//! The token comes from `Auth/loginKey` (user name + API key), lives 24 hours and is renewed
//! with `Auth/validate` before then; a 401 logs in again once. A 429 or a 401 was not
//! accepted, so the call is sent again after the wait; nothing else is retried here: an order
//! call that failed otherwise goes back to the caller, which looks for its tag first.

use crate::error::ProjectxError;
use crate::settings::ProjectxSettings;
use crate::wire::{Envelope, TokenAnswer};
use reqwest::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

/// The longest wait on a 429.
const MAX_WAIT: Duration = Duration::from_secs(60);
const TRIES: u32 = 3;

static TLS: Once = Once::new();

struct Session {
    token: Option<String>,
    since: Option<Instant>,
}

/// The REST client of one login.
pub struct Rest {
    http: reqwest::Client,
    settings: ProjectxSettings,
    session: Mutex<Session>,
    /// Serialises log-ins.
    login: tokio::sync::Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Anything with an envelope.
pub trait Enveloped {
    /// The envelope.
    fn envelope(&self) -> &Envelope;
}

macro_rules! enveloped {
    ($($t:ty),*) => {$(
        impl Enveloped for $t {
            fn envelope(&self) -> &Envelope {
                &self.envelope
            }
        }
    )*};
}
enveloped!(
    crate::wire::TokenAnswer,
    crate::wire::AccountsAnswer,
    crate::wire::ContractsAnswer,
    crate::wire::PositionsAnswer,
    crate::wire::OrdersAnswer,
    crate::wire::PlaceAnswer,
    crate::wire::TradesAnswer
);

impl Enveloped for Envelope {
    fn envelope(&self) -> &Envelope {
        self
    }
}

impl Rest {
    /// A client for these settings (nothing is contacted yet).
    pub fn new(settings: ProjectxSettings) -> Result<Self, ProjectxError> {
        // ring, as the other adapters (rustls 0.23.48 deprecates it for lacking post-quantum
        // key exchange; aws-lc-rs would build a C library on the 2-core CI).
        #[allow(deprecated)]
        TLS.call_once(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
        });
        let http = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .build()
            .map_err(|e| ProjectxError::Transport(e.to_string()))?;
        Ok(Self {
            http,
            settings,
            session: Mutex::new(Session {
                token: None,
                since: None,
            }),
            login: tokio::sync::Mutex::new(()),
        })
    }

    /// The current token (logging in when there is none, renewing it when old).
    pub async fn token(&self) -> Result<String, ProjectxError> {
        let (token, since) = {
            let s = lock(&self.session);
            (s.token.clone(), s.since)
        };
        match (token, since) {
            (Some(t), Some(at)) if at.elapsed() < self.settings.renew_after => Ok(t),
            (Some(t), _) => match self.renew(&t).await {
                Ok(n) => Ok(n),
                Err(e) => {
                    tracing::warn!(
                        code = e.code(),
                        "ProjectX token renewal failed ({e}); logging in again"
                    );
                    self.log_in().await
                }
            },
            (None, _) => self.log_in().await,
        }
    }

    async fn renew(&self, old: &str) -> Result<String, ProjectxError> {
        let _one = self.login.lock().await;
        let a: TokenAnswer = self
            .raw("/api/Auth/validate", &serde_json::json!({}), Some(old))
            .await?;
        let t = a.new_token.or(a.token).unwrap_or_else(|| old.to_owned());
        *lock(&self.session) = Session {
            token: Some(t.clone()),
            since: Some(Instant::now()),
        };
        tracing::info!("ProjectX session token renewed");
        Ok(t)
    }

    /// Logs in with the API key (`Auth/loginKey`).
    pub async fn log_in(&self) -> Result<String, ProjectxError> {
        let _one = self.login.lock().await;
        let body = serde_json::json!({
            "userName": self.settings.user,
            "apiKey": self.settings.api_key.expose(),
        });
        let a: TokenAnswer =
            self.raw("/api/Auth/loginKey", &body, None)
                .await
                .map_err(|e| match e {
                    ProjectxError::Refused { code, message, .. } => {
                        ProjectxError::Unauthorized(format!("{message} (error code {code})"))
                    }
                    other => other,
                })?;
        let t = a
            .token
            .ok_or_else(|| ProjectxError::Malformed("loginKey answered no token".into()))?;
        *lock(&self.session) = Session {
            token: Some(t.clone()),
            since: Some(Instant::now()),
        };
        Ok(t)
    }

    /// Drops the token: the next call logs in again.
    pub fn forget_token(&self) {
        lock(&self.session).token = None;
    }

    /// A call with the session token; a 401 logs in again once.
    pub async fn call<B: Serialize, T: DeserializeOwned + Enveloped>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ProjectxError> {
        let token = self.token().await?;
        match self.raw(path, body, Some(&token)).await {
            Err(ProjectxError::Unauthorized(_)) => {
                lock(&self.session).token = None;
                let token = self.log_in().await?;
                self.raw(path, body, Some(&token)).await
            }
            other => other,
        }
    }

    async fn raw<B: Serialize, T: DeserializeOwned + Enveloped>(
        &self,
        path: &str,
        body: &B,
        token: Option<&str>,
    ) -> Result<T, ProjectxError> {
        let url = format!("{}{path}", self.settings.hosts.api);
        for attempt in 1..=TRIES {
            let mut req = self.http.post(&url).json(body);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let resp = req
                .send()
                .await
                .map_err(|e| ProjectxError::Transport(e.without_url().to_string()))?;
            let status = resp.status();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            let text = resp
                .text()
                .await
                .map_err(|e| ProjectxError::Transport(e.without_url().to_string()))?;
            if status == StatusCode::TOO_MANY_REQUESTS {
                let wait = Duration::from_secs(retry_after.unwrap_or(1)).min(MAX_WAIT);
                tracing::warn!(
                    path,
                    attempt,
                    wait_ms = wait.as_millis() as u64,
                    "ProjectX answered 429"
                );
                if attempt == TRIES {
                    return Err(ProjectxError::RateLimited {
                        wait_ms: wait.as_millis() as u64,
                    });
                }
                tokio::time::sleep(wait).await;
                continue;
            }
            if status == StatusCode::UNAUTHORIZED {
                return Err(ProjectxError::Unauthorized(format!("{path}: 401")));
            }
            if !status.is_success() {
                return Err(ProjectxError::Transport(format!(
                    "{path}: HTTP {status}: {}",
                    text.chars().take(200).collect::<String>()
                )));
            }
            let t: T = serde_json::from_str(&text).map_err(|e| {
                ProjectxError::Malformed(format!(
                    "{path}: {e}: {}",
                    text.chars().take(200).collect::<String>()
                ))
            })?;
            let env = t.envelope();
            if !env.success {
                return Err(ProjectxError::Refused {
                    endpoint: path.trim_start_matches("/api/").to_owned(),
                    code: env.error_code,
                    message: env
                        .error_message
                        .clone()
                        .unwrap_or_else(|| "(no message)".into()),
                });
            }
            return Ok(t);
        }
        Err(ProjectxError::RateLimited { wait_ms: 0 })
    }
}
