//! [`IbError`]: typed failures of the IB adapter, and their mapping to [`BrokerError`].

use crate::settings::SettingsError;
use tradeguard_model::BrokerError;

/// The lowest server version `ibapi` 5.5 speaks (IB's protobuf protocol).
pub const MIN_SERVER_VERSION: i32 = 213;

/// IB adapter failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IbError {
    /// Nothing accepts connections at the address.
    #[error(
        "nothing is listening on {address}: start IB Gateway or TWS, log in, and check the socket port (Gateway paper 4002 / live 4001, TWS paper 7497 / live 7496)"
    )]
    NothingListening {
        /// host:port.
        address: String,
    },
    /// The gateway closed the socket during the handshake (trusted IPs, or API disabled).
    #[error(
        "{address} refused the API connection: enable \"ActiveX and Socket Clients\" and add 127.0.0.1 to the trusted IPs ({detail})"
    )]
    ConnectionRejected {
        /// host:port.
        address: String,
        /// Library detail.
        detail: String,
    },
    /// The gateway is older than the protobuf protocol.
    #[error(
        "server version {got} is too old: at least {need} is required; update IB Gateway / TWS"
    )]
    ServerVersionTooLow {
        /// Required.
        need: i32,
        /// Reported.
        got: i32,
    },
    /// Another session uses the client id.
    #[error("client id {0} is already in use: pick another client id")]
    ClientIdInUse(i32),
    /// The API is read-only.
    #[error(
        "the IB API is in read-only mode: untick \"Read-Only API\" in the API settings to trade ({0})"
    )]
    ReadOnly(String),
    /// The gateway manages several accounts and none was chosen.
    #[error(
        "the gateway manages several accounts ({}): choose the one to guard (--ib-account, or Settings → Venue → Account); one guard guards one account",
        managed.join(", ")
    )]
    AccountAmbiguous {
        /// The managed accounts.
        managed: Vec<String>,
    },
    /// The chosen account is not one the gateway manages.
    #[error(
        "account {account} is not managed by this gateway (it manages {}): check the account setting",
        managed.join(", ")
    )]
    AccountNotManaged {
        /// The configured account.
        account: String,
        /// The managed accounts.
        managed: Vec<String>,
    },
    /// Settings failed validation.
    #[error("invalid settings: {0}")]
    Settings(#[from] SettingsError),
    /// Not connected.
    #[error("not connected to IB")]
    NotConnected,
    /// An answer did not arrive in time.
    #[error("timeout waiting for {0}")]
    Timeout(String),
    /// IB answered with an error code.
    #[error("IB error {code}: {text}")]
    Api {
        /// IB error code.
        code: i32,
        /// IB text.
        text: String,
    },
    /// The instrument or order cannot be expressed for IB.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// IB data could not be converted (bad number, unknown contract type).
    #[error("cannot convert IB data: {0}")]
    Conversion(String),
    /// Other transport / library failure.
    #[error("IB transport: {0}")]
    Transport(String),
}

impl IbError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NothingListening { .. } => "ib.nothing_listening",
            Self::ConnectionRejected { .. } => "ib.connection_rejected",
            Self::ServerVersionTooLow { .. } => "ib.server_version_too_low",
            Self::ClientIdInUse(_) => "ib.client_id_in_use",
            Self::ReadOnly(_) => "ib.read_only",
            Self::AccountAmbiguous { .. } => "ib.account_ambiguous",
            Self::AccountNotManaged { .. } => "ib.account_not_managed",
            Self::Settings(_) => "ib.settings",
            Self::NotConnected => "ib.not_connected",
            Self::Timeout(_) => "ib.timeout",
            Self::Api { .. } => "ib.api",
            Self::Unsupported(_) => "ib.unsupported",
            Self::Conversion(_) => "ib.conversion",
            Self::Transport(_) => "ib.transport",
        }
    }

    /// Maps an `ibapi` error met while connecting to `address`.
    pub fn from_connect(address: &str, e: &ibapi::Error) -> Self {
        match e {
            ibapi::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                Self::NothingListening {
                    address: address.to_owned(),
                }
            }
            ibapi::Error::ServerVersion(need, got, _) => Self::ServerVersionTooLow {
                need: *need,
                got: *got,
            },
            ibapi::Error::ClientIdInUse { client_id } => Self::ClientIdInUse(*client_id),
            ibapi::Error::ConnectionRejected(detail) => Self::ConnectionRejected {
                address: address.to_owned(),
                detail: detail.clone(),
            },
            other => Self::from(other),
        }
    }

    /// `true` when an IB notice says the API is read-only (error 321 with that text).
    pub fn is_read_only_notice(code: i32, text: &str) -> bool {
        code == 321 && text.to_ascii_lowercase().contains("read-only")
    }
}

