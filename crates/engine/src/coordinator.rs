//! [`ExecutionCoordinator`]: the handle through which every order reaches the broker. Cheap to
//! clone; each call is a message to the engine task with a oneshot reply.
//!
//! Dropping the last handle stops the engine task; [`ExecutionCoordinator::abort`] kills it at
//! once (a crash, for recovery tests).

use crate::alert::Alert;
use crate::config::EngineConfig;
use crate::engine::{Command, Engine, EngineSnapshot, IntentCheck, PositionRepair, TradingChange};
use crate::error::ExecError;
use crate::gate::{TradingState, TradingStatus};
use crate::intent::OrderIntent;
use crate::journal::Journal;
use crate::risk::RiskModel;
use crate::stop::StopSpec;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tradeguard_model::{
    AccountId, BrokenReason, Broker, Clock, GroupId, InstrumentId, Position, StrategyId, Timestamp,
};

/// Everything the engine needs.
pub struct EngineDeps {
    /// The broker.
    pub broker: Arc<dyn Broker>,
    /// Durable journal.
    pub journal: Arc<dyn Journal>,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Stress model for the gate.
    pub risk: Box<dyn RiskModel>,
    /// Configuration.
    pub config: EngineConfig,
}

/// Handle to the execution engine: the only way to send orders.
#[derive(Clone)]
pub struct ExecutionCoordinator {
    tx: mpsc::Sender<Command>,
    trading: watch::Receiver<TradingStatus>,
    alerts: broadcast::Sender<Alert>,
    task: Arc<JoinHandle<()>>,
}

impl ExecutionCoordinator {
    /// Recovers from the journal and the broker (see [`crate::recovery`]), then starts the
    /// engine task.
    pub async fn start(deps: EngineDeps) -> Result<Self, ExecError> {
        let (alerts, _) = broadcast::channel(1024);
        let (state_tx, trading) = watch::channel(TradingStatus::default());
        let mut engine = Engine::new(
            deps.config,
            deps.broker,
            deps.journal,
            deps.clock,
            deps.risk,
            alerts.clone(),
            state_tx,
        );
        let events = engine.recover().await?;
        let (tx, rx) = mpsc::channel(1024);
        let task = tokio::spawn(engine.run(rx, events));
        Ok(Self {
            tx,
            trading,
            alerts,
            task: Arc::new(task),
        })
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, ExecError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(make(tx))
            .await
            .map_err(|_| ExecError::EngineStopped)?;
        rx.await.map_err(|_| ExecError::EngineStopped)
    }

    /// Gates, journals and starts a group; returns its id once its first order was handed to
    /// the broker (fills arrive later).
    pub async fn submit(&self, intent: OrderIntent) -> Result<GroupId, ExecError> {
        self.call(|r| Command::Submit(intent, r)).await?
    }

    /// Places a managed hybrid stop-loss; returns its id.
    pub async fn place_stop(&self, spec: StopSpec) -> Result<u64, ExecError> {
        self.call(|r| Command::PlaceStop(spec, r)).await?
    }

    /// Sets ACTIVE / REDUCING / HALTED (journaled, audited).
    pub async fn set_trading_state(&self, s: TradingState) -> Result<(), ExecError> {
        self.change_trading_state(s, "set by the caller".to_owned(), false)
            .await
            .map(|_| ())
    }

    /// Sets the trading state with the reason the audit log and the status show; with
    /// `only_stricter`, a looser state than the one in force is not applied. `Ok(true)` when the
    /// state changed.
    pub async fn change_trading_state(
        &self,
        to: TradingState,
        why: String,
        only_stricter: bool,
    ) -> Result<bool, ExecError> {
        let change = TradingChange {
            to,
            why,
            only_stricter,
        };
        self.call(|r| Command::SetTradingState(change, r)).await?
    }

    /// The trading state in force, why and since when (no call to the engine task).
    pub fn trading_status(&self) -> TradingStatus {
        self.trading.borrow().clone()
    }

    /// Marks a strategy Broken: from now on only the emergency path may close it.
    pub async fn mark_broken(&self, s: StrategyId, reason: &BrokenReason) -> Result<(), ExecError> {
        self.mark_broken_locking(s, reason, Vec::new()).await
    }

    /// Marks a strategy Broken and, in the same step, locks `legs` (its instruments) for every
    /// normal order, whatever strategy the order names: the gate refuses them from this
    /// command on, not only from the strategy book's next push ([`Self::set_broken_legs`],
    /// which takes the lock over once it shows the strategy Broken).
    pub async fn mark_broken_locking(
        &self,
        s: StrategyId,
        reason: &BrokenReason,
        legs: Vec<InstrumentId>,
    ) -> Result<(), ExecError> {
        let code = reason.code().to_owned();
        self.call(|r| Command::SetBroken(s, Some(code), legs, r))
            .await?
    }

    /// Clears a strategy's Broken flag.
    pub async fn clear_broken(&self, s: StrategyId) -> Result<(), ExecError> {
        self.call(|r| Command::SetBroken(s, None, Vec::new(), r))
            .await?
    }

    /// Replaces the set of instruments held by Broken strategies' legs (instrument → the
    /// Broken strategy holding it). The gate refuses every order that is not an emergency exit
    /// or a hedge with a leg on one of them, whatever strategy the order names
    /// (`gate.broken_strategy_leg`). In memory only: the guard pushes its strategy book's
    /// Broken strategies whenever they change and at every start.
    pub async fn set_broken_legs(
        &self,
        legs: BTreeMap<InstrumentId, StrategyId>,
    ) -> Result<(), ExecError> {
        self.call(|r| Command::SetBrokenLegs(legs, r)).await
    }

    /// Switches forced unwind of `account` on or off (journaled first). While on, the gate
    /// refuses every order for the account that does not reduce, except emergency exits; the
    /// flag is re-applied at every start until a person switches it off.
    pub async fn set_forced_unwind(
        &self,
        account: AccountId,
        enabled: bool,
    ) -> Result<(), ExecError> {
        self.call(|r| Command::SetForcedUnwind(account, enabled, r))
            .await?
    }

    /// Reconciliation: the broker's `positions` (all of them), asked for at `taken`, replace
    /// the engine's book for every instrument it has nothing working on and no fill or
    /// position event has touched since `taken`; returns the repairs made.
    pub async fn reconcile_positions(
        &self,
        positions: Vec<Position>,
        taken: Timestamp,
    ) -> Result<Vec<PositionRepair>, ExecError> {
        self.call(|r| Command::ReconcilePositions(positions, taken, r))
            .await
    }

    /// What [`ExecutionCoordinator::submit`] would do with `intent` now, without sending or
    /// journaling anything and without taking throttle tokens: the gate's verdict on the whole
    /// intent and on each leg alone, and the child orders each leg would be split into. An
    /// invalid intent is an [`ExecError::Invalid`].
    pub async fn check(&self, intent: OrderIntent) -> Result<IntentCheck, ExecError> {
        self.call(|r| Command::Check(intent, r)).await?
    }

    /// A copy of the engine's state.
    pub async fn snapshot(&self) -> Result<EngineSnapshot, ExecError> {
        self.call(Command::Snapshot).await
    }

    /// Alerts raised from now on.
    pub fn subscribe_alerts(&self) -> broadcast::Receiver<Alert> {
        self.alerts.subscribe()
    }

    /// Kills the engine task immediately (simulated crash; nothing is flushed beyond what the
    /// journal already holds).
    pub fn abort(&self) {
        self.task.abort();
    }
}
