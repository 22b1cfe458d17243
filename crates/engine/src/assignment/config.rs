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
            expiry: ExpiryRiskConfig::default(),
            expiry_check_interval: Duration::from_secs(60),
        }
    }
}