impl From<&ibapi::Error> for IbError {
    fn from(e: &ibapi::Error) -> Self {
        match e {
            ibapi::Error::ConnectionReset
            | ibapi::Error::ConnectionFailed
            | ibapi::Error::Shutdown => Self::NotConnected,
            ibapi::Error::Timeout => Self::Timeout("IB answer".into()),
            ibapi::Error::Notice(n) if Self::is_read_only_notice(n.code, &n.message) => {
                Self::ReadOnly(n.message.clone())
            }
            ibapi::Error::Notice(n) => Self::Api {
                code: n.code,
                text: n.message.clone(),
            },
            ibapi::Error::ServerVersion(need, got, _) => Self::ServerVersionTooLow {
                need: *need,
                got: *got,
            },
            other => Self::Transport(other.to_string()),
        }
    }
}

impl From<ibapi::Error> for IbError {
    fn from(e: ibapi::Error) -> Self {
        Self::from(&e)
    }
}

impl From<IbError> for BrokerError {
    fn from(e: IbError) -> Self {
        match e {
            IbError::NotConnected => BrokerError::NotConnected,
            IbError::Timeout(what) => BrokerError::Timeout(what),
            IbError::Unsupported(what) => BrokerError::Unsupported(what),
            IbError::Api { code, text } => BrokerError::Rejected {
                code: code.to_string(),
                reason: text,
            },
            e @ (IbError::ReadOnly(_)
            | IbError::ClientIdInUse(_)
            | IbError::AccountAmbiguous { .. }
            | IbError::AccountNotManaged { .. }) => BrokerError::Rejected {
                code: e.code().to_owned(),
                reason: e.to_string(),
            },
            e @ (IbError::NothingListening { .. }
            | IbError::ConnectionRejected { .. }
            | IbError::ServerVersionTooLow { .. }
            | IbError::Settings(_)
            | IbError::Conversion(_)
            | IbError::Transport(_)) => BrokerError::Io(format!("{}: {e}", e.code())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_errors_are_clear() {
        let refused = ibapi::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let e = IbError::from_connect("127.0.0.1:4002", &refused);
        assert_eq!(e.code(), "ib.nothing_listening");
        assert!(e.to_string().contains("127.0.0.1:4002"));
        let v = ibapi::Error::ServerVersion(213, 200, "old".into());
        assert_eq!(
            IbError::from_connect("x", &v),
            IbError::ServerVersionTooLow {
                need: 213,
                got: 200
            }
        );
        let b: BrokerError = IbError::from_connect("x", &v).into();
        assert!(b.to_string().contains("ib.server_version_too_low"), "{b}");
    }

    #[test]
    fn read_only_is_recognised() {
        assert!(IbError::is_read_only_notice(
            321,
            "Error validating request.-'bW' : cause - The API interface is currently in Read-Only mode."
        ));
        assert!(!IbError::is_read_only_notice(321, "bad symbol"));
        let b: BrokerError = IbError::ReadOnly("x".into()).into();
        assert_eq!(b.code(), "broker.rejected");
    }
}
