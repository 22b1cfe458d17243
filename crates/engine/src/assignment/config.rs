//! [`AssignmentConfig`]: every tunable of the assignment guard, with its defaults.

use super::detect::DetectorConfig;
use super::expiry::ExpiryRiskConfig;
use super::hours::ArmAt;
use super::policy::AssignmentPolicy;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Assignment guard configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentConfig {
    /// Detection windows.
    pub detector: DetectorConfig,
    /// What the trader wants when an option is assigned: which assignments are the plan (alert
    /// only) and what happens to delivered stock, per shape and per strategy.
    pub policy: AssignmentPolicy,
    /// When armed orders go out while the market is closed.
    pub arm_at: ArmAt,
    /// How the orders armed for the open go out.
    pub at_open: OpenOrder,
    /// Expiry-day risk warning.
    pub expiry: ExpiryRiskConfig,
    /// How often the expiry-day check runs.
    pub expiry_check_interval: Duration,
}

impl Default for AssignmentConfig {
    fn default() -> Self {
        Self {
            detector: DetectorConfig::default(),
            policy: AssignmentPolicy::default(),
            arm_at: ArmAt::Open,
            at_open: OpenOrder::default(),
            expiry: ExpiryRiskConfig::default(),
            expiry_check_interval: Duration::from_secs(60),
        }
    }
}

/// How an emergency close armed for the open goes out. At 09:30:00 the options' opening
/// rotation is still under way and their spreads are at their widest; a market order then pays
/// the whole of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OpenOrder {
    /// Market orders at the open itself.
    Market,
    /// Market orders this long after the open, once the opening spreads have narrowed (the
    /// default, 2 min). The safe order still holds: shorts first, each step after the fills
    /// it depends on.
    DelayedMarket {
        /// Delay after the open.
        after: Duration,
    },
}

impl Default for OpenOrder {
    fn default() -> Self {
        Self::DelayedMarket {
            after: Duration::from_secs(120),
        }
    }
}

impl OpenOrder {
    /// The delay after the open.
    pub fn delay(self) -> Duration {
        match self {
            Self::Market => Duration::ZERO,
            Self::DelayedMarket { after } => after,
        }
    }

    /// For a person: "market orders 2 min after the open (opening spreads are widest at the
    /// open itself)".
    pub fn describe(self) -> String {
        match self {
            Self::Market => "market orders at the open".to_owned(),
            Self::DelayedMarket { after } => {
                let secs = after.as_secs();
                let when = if secs % 60 == 0 {
                    format!("{} min", secs / 60)
                } else {
                    format!("{secs} s")
                };
                format!(
                    "market orders {when} after the open (opening spreads are widest at the open itself)"
                )
            }
        }
    }
}
