//! A fake Tradier: the REST routes, the stream sessions and both WebSockets, as Tradier
//! documents them and with the parts that hurt, plus fault switches for tests. What is modelled,
//! and from which page, is tabled in the crate's README.
//!
//! - Answers are JSON with Tradier's list quirks: an empty list is the string `"null"`, a list
//!   of one a bare object (<https://docs.tradier.com/docs/positions>, and every client that
//!   reads Tradier).
//! - A wrong token is a 401 with the gateway's fault body; every answer carries the
//!   `X-Ratelimit-*` headers of its window (reads 120, trading 60 a minute), and an exhausted
//!   window answers 429 (<https://docs.tradier.com/docs/rate-limiting>).
//! - Orders must say open or close as the position allows; a business refusal is HTTP 200 with
//!   `{"errors": …}`, and a downstream rejection is `"status": "ok"` at placement and
//!   `rejected` only on the order (<https://documentation.tradier.com/brokerage-api/overview/errors>).
//! - Tags come back only with `includeTags=true`.
//! - The account stream needs a fresh session id (five minutes, one use), sends a heartbeat
//!   (`"status": "active"`) and order events without symbol, side or quantity
//!   (<https://docs.tradier.com/docs/account-streaming-responses>); nothing is replayed after a
//!   reconnect.
//! - Exercise and assignment are position changes with no order; Tradier may close short
//!   options itself near expiry: an order with no tag.

mod book;
mod server;

pub use book::{FakeOrderView, FillMode};
pub use server::{FakeTradier, FakeTradierConfig};
