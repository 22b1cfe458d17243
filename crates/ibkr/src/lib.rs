//! Interactive Brokers adapter for Tradeguard: [`IbBroker`] implements the model's
//! [`tradeguard_model::Broker`] over the `ibapi` crate (TWS / IB Gateway socket API,
//! protobuf protocol, server version ≥ 213).
//!
//! Modules: [`settings`] (host, port, client id, account; validation), [`error`] (typed
//! [`IbError`]), [`convert`] (model ↔ IB types), the model's `hub` (event fan-out with lag notices),
//! [`tracker`] (status de-duplication, cancel confirmation, execution/commission join,
//! reconciliation bookkeeping), [`broker`] (the session supervisor and the trait impl), and
//! behind the `fake-tws` feature [`fake_tws`], a fake gateway for tests.

pub mod broker;
pub mod convert;
pub mod error;
#[cfg(feature = "fake-tws")]
pub mod fake_tws;
pub mod settings;
pub mod tracker;

pub use broker::{IbBroker, IbContract, IbPnl};
pub use error::{IbError, MIN_SERVER_VERSION};
pub use settings::{
    GATEWAY_LIVE_PORT, GATEWAY_PAPER_PORT, IbSettings, SettingsError, TWS_LIVE_PORT, TWS_PAPER_PORT,
};
