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
    /// An unexpected internal failure; the log has the details.
    Internal,
}

/// An error as the UI receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Type, thiserror::Error)]
#[error("{message} ({code:?})")]
pub struct IpcError {
    pub code: ErrorCode,
    pub message: String,
}

impl IpcError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInput, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_with_stable_snake_case_code() {
        let e = IpcError::invalid_input("quantity must be positive");
        let json = serde_json::to_value(&e).expect("serializable");
        assert_eq!(json["code"], "invalid_input");
        assert_eq!(json["message"], "quantity must be positive");
    }
}
