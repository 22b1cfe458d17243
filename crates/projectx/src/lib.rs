//! ProjectX Gateway adapter for Tradeguard (TopstepX and the other prop firms on ProjectX):
//! [`ProjectxBroker`] implements the model's [`tradeguard_model::Broker`] over the REST API and
//! the SignalR user and market hubs.
//!
//! Modules: [`settings`] (the firm's hosts, user, API key kept out of every print), [`error`]
//! (typed [`ProjectxError`]), [`wire`] (the JSON and its envelope), [`convert`] (contract ids ↔
//! futures, sides, statuses), [`rest`] (log-in, token renewal, envelope errors, 429s),
//! [`signalr`] (the hub protocol by hand), [`broker`] (the session and the trait impl), and
//! behind the `fake` feature [`fake`], a fake ProjectX for tests.

pub mod broker;
pub mod convert;
pub mod error;
#[cfg(feature = "fake")]
pub mod fake;
pub mod rest;
pub mod settings;
pub mod signalr;
pub mod wire;

pub use broker::{ACCOUNT_LOCKED, ProjectxBroker};
pub use error::ProjectxError;
pub use settings::{ApiKey, Hosts, ProjectxSettings};
