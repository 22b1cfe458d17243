//! The assignment guard: detects exercise and assignment from every broker source, records
//! them, locks the broken strategy, closes it through the coordinator's emergency path in the
//! safe order (or arms the orders for the open), alerts and notifies, and warns of expiry-day
//! risk on short legs.
//!
//! - [`detect`]: the pure [`Detector`] (position stream, marked executions, snapshots);
//! - [`record`]: [`Detection`], [`AssignmentRecord`] and their sources;
//! - [`plan`]: the emergency close plan and its safe order;
//! - [`hours`]: [`MarketHours`] / [`UsEquityHours`] (open, pre-market, close, release time);
//! - [`policy`]: [`AssignmentPolicy`] (which assignments are the plan, what happens to
//!   delivered stock);
//! - [`expiry`]: expiry-day risk of short legs;
//! - [`notify`]: the [`Notifier`] trait, [`LogNotifier`], [`RecordingNotifier`];
//! - [`guard`]: [`AssignmentGuard`] (the response) and its [`GuardHandle`];
//! - [`config`], [`error`].

pub mod config;
pub mod detect;
pub mod error;
pub mod expiry;
pub mod guard;
pub mod hours;
pub mod notify;
pub mod plan;
pub mod policy;
pub mod record;
#[cfg(any(test, feature = "stubs"))]
pub mod stubs;

pub use config::{AssignmentConfig, OpenOrder};
pub use detect::{Detector, DetectorConfig};
pub use error::AssignmentError;
pub use expiry::{ExpiryRisk, ExpiryRiskConfig, ExpiryRiskKind};
pub use guard::{
    AssignmentGuard, Banner, ClosePhase, CloseSnapshot, EmergencyClose, EmergencyFill,
    EmergencyOrder, EmergencyOrderState, GuardDeps, GuardEvent, GuardHandle, GuardStatus,
    LOOP_BEAT,
};
pub use hours::{AlwaysOpen, ArmAt, MarketHours, MarketSession, UsEquityHours};
pub use notify::{LogNotifier, Notification, Notifier, RecordingNotifier};
pub use plan::{ClosePlan, KeptPosition, PlannedOrder};
pub use policy::{AssignedShape, AssignmentPolicy, Decision, StockAction, StrategyChoice};
pub use record::{AssignmentRecord, Detection, DetectionKind, DetectionSource, ExecutionMarker};
