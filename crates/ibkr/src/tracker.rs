//! Per-session bookkeeping that makes the event stream exact: order-status de-duplication,
//! cancel confirmations (notice 202), the execution ↔ commission join, and the set of
//! executions already published (so reconciliation after a reconnect adds what was missed and
//! never doubles a fill).

use std::collections::{HashMap, HashSet};
use tokio::time::Instant;
use tradeguard_model::{
    Execution, Money, OrderId, OrderStatus, OrderUpdate, StatusReason, Timestamp,
};

#[derive(Debug, Clone, PartialEq, Eq)]
struct Last {
    status: OrderStatus,
    filled: i64,
    remaining: i64,
    avg: Option<tradeguard_model::Price>,
}

/// Order and execution state across reconnects.
#[derive(Debug, Default)]
pub struct Tracker {
    orders: HashMap<OrderId, Last>,
    perm: HashMap<i64, OrderId>,
    pending: HashMap<String, (Execution, Instant)>,
    published: HashSet<String>,
    last_exec_ts: Option<Timestamp>,
    /// Orders IB reported `ApiCancelled` (our cancel before its acknowledgement): when one is
    /// still open at its deadline, the cancel is asked again so that IB says how it ended.
    recheck: HashMap<OrderId, Instant>,
}

impl Tracker {
    /// Records IB's permanent id for an order (completed orders carry only that).
    pub fn bind_perm(&mut self, perm_id: i64, id: OrderId) {
        if perm_id != 0 {
            self.perm.insert(perm_id, id);
        }
    }

    /// Our order id for an IB permanent id.
    pub fn by_perm(&self, perm_id: i64) -> Option<OrderId> {
        self.perm.get(&perm_id).copied()
    }

    /// Orders seen and not yet terminal.
    pub fn working(&self) -> Vec<OrderId> {
        let mut v: Vec<_> = self
            .orders
            .iter()
            .filter(|(_, l)| !l.status.is_terminal())
            .map(|(id, _)| *id)
            .collect();
        v.sort_unstable();
        v
    }

    /// Whether the order reached a terminal status.
    pub fn is_terminal(&self, id: OrderId) -> bool {
        self.orders.get(&id).is_some_and(|l| l.status.is_terminal())
    }

    /// Returns the update to publish, or `None` when it repeats the last one or arrives after
    /// the order already ended (IB re-sends statuses).
    pub fn status(&mut self, u: OrderUpdate) -> Option<OrderUpdate> {
        let next = Last {
            status: u.status,
            filled: u.filled,
            remaining: u.remaining,
            avg: u.avg_fill_price,
        };
        match self.orders.get(&u.order_id) {
            Some(l) if *l == next => return None,
            Some(l) if l.status.is_terminal() => {
                tracing::debug!(order = %u.order_id, "status {:?} after terminal {:?} ignored", u.status, l.status);
                return None;
            }
            _ => {}
        }
        self.orders.insert(u.order_id, next);
        Some(u)
    }

    /// A terminal status synthesised from a notice (202 = cancel confirmed, rejections).
    pub fn terminal_from_notice(
        &mut self,
        id: OrderId,
        status: OrderStatus,
        code: i32,
        text: &str,
        ts: Timestamp,
    ) -> Option<OrderUpdate> {
        let (filled, remaining, avg) = self
            .orders
            .get(&id)
            .map_or((0, 0, None), |l| (l.filled, l.remaining, l.avg));
        if self.is_terminal(id) {
            return None;
        }
        self.status(OrderUpdate {
            order_id: id,
            status,
            filled,
            remaining,
            avg_fill_price: avg,
            reason: Some(StatusReason {
                code: code.to_string(),
                text: text.to_owned(),
            }),
            ts,
        })
        .map(|mut u| {
            // Keep the reason even though `status` only compares the numbers.
            u.reason.get_or_insert(StatusReason {
                code: code.to_string(),
                text: text.to_owned(),
            });
            u
        })
    }

    /// An execution waiting for its commission; `false` if it was already published/pending.
    pub fn execution(&mut self, e: Execution, deadline: Instant) -> bool {
        let id = e.exec_id.0.clone();
        if self.published.contains(&id) || self.pending.contains_key(&id) {
            return false;
        }
        self.pending.insert(id, (e, deadline));
        true
    }

    /// Whether an execution with this (base) id was published or is waiting for its
    /// commission.
    pub fn knows(&self, exec_id: &str) -> bool {
        self.published.contains(exec_id) || self.pending.contains_key(exec_id)
    }

    /// Joins a commission (by IB's execution id, correction number included); returns the
    /// execution to publish.
    pub fn commission(&mut self, exec_id: &str, c: Money) -> Option<Execution> {
        let (mut e, _) = self
            .pending
            .remove(&crate::convert::exec_original(exec_id))?;
        e.commission = Some(c);
        self.mark(&e);
        Some(e)
    }

