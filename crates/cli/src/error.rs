//! CLI errors: every failure names the case (index and id) and the field, with a stable code.

use thiserror::Error;
use tradeguard_pricing::PricingError;

/// Where in the input an error is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseRef {
    pub index: usize,
    pub id: Option<String>,
}

impl std::fmt::Display for CaseRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.id {
            Some(id) => write!(f, "case {} (id \"{id}\")", self.index),
            None => write!(f, "case {}", self.index),
        }
    }
}

/// Everything the CLI can fail on.
#[derive(Debug, Error)]
pub enum CliError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("input is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("input must be a JSON object or an array of objects")]
    NotObject,
    #[error("{case}: field `{field}`: missing")]
    Missing { case: CaseRef, field: String },
    #[error("{case}: field `{field}`: {message}")]
    BadField {
        case: CaseRef,
        field: String,
        message: String,
    },
    #[error("{case}, field `{field}`: {source}")]
    Pricing {
        case: CaseRef,
        field: String,
        source: PricingError,
    },
    #[error("cannot write output: {0}")]
    Write(std::io::Error),
}

impl CliError {
    /// Stable code for scripts.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Read { .. } => "cli.read",
            Self::Json(_) => "cli.json",
            Self::NotObject => "cli.not_object",
            Self::Missing { .. } => "cli.missing_field",
            Self::BadField { .. } => "cli.bad_field",
            Self::Pricing { source, .. } => source.code(),
            Self::Write(_) => "cli.write",
        }
    }
}
