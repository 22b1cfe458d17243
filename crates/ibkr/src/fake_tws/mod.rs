//! A fake TWS / IB Gateway for tests: speaks the real socket protocol (handshake, length-prefixed
//! protobuf frames) on a loopback port, so the real `ibapi` client can be tested end to end.
//!
//! Scriptable from the test: positions, account values, PnL, contracts, quotes with option
//! computation ticks, fills (full, partial, combo), cancel behaviour (confirm with notice 202, or
//! a late fill), position changes with no execution (overnight assignment), connectivity
//! notices, a read-only API, a too-old server version, and dropping every connection.

pub mod proto;
mod server;
pub mod wire;

pub use server::{CancelMode, FakeTws, FakeTwsConfig, PlacedOrder, QuoteScript};
