//! tradeguard-engine: the execution coordinator — the only path from a decision to the broker.
//!
//! - [`ExecutionCoordinator`] (handle) / `engine` (the single task owning all execution state);
//! - [`gate`]: the pure pre-trade gate (trading state, throttle, size/notional, stress, Broken
//!   strategies) with typed [`GateRefusal`]s;
//! - [`intent`] + [`group`]: order intents, priority legging tiers, per-leg state machine, fill
//!   validation, time-outs and rollback; native combos when supported and asked for;
//! - [`hedge`]: the debounced emergency hedge manager; [`book`]: positions and the unhedged
//!   exposure measure used by it and by the interim exposure monitor;
//! - [`stop`]: the hybrid stop-loss state machine;
//! - [`journal`]: the write-ahead [`Journal`] trait and [`MemoryJournal`]; [`recovery`]:
//!   start-up from journal + broker (broker wins);
//! - [`risk`]: the [`RiskModel`] trait and the built-in [`IntrinsicStressModel`].

pub mod alert;
pub mod analysis;
pub mod assignment;
pub mod book;
pub mod calendar;
pub mod clock;
pub mod config;
pub mod coordinator;
pub mod enforce;
mod engine;
pub mod entry;
pub mod error;
mod exits;
pub mod gate;
pub mod globex;
pub mod group;
pub mod hedge;
pub mod intent;
pub mod journal;
pub mod live;
mod lost;
pub mod recovery;
pub mod risk;
pub mod rules;
pub mod stop;
pub mod store_journal;
pub mod strategies;
pub mod stress_model;
#[cfg(any(test, feature = "stubs"))]
pub mod stubs;

pub use alert::{Alert, AuditEntry, Severity};
pub use book::{Book, ExposureKey};
pub use clock::TokioClock;
pub use config::{EngineConfig, GateConfig};
pub use coordinator::{EngineDeps, ExecutionCoordinator};
pub use engine::{EngineSnapshot, IntentCheck, LegCheck, PositionRepair, StressFigures};
pub use error::{ExecError, GateRefusal, IntentError, JournalError, RiskError};
pub use gate::{GateContext, PreTradeGate, TokenBucket, TradingState, TradingStatus};
pub use group::{FillError, Group, GroupLeg, GroupPhase, LegState};
pub use hedge::{HedgeManager, HedgeOrder};
pub use intent::{LegIntent, OrderIntent, Purpose};
pub use journal::{Journal, JournalRecord, JournalState, MemoryJournal};
pub use risk::{IntrinsicStressModel, RiskModel, StressScenario, WorstCase};
pub use stop::{StopLoss, StopSpec, StopState};
pub use store_journal::StoreJournal;
pub use stress_model::PricingStressModel;
