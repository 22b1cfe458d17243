//! Typed errors of the Tradier adapter, with stable codes.

use tradeguard_model::BrokerError;

/// What went wrong talking to Tradier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TradierError {
    /// 401: the token is wrong, expired or for the other environment.
    #[error(
        "Tradier refused the token (401): check it in Settings; sandbox and live tokens differ"
    )]
    Unauthorized,
    /// The account is not one of the token's.
    #[error("account {account} is not among this token's accounts ({known})")]
    UnknownAccount {
        /// The account asked for.
        account: String,
        /// The token's accounts.
        known: String,
    },
    /// 429 or `X-Ratelimit-Available: 0`: wait until the window ends.
    #[error("rate limit reached; the window ends in {wait_ms} ms")]
    RateLimited {
        /// Milliseconds until the window ends.
        wait_ms: u64,
    },
    /// Tradier refused the request (`{"errors": …}` or a 4xx).
    #[error("Tradier refused ({status}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Tradier's message(s).
        message: String,
    },
    /// The order would take a position through zero, which Tradier's open/close sides cannot
    /// say in one order.
    #[error(
        "{symbol}: {qty:+} against {held:+} held would cross zero; Tradier orders either open or close"
    )]
    CrossesZero {
        /// The instrument.
        symbol: String,
        /// Position held.
        held: i64,
        /// Signed order quantity.
        qty: i64,
    },
    /// Not offered by Tradier.
    #[error("not supported at Tradier: {0}")]
    Unsupported(String),
    /// An answer that does not read as documented.
    #[error("malformed answer from Tradier: {0}")]
    Malformed(String),
    /// Transport: connect, TLS, timeout, a closed socket.
    #[error("transport: {0}")]
    Transport(String),
    /// Bad settings.
    #[error("settings: {0}")]
    Settings(String),
}

impl TradierError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized => "tradier.unauthorized",
            Self::UnknownAccount { .. } => "tradier.unknown_account",
            Self::RateLimited { .. } => "tradier.rate_limited",
            Self::Refused { .. } => "tradier.refused",
            Self::CrossesZero { .. } => "tradier.crosses_zero",
            Self::Unsupported(_) => "tradier.unsupported",
            Self::Malformed(_) => "tradier.malformed",
            Self::Transport(_) => "tradier.transport",
            Self::Settings(_) => "tradier.settings",
        }
    }
}

impl From<TradierError> for BrokerError {
    fn from(e: TradierError) -> Self {
        match e {
            TradierError::Transport(m) => BrokerError::Io(m),
            TradierError::Unsupported(m) => BrokerError::Unsupported(m),
            TradierError::RateLimited { wait_ms } => {
                BrokerError::Timeout(format!("Tradier's rate-limit window ({wait_ms} ms)"))
            }
            TradierError::Refused { status, message } => BrokerError::Rejected {
                code: status.to_string(),
                reason: message,
            },
            other => BrokerError::Rejected {
                code: other.code().to_owned(),
                reason: other.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct() {
        let all = [
            TradierError::Unauthorized,
            TradierError::UnknownAccount {
                account: "a".into(),
                known: "b".into(),
            },
            TradierError::RateLimited { wait_ms: 1 },
            TradierError::Refused {
                status: 400,
                message: "x".into(),
            },
            TradierError::CrossesZero {
                symbol: "x".into(),
                held: 1,
                qty: -2,
            },
            TradierError::Unsupported("x".into()),
            TradierError::Malformed("x".into()),
            TradierError::Transport("x".into()),
            TradierError::Settings("x".into()),
        ];
        let mut codes: Vec<_> = all.iter().map(TradierError::code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
    }
}
