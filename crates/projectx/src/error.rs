//! Typed errors of the ProjectX adapter, with stable codes.

use tradeguard_model::BrokerError;

/// What went wrong talking to ProjectX.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProjectxError {
    /// The user name and API key were refused, or the token expired and could not be renewed.
    #[error("ProjectX refused the login: {0}")]
    Unauthorized(String),
    /// The account is not among the user's.
    #[error("account {account} is not among this user's accounts ({known})")]
    UnknownAccount {
        /// Asked for.
        account: String,
        /// The user's.
        known: String,
    },
    /// The firm has locked the account (`canTrade` false) and ProjectX refused the order.
    #[error(
        "account {0} is locked by the firm (canTrade is false): ProjectX refuses every order, closes included"
    )]
    Locked(String),
    /// 429: wait.
    #[error("rate limit reached; retry in {wait_ms} ms")]
    RateLimited {
        /// Milliseconds to wait.
        wait_ms: u64,
    },
    /// The envelope said `success: false`.
    #[error("ProjectX refused ({endpoint}, error code {code}): {message}")]
    Refused {
        /// The endpoint.
        endpoint: String,
        /// The endpoint's code.
        code: i64,
        /// Its text.
        message: String,
    },
    /// Not offered.
    #[error("not supported at ProjectX: {0}")]
    Unsupported(String),
    /// An answer that does not read as documented.
    #[error("malformed answer from ProjectX: {0}")]
    Malformed(String),
    /// Transport.
    #[error("transport: {0}")]
    Transport(String),
    /// Bad settings.
    #[error("settings: {0}")]
    Settings(String),
}

impl ProjectxError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized(_) => "projectx.unauthorized",
            Self::UnknownAccount { .. } => "projectx.unknown_account",
            Self::Locked(_) => "projectx.account_locked",
            Self::RateLimited { .. } => "projectx.rate_limited",
            Self::Refused { .. } => "projectx.refused",
            Self::Unsupported(_) => "projectx.unsupported",
            Self::Malformed(_) => "projectx.malformed",
            Self::Transport(_) => "projectx.transport",
            Self::Settings(_) => "projectx.settings",
        }
    }
}

impl From<ProjectxError> for BrokerError {
    fn from(e: ProjectxError) -> Self {
        match e {
            ProjectxError::Transport(m) => BrokerError::Io(m),
            ProjectxError::Unsupported(m) => BrokerError::Unsupported(m),
            ProjectxError::Refused { code, message, .. } => BrokerError::Rejected {
                code: code.to_string(),
                reason: message,
            },
            other => BrokerError::Rejected {
                code: other.code().to_owned(),
                reason: other.to_string(),
            },
        }
    }
}
