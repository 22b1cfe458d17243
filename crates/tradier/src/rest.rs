//! Tradier's REST API: bearer token, `Accept: application/json`, form-encoded bodies, errors
//! as `{"errors": {"error": …}}`, and rate limits from the `X-Ratelimit-*` headers
//! (<https://docs.tradier.com/docs/rate-limiting>): `Available` left in the window that ends at
//! `Expiry` (epoch milliseconds). A 429 or an exhausted window waits for the window's end.
//!
//! Nothing here retries a request that may have reached Tradier: a 429 was not accepted, so it
//! is sent again after the wait; any other failure of an order call goes back to the caller,
//! which looks for the order by its tag before deciding anything.

use crate::error::TradierError;
use crate::settings::{Token, TradierSettings};
use crate::wire::ErrorsResponse;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;
use tradeguard_model::Clock;

/// The longest wait for a rate-limit window (Tradier's windows are one minute).
const MAX_WINDOW_WAIT: Duration = Duration::from_secs(61);
/// Tries of a request answered 429.
const TRIES_ON_429: u32 = 3;

static TLS: Once = Once::new();

/// One HTTP client for one account.
pub struct Rest {
    http: reqwest::Client,
    base: String,
    token: Token,
    clock: Arc<dyn Clock>,
    /// Until when (epoch ms) each window is used up (0: not known to be): account and market
    /// reads (120 a minute on live) and trading (60 a minute) are counted apart.
    blocked_until: [AtomicI64; 2],
}

impl Rest {
    /// A client for these settings.
    pub fn new(s: &TradierSettings, clock: Arc<dyn Clock>) -> Result<Self, TradierError> {
        // ring, as the alert channels use (deprecated in rustls 0.23.48 for lacking
        // post-quantum key exchange; aws-lc-rs would build a C library on the 2-core CI).
        #[allow(deprecated)]
        TLS.call_once(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
        });
        let http = reqwest::Client::builder()
            .timeout(s.request_timeout)
            .connect_timeout(s.request_timeout)
            .build()
            .map_err(|e| TradierError::Transport(e.to_string()))?;
        Ok(Self {
            http,
            base: s.api_url.clone(),
            token: s.token.clone(),
            clock,
            blocked_until: [AtomicI64::new(0), AtomicI64::new(0)],
        })
    }

    /// `GET path?query`.
    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, TradierError> {
        self.call(Method::GET, path, query, &[]).await
    }

    /// A form-encoded `POST`, `PUT` or `DELETE`.
    pub async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        form: &[(String, String)],
    ) -> Result<T, TradierError> {
        self.call(method, path, &[], form).await
    }

    async fn wait_for_window(&self, w: usize) {
        let until = self.blocked_until[w].load(Ordering::Relaxed);
        let now = self.clock.now().millis();
        if until > now {
            let wait =
                Duration::from_millis(u64::try_from(until - now).unwrap_or(0)).min(MAX_WINDOW_WAIT);
            tracing::warn!(
                wait_ms = wait.as_millis() as u64,
                "Tradier rate-limit window used up; waiting for it to end"
            );
            tokio::time::sleep(wait).await;
        }
    }

    fn note_limits(&self, w: usize, h: &reqwest::header::HeaderMap, status: StatusCode) {
        let num = |k: &str| {
            h.get(k)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<i64>().ok())
        };
        let now = self.clock.now().millis();
        let expiry = num("x-ratelimit-expiry");
        let available = num("x-ratelimit-available");
        let retry_after = num("retry-after").map(|s| now.saturating_add(s.saturating_mul(1000)));
        let blocked = status == StatusCode::TOO_MANY_REQUESTS || available == Some(0);
        if blocked {
            let until = expiry
                .or(retry_after)
                .unwrap_or_else(|| now.saturating_add(1000));
            self.blocked_until[w].store(until, Ordering::Relaxed);
        } else {
            self.blocked_until[w].store(0, Ordering::Relaxed);
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        form: &[(String, String)],
    ) -> Result<T, TradierError> {
        let url = format!("{}{path}", self.base);
        let w = usize::from(method != Method::GET);
        for attempt in 1..=TRIES_ON_429 {
            self.wait_for_window(w).await;
            let mut req = self
                .http
                .request(method.clone(), &url)
                .header("Authorization", self.token.bearer())
                .header("Accept", "application/json")
                .query(query);
            if method != Method::GET {
                req = req.form(form);
            }
            let resp = req.send().await.map_err(|e| {
                // reqwest's text names the URL, never the token header.
                TradierError::Transport(e.without_url().to_string())
            })?;
            let status = resp.status();
            self.note_limits(w, resp.headers(), status);
            let body = resp
                .text()
                .await
                .map_err(|e| TradierError::Transport(e.without_url().to_string()))?;
            if status == StatusCode::TOO_MANY_REQUESTS {
                let wait_ms = u64::try_from(
                    self.blocked_until[w].load(Ordering::Relaxed) - self.clock.now().millis(),
                )
                .unwrap_or(0);
                tracing::warn!(path, attempt, wait_ms, "Tradier answered 429");
                if attempt == TRIES_ON_429 {
                    return Err(TradierError::RateLimited { wait_ms });
                }
                continue;
            }
            if status == StatusCode::UNAUTHORIZED {
                return Err(TradierError::Unauthorized);
            }
            if !status.is_success() {
                return Err(TradierError::Refused {
                    status: status.as_u16(),
                    message: error_text(&body),
                });
            }
            // An error body with a 200 (some endpoints answer so).
            if let Ok(e) = serde_json::from_str::<ErrorsResponse>(&body) {
                return Err(TradierError::Refused {
                    status: status.as_u16(),
                    message: e.errors.error.0.join("; "),
                });
            }
            return serde_json::from_str(&body)
                .map_err(|e| TradierError::Malformed(format!("{path}: {e}: {}", clip(&body))));
        }
        Err(TradierError::RateLimited { wait_ms: 0 })
    }
}

fn clip(s: &str) -> String {
    s.chars().take(200).collect()
}

/// The gateway's fault body: `{"fault": {"faultstring": "Invalid Access Token", …}}`.
#[derive(serde::Deserialize)]
struct Fault {
    fault: FaultBody,
}

#[derive(serde::Deserialize)]
struct FaultBody {
    faultstring: String,
}

fn error_text(body: &str) -> String {
    if let Ok(f) = serde_json::from_str::<Fault>(body) {
        return f.fault.faultstring;
    }
    match serde_json::from_str::<ErrorsResponse>(body) {
        Ok(e) => e.errors.error.0.join("; "),
        Err(_) if body.trim().is_empty() => "(no message)".into(),
        Err(_) => clip(body.trim()),
    }
}
