//! Identifier newtypes: accounts, strategies, groups, broker orders, executions, instruments.
//!
//! All serialize transparently (a bare string or integer).

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// Wraps any string-like value.
            pub fn new(s: impl Into<String>) -> Self {
                Self(s.into())
            }
            /// The underlying text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }
    };
}

macro_rules! int_id {
    ($(#[$doc:meta])* $name:ident, $t:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub $t);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

string_id!(
    /// Broker account identifier (e.g. IB "DU1234567").
    AccountId
);
string_id!(
    /// Broker execution identifier; unique per fill.
    ExecId
);
string_id!(
    /// Canonical instrument identifier: the padded 21-char OCC symbol for options,
    /// the ticker for stock, `"ES 20250321 FUT"` for futures. See [`crate::Instrument::id`].
    InstrumentId
);
int_id!(
    /// Tradeguard strategy identifier (assigned by the store).
    StrategyId,
    u64
);
int_id!(
    /// Identifier of a group of strategies (e.g. a roll or a ticket of related trades).
    GroupId,
    u64
);
int_id!(
    /// Broker order identifier (IB uses signed 32/64-bit integers).
    OrderId,
    i64
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_serialize_transparently() {
        assert_eq!(serde_json::to_string(&OrderId(42)).unwrap(), "42");
        assert_eq!(
            serde_json::to_string(&AccountId::new("DU1")).unwrap(),
            "\"DU1\""
        );
        let back: StrategyId = serde_json::from_str("7").unwrap();
        assert_eq!(back, StrategyId(7));
        assert_eq!(InstrumentId::from("SPY").to_string(), "SPY");
    }
}
