//! Interactive Brokers adapter (in progress).

#[cfg(feature = "fake-tws")]
pub mod fake_tws;
