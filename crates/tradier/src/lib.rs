//! Tradier adapter for Tradeguard: [`TradierBroker`] implements the model's
//! [`tradeguard_model::Broker`] over Tradier's REST API (bearer token, JSON answers,
//! form-encoded orders) and its account and market WebSockets.
//!
//! Modules: [`settings`] (environment, account, token kept out of every print), [`error`]
//! (typed [`TradierError`]), [`wire`] (Tradier's JSON with its quirks: `"null"` lists, bare
//! single objects), [`convert`] (model ↔ Tradier: symbols, open/close sides, statuses, order
//! forms), [`greeks`] (option Greeks from our pricing on live quotes), [`rest`] (requests, errors, rate-limit windows), [`broker`] (the session and the
//! trait impl), and behind the `fake` feature [`fake`], a fake Tradier server for tests.

pub mod broker;
pub mod convert;
pub mod error;
#[cfg(feature = "fake")]
pub mod fake;
pub mod greeks;
pub mod rest;
pub mod settings;
pub mod wire;

pub use broker::TradierBroker;
pub use error::TradierError;
pub use settings::{Environment, LIVE_API, SANDBOX_API, Token, TradierSettings};
