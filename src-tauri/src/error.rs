//! The one error type that crosses IPC: a stable machine `code` and a human `message`.
//!
//! Core crates keep their own typed errors; each converts into [`IpcError`] here so the UI
//! can switch on `code` and show `message` where the user acted.

use serde::Serialize;
use specta::Type;

/// Stable error codes. The UI switches on these; never rename one, only add.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request itself was malformed (a field out of range, an unknown value).
    InvalidInput,
    /// The backend could not do what was asked right now; `message` says why.
    Unavailable,
    /// The database could not be opened or written (locked by another Tradeguard, corrupt,
    /// read-only, full, foreign, newer); `message` says which and what to do.
    Storage,
    /// The thing asked for does not exist.
    NotFound,
    /// An unexpected internal failure; the log has the details.
    Internal,
}

/// An error as the UI receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Type, thiserror::Error)]
#[error("{message} ({reason})")]
pub struct IpcError {
    /// The category the UI switches on.
    pub code: ErrorCode,
    /// The originating typed error's stable code, e.g. `store.locked` (logs, support).
    pub reason: String,
    /// What happened and what to do, for a person.
    pub message: String,
}

impl IpcError {
    pub fn new(code: ErrorCode, reason: &str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.to_owned(),
            message: message.into(),
        }
    }

    pub fn invalid_input(reason: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInput, reason, message)
    }
}

impl From<tradeguard_store::StoreError> for IpcError {
    fn from(e: tradeguard_store::StoreError) -> Self {
        use tradeguard_store::StoreError as E;
        let code = match &e {
            E::NotFound { .. } => ErrorCode::NotFound,
            E::InvalidInput { .. } | E::BadValue { .. } | E::Constraint { .. } => {
                ErrorCode::InvalidInput
            }
            _ => ErrorCode::Storage,
        };
        Self::new(code, e.code(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_with_stable_snake_case_code() {
        let e = IpcError::invalid_input("order.bad_qty", "quantity must be positive");
        let json = serde_json::to_value(&e).expect("serializable");
        assert_eq!(json["code"], "invalid_input");
        assert_eq!(json["reason"], "order.bad_qty");
        assert_eq!(json["message"], "quantity must be positive");
    }
}
