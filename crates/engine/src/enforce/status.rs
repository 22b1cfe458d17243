//! [`StatusSummary`]: the periodic picture of the guard (positions monitored, P&L, rules
//! evaluated, last reconciliation, close jobs, forced unwinds, task heartbeats and where each
//! protection lives), logged every `status_interval` and published on a watch channel for the UI.

use crate::enforce::closer::{CloseJob, CloseState};
use crate::enforce::core::SharedCore;
use crate::enforce::reconcile::ReconcileReport;
use crate::enforce::supervisor::{Heartbeat, TaskHealth, TaskResult};
use crate::live::MarkStatus;
use crate::stop::StopState;
use serde::Serialize;
use std::fmt;
use tradeguard_model::{AccountId, Money, Timestamp};

/// Where a protection runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ProtectionSite {
    /// In this app: works only while it runs.
    Local,
    /// Resting at the broker: survives the app being closed.
    Broker,
}

/// One protection, for "which protections are local and which live at the broker".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Protection {
    /// Name.
    pub name: String,
    /// Where it lives.
    pub site: ProtectionSite,
}

/// The guard's status.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct StatusSummary {
    /// When.
    pub at: Timestamp,
    /// Open positions watched.
    pub positions_monitored: usize,
    /// Positions without a usable mark (P&L excludes them).
    pub marks_missing: usize,
    /// Positions with a stale mark.
    pub marks_stale: usize,
    /// Unrealized P&L of the positions with a mark.
    pub unrealized_pnl: Money,
    /// Enabled rules.
    pub rules: usize,
    /// Evaluation passes.
    pub evaluations: u64,
    /// Rule evaluations (passes × rules).
    pub rules_evaluated: u64,
    /// Breaches (new decisions).
    pub decisions_fired: u64,
    /// Flatten decisions only logged (dry-run).
    pub dry_run_decisions: u64,
    /// Global dry-run on.
    pub dry_run: bool,
    /// Last reconciliation.
    pub last_reconciliation: Option<ReconcileReport>,
    /// Reconciliations so far.
    pub reconciliations: u64,
    /// Stalled streams detected.
    pub stalls: u64,
    /// Resubscriptions.
    pub resubscribes: u64,
    /// Close jobs (working, retrying, needing manual action).
    pub closes: Vec<CloseJob>,
    /// Close jobs needing manual action.
    pub needs_manual: usize,
    /// Accounts in forced unwind.
    pub forced_unwind: Vec<AccountId>,
    /// The trading state in force (a fired loss limit locks opening orders: `Reducing`).
    pub trading: crate::gate::TradingStatus,
    /// Protections and where they live.
    pub protections: Vec<Protection>,
    /// Task heartbeats.
    pub tasks: Vec<TaskHealth>,
}

impl fmt::Display for StatusSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "status: {} positions monitored ({} missing / {} stale marks), unrealized P&L {}, {} rules evaluated ({} passes, {} fired, {} dry-run), ",
            self.positions_monitored,
            self.marks_missing,
            self.marks_stale,
            self.unrealized_pnl,
            self.rules_evaluated,
            self.evaluations,
            self.decisions_fired,
            self.dry_run_decisions
        )?;
        match &self.last_reconciliation {
            Some(r) => write!(
                f,
                "last reconciliation {} ({} differences{})",
                r.at,
                r.positions.len() + r.order_diffs.len(),
                r.error
                    .as_ref()
                    .map_or(String::new(), |e| format!(", error: {e}"))
            )?,
            None => write!(f, "no reconciliation yet")?,
        }
        write!(
            f,
            ", trading {:?}, {} close job(s), {} need manual action, forced unwind: {:?}",
            self.trading.state,
            self.closes.len(),
            self.needs_manual,
            self.forced_unwind
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        )?;
        let local = self
            .protections
            .iter()
            .filter(|p| p.site == ProtectionSite::Local)
            .count();
        write!(
            f,
            ", protections: {local} local / {} at broker",
            self.protections.len() - local
        )?;
        for t in &self.tasks {
            write!(f, "; {t}")?;
        }
        Ok(())
    }
}

/// Builds the summary now.
pub(crate) async fn summary(core: &SharedCore) -> StatusSummary {
    let now = core.now();
    let stops = match core.coord.snapshot().await {
        Ok(s) => s.stops,
        Err(e) => {
            tracing::warn!(code = e.code(), "status: coordinator snapshot failed: {e}");
            Vec::new()
        }
    };
    let (rules, mut protections, rules_dry_run) = {
        let ev = core
            .evaluator
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let names = ev.protections();
        (ev.rule_count(), names, ev.global_dry_run())
    };
    let mut out = {
        let st = core.lock();
        let views = st.book.positions(now, core.cfg.quote_stale_after);
        let mut pnl = Money::ZERO;
        for v in &views {
            if let Some(p) = v.unrealized_pnl {
                pnl = pnl.checked_add(p).unwrap_or(pnl);
            }
        }
        let mut p: Vec<Protection> = protections
            .drain(..)
            .map(|name| Protection {
                name,
                site: ProtectionSite::Local,
            })
            .collect();
        for a in &st.forced_unwind {
            p.push(Protection {
                name: format!("forced unwind {a}"),
                site: ProtectionSite::Local,
            });
        }
        StatusSummary {
            at: now,
            positions_monitored: views.len(),
            marks_missing: views
                .iter()
                .filter(|v| v.mark_status == MarkStatus::Missing)
                .count(),
            marks_stale: views
                .iter()
                .filter(|v| v.mark_status == MarkStatus::Stale)
                .count(),
            unrealized_pnl: pnl,
            rules,
            evaluations: st.evaluations,
            rules_evaluated: st.rule_evaluations,
            decisions_fired: st.decisions_fired,
            dry_run_decisions: st.dry_run_decisions,
            // Either switch stops rule-driven orders: the guard's own or the rules file's.
            dry_run: core.cfg.dry_run || rules_dry_run,
            last_reconciliation: st.last_reconcile.clone(),
            reconciliations: st.reconciliations,
            stalls: st.stalls,
            resubscribes: st.resubscribes,
            closes: st.closes.jobs().cloned().collect(),
            needs_manual: st
                .closes
                .jobs()
                .filter(|j| matches!(j.state, CloseState::NeedsManual { .. }))
                .count(),
            forced_unwind: st.forced_unwind.iter().cloned().collect(),
            trading: core.coord.trading_status(),
            protections: p,
            tasks: core.beats.snapshot(),
        }
    };
    for s in stops
        .iter()
        .filter(|s| matches!(s.state, StopState::Working))
    {
        out.protections.push(Protection {
            name: format!(
                "GTC stop {} {:?} {} {} @ {}",
                s.id,
                s.spec.side,
                s.spec.qty,
                s.spec.instrument.id(),
                s.spec.stop
            ),
            site: ProtectionSite::Broker,
        });
    }
    out
}

pub(crate) async fn run(core: SharedCore, hb: Heartbeat) -> TaskResult {
    let mut tick = tokio::time::interval(core.cfg.status_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let s = summary(&core).await;
        tracing::info!("{s}");
        core.status_tx.send_replace(s);
        hb.beat();
    }
}
