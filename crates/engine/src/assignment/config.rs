//! [`AssignmentConfig`]: every tunable of the assignment guard, with its defaults.

use super::detect::DetectorConfig;
use super::expiry::ExpiryRiskConfig;
use super::hours::ArmAt;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Assignment guard configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentConfig {
    /// Detection windows.
    pub detector: DetectorConfig,
    /// Close the delivered stock in the emergency close (default on). When off, the stock and
    /// the long options that protect it are kept.
    pub close_stock: bool,
    /// When armed orders go out while the market is closed.
    pub arm_at: ArmAt,
    /// Expiry-day risk warning.
    pub expiry: ExpiryRiskConfig,
    /// How often the expiry-day check runs.
    pub expiry_check_interval: Duration,
}

impl Default for AssignmentConfig {
    fn default() -> Self {
        Self {
            detector: DetectorConfig::default(),
            close_stock: true,
            arm_at: ArmAt::Open,
            expiry: ExpiryRiskConfig::default(),
            expiry_check_interval: Duration::from_secs(60),
        }
    }
}