    /// Executions whose commission did not come in time, published without one.
    pub fn due(&mut self, now: Instant) -> Vec<Execution> {
        let ids: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, (_, d))| *d <= now)
            .map(|(k, _)| k.clone())
            .collect();
        let mut out = Vec::new();
        for id in ids {
            if let Some((e, _)) = self.pending.remove(&id) {
                self.mark(&e);
                out.push(e);
            }
        }
        out.sort_by_key(|e| e.ts);
        out
    }

    /// Earliest deadline: a commission to wait for no longer, or a cancel to ask again.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending
            .values()
            .map(|(_, d)| *d)
            .chain(self.recheck.values().copied())
            .min()
    }

    /// Asks for the order's cancel to be sent again at `at` unless it ends before (the first
    /// request wins; a repeated `ApiCancelled` does not push it back).
    pub fn recheck_cancel(&mut self, id: OrderId, at: Instant) {
        self.recheck.entry(id).or_insert(at);
    }

    /// Orders whose cancel is due again and that are still not ended.
    pub fn due_rechecks(&mut self, now: Instant) -> Vec<OrderId> {
        let due: Vec<OrderId> = self
            .recheck
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(id, _)| *id)
            .collect();
        let mut out: Vec<OrderId> = due
            .into_iter()
            .filter(|id| {
                self.recheck.remove(id);
                !self.is_terminal(*id)
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// A complete execution (from a reconciliation query): returns it if not yet published.
    pub fn reconciled(&mut self, e: Execution) -> Option<Execution> {
        let id = e.exec_id.0.clone();
        if self.published.contains(&id) {
            return None;
        }
        self.pending.remove(&id);
        self.mark(&e);
        Some(e)
    }

    /// Time of the newest published execution.
    pub fn last_exec_ts(&self) -> Option<Timestamp> {
        self.last_exec_ts
    }

    fn mark(&mut self, e: &Execution) {
        self.published.insert(e.exec_id.0.clone());
        self.last_exec_ts = Some(self.last_exec_ts.map_or(e.ts, |t| t.max(e.ts)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tradeguard_model::{ExecId, Price, Side, stubs};

    fn upd(status: OrderStatus, filled: i64, remaining: i64) -> OrderUpdate {
        OrderUpdate {
            order_id: OrderId(1),
            status,
            filled,
            remaining,
            avg_fill_price: None,
            reason: None,
            ts: stubs::ts(),
        }
    }

    fn exec(id: &str) -> Execution {
        Execution {
            exec_id: ExecId::new(id),
            order_id: Some(OrderId(1)),
            account: stubs::account(),
            instrument: stubs::put(440),
            side: Side::Buy,
            qty: 1,
            price: Price::from_raw(10_000),
            ts: stubs::ts(),
            commission: None,
            liquidity: None,
        }
    }

    #[test]
    fn statuses_dedupe_and_stop_after_terminal() {
        let mut t = Tracker::default();
        assert!(t.status(upd(OrderStatus::Submitted, 0, 2)).is_some());
        assert!(t.status(upd(OrderStatus::Submitted, 0, 2)).is_none());
        assert!(t.status(upd(OrderStatus::PartiallyFilled, 1, 1)).is_some());
        assert_eq!(t.working(), vec![OrderId(1)]);
        let c = t
            .terminal_from_notice(
                OrderId(1),
                OrderStatus::Cancelled,
                202,
                "Order Canceled",
                stubs::ts(),
            )
            .unwrap();
        assert_eq!(
            (c.status, c.filled, c.remaining),
            (OrderStatus::Cancelled, 1, 1)
        );
        assert_eq!(c.reason.unwrap().code, "202");
        assert!(t.status(upd(OrderStatus::Cancelled, 1, 0)).is_none());
        assert!(
            t.terminal_from_notice(OrderId(1), OrderStatus::Cancelled, 202, "x", stubs::ts())
                .is_none()
        );
        assert!(t.working().is_empty());
    }

    #[test]
    fn executions_join_commission_and_never_double() {
        let mut t = Tracker::default();
        let now = Instant::now();
        assert!(t.execution(exec("a"), now + Duration::from_secs(5)));
        assert!(!t.execution(exec("a"), now));
        let e = t.commission("a", Money::from_raw(6_500)).unwrap();
        assert_eq!(e.commission, Some(Money::from_raw(6_500)));
        assert!(t.commission("a", Money::ZERO).is_none());
        assert!(t.reconciled(exec("a")).is_none());
        assert!(t.reconciled(exec("b")).is_some());
        assert!(t.execution(exec("c"), now));
        assert_eq!(t.next_deadline(), Some(now));
        assert_eq!(t.due(now).len(), 1);
        assert!(t.due(now).is_empty());
        assert_eq!(t.last_exec_ts(), Some(stubs::ts()));
    }

    #[test]
    fn a_cancel_is_asked_again_only_for_an_order_still_open() {
        let mut t = Tracker::default();
        let now = Instant::now();
        let later = now + Duration::from_secs(2);
        t.status(upd(OrderStatus::PendingCancel, 0, 2));
        t.recheck_cancel(OrderId(1), later);
        t.recheck_cancel(OrderId(1), later + Duration::from_secs(5));
        assert_eq!(t.next_deadline(), Some(later));
        assert!(t.due_rechecks(now).is_empty(), "not due yet");
        assert_eq!(t.due_rechecks(later), vec![OrderId(1)]);
        assert!(t.due_rechecks(later).is_empty(), "asked once");
        t.recheck_cancel(OrderId(1), later);
        t.status(upd(OrderStatus::Cancelled, 0, 2));
        assert!(t.due_rechecks(later).is_empty(), "ended: nothing to ask");
        assert_eq!(t.next_deadline(), None);
    }
}
