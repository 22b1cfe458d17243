//! [`AssignmentPolicy`]: what the trader wants when an option of theirs is assigned or
//! exercised.
//!
//! - **Intended outcomes** are not emergencies: a single option on its own (a cash-secured
//!   put, a naked call), a covered position (stock with short calls, short stock with short
//!   puts, e.g. a covered call whose shares are called away) and any strategy the trader marks
//!   as a wheel ([`StrategyChoice::wheel`]). The guard records it and alerts (with what was
//!   delivered or called away), marks nothing Broken and sends no order, except the sale of
//!   delivered stock when the policy says [`StockAction::Close`].
//! - **Everything else** (spreads, condors, strangles...) is broken by an assignment: the
//!   emergency close of [`super::guard`] closes what remains; the delivered stock is closed or
//!   kept by the same policy.
//!
//! What happens to delivered stock is chosen per shape ([`AssignedShape`]; defaults: keep for
//! single options and covered positions, close for everything else) and per strategy from the
//! app ([`StrategyChoice::stock`]), which wins.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tradeguard_model::{Instrument, Strategy, StrategyId, StrategyKind};

/// The shape of the strategy an assigned option belonged to, as the policy names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignedShape {
    /// One option on its own (cash-secured put, naked call, long option).
    SingleOption,
    /// Stock with short calls, or short stock with short puts (covered call / put).
    Covered,
    /// Vertical spread.
    Vertical,
    /// Iron condor.
    IronCondor,
    /// Iron butterfly.
    IronButterfly,
    /// Straddle.
    Straddle,
    /// Strangle.
    Strangle,
    /// Butterfly.
    Butterfly,
    /// Anything else with two or more legs.
    Custom,
}

impl AssignedShape {
    /// Every shape, in the order a person reads them.
    pub const ALL: [Self; 9] = [
        Self::SingleOption,
        Self::Covered,
        Self::Vertical,
        Self::IronCondor,
        Self::IronButterfly,
        Self::Straddle,
        Self::Strangle,
        Self::Butterfly,
        Self::Custom,
    ];

    /// The shape of `s`.
    pub fn of(s: &Strategy) -> Self {
        Self::from_parts(s.kind, s.legs.iter().map(|l| &l.instrument))
    }

    /// The shape of a strategy of `kind` holding `instruments` (one per leg).
    pub fn from_parts<'a>(
        kind: StrategyKind,
        instruments: impl IntoIterator<Item = &'a Instrument>,
    ) -> Self {
        let (mut options, mut stock) = (0, false);
        for i in instruments {
            match i {
                Instrument::Option(_) => options += 1,
                Instrument::Stock { .. } => stock = true,
                _ => {}
            }
        }
        if options == 1 && !stock {
            return Self::SingleOption;
        }
        match kind {
            StrategyKind::Covered => Self::Covered,
            StrategyKind::Vertical => Self::Vertical,
            StrategyKind::IronCondor => Self::IronCondor,
            StrategyKind::IronButterfly => Self::IronButterfly,
            StrategyKind::Straddle => Self::Straddle,
            StrategyKind::Strangle => Self::Strangle,
            StrategyKind::Butterfly => Self::Butterfly,
            StrategyKind::Custom => Self::Custom,
        }
    }

    /// Stable snake_case name, as in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SingleOption => "single_option",
            Self::Covered => "covered",
            Self::Vertical => "vertical",
            Self::IronCondor => "iron_condor",
            Self::IronButterfly => "iron_butterfly",
            Self::Straddle => "straddle",
            Self::Strangle => "strangle",
            Self::Butterfly => "butterfly",
            Self::Custom => "custom",
        }
    }

    /// The assignment of one of its options is the plan (see the module docs).
    pub fn intended(self) -> bool {
        matches!(self, Self::SingleOption | Self::Covered)
    }

    /// What is done with delivered stock unless the trader chose otherwise.
    pub fn default_stock(self) -> StockAction {
        if self.intended() {
            StockAction::Keep
        } else {
            StockAction::Close
        }
    }
}

/// What the guard does with stock an assignment or exercise delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StockAction {
    /// Keep the shares (and, in an emergency close, the options that protect them).
    Keep,
    /// Sell (or buy back) the delivered shares at once (at the open when the market is closed).
    Close,
}

impl StockAction {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keep => "keep",
            Self::Close => "close",
        }
    }
}

/// The trader's choice for one strategy (from the app).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StrategyChoice {
    /// A wheel: an assignment of its short leg is the plan (alert only).
    #[serde(default)]
    pub wheel: bool,
    /// Delivered stock, overriding the shape's choice.
    #[serde(default)]
    pub stock: Option<StockAction>,
}

/// The trader's assignment policy (see the module docs). In the rules file:
///
/// ```toml
/// [assignment]
/// # Shares an assignment delivers, per shape: "keep" or "close".
/// stock = { single_option = "keep", covered = "keep", vertical = "close", iron_condor = "close" }
/// # A close armed for the open: market orders this long after it (0 = at the open itself).
/// open_delay_secs = 120
/// ```
///
/// Per-strategy choices come from the app (journaled), not from the file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignmentPolicy {
    /// Delivered stock per shape; a shape not listed takes [`AssignedShape::default_stock`].
    #[serde(default)]
    pub stock: BTreeMap<AssignedShape, StockAction>,
    /// Per-strategy choices; they win over the shape's.
    #[serde(skip)]
    pub strategies: BTreeMap<StrategyId, StrategyChoice>,
    /// An emergency close armed for the open goes out as market orders this many seconds
    /// after it (0: at the open itself); unset: the guard's default (120).
    #[serde(default)]
    pub open_delay_secs: Option<u64>,
}

/// What the policy decides for one assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The strategy's shape.
    pub shape: AssignedShape,
    /// The plan: alert only (plus the stock action), nothing Broken.
    pub intended: bool,
    /// What happens to delivered stock.
    pub stock: StockAction,
}

impl AssignmentPolicy {
    /// Policy that closes delivered stock for every shape (the old global switch on).
    pub fn close_all_stock() -> Self {
        Self::every_shape(StockAction::Close)
    }

    /// Policy that keeps delivered stock for every shape.
    pub fn keep_all_stock() -> Self {
        Self::every_shape(StockAction::Keep)
    }

    fn every_shape(a: StockAction) -> Self {
        Self {
            stock: AssignedShape::ALL.into_iter().map(|s| (s, a)).collect(),
            ..Self::default()
        }
    }

    /// One line for a person: what happens to delivered shares per shape, e.g. "single
    /// options and covered positions are the plan (alert only, shares kept); spreads are
    /// closed (shares closed)".
    pub fn describe(&self) -> String {
        let shapes = AssignedShape::ALL
            .iter()
            .map(|s| {
                let a = self
                    .stock
                    .get(s)
                    .copied()
                    .unwrap_or_else(|| s.default_stock());
                format!("{} {} shares", s.as_str(), a.as_str())
            })
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "single_option and covered assignments are the plan (alert, no close); every other shape is Broken and closed. Delivered stock: {shapes}"
        )
    }

    /// The decision for an assignment or exercise of an option of `s`.
    pub fn decide(&self, s: &Strategy) -> Decision {
        self.decide_for(s.id, AssignedShape::of(s))
    }

    /// The decision for strategy `id` of shape `shape`.
    pub fn decide_for(&self, id: StrategyId, shape: AssignedShape) -> Decision {
        let choice = self.strategies.get(&id).copied().unwrap_or_default();
        let stock = choice
            .stock
            .or_else(|| self.stock.get(&shape).copied())
            .unwrap_or_else(|| shape.default_stock());
        Decision {
            shape,
            intended: shape.intended() || choice.wheel,
            stock,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradeguard_model::stubs;

    fn strategy(kind: StrategyKind, legs: Vec<tradeguard_model::Leg>) -> Strategy {
        let mut s = stubs::iron_condor_strategy();
        s.kind = kind;
        s.legs = legs;
        s
    }

    #[test]
    fn single_options_and_covered_positions_are_intended_and_keep_their_stock() {
        let p = AssignmentPolicy::default();
        let csp = strategy(StrategyKind::Custom, vec![stubs::leg(stubs::put(440), -1)]);
        let d = p.decide(&csp);
        assert_eq!(d.shape, AssignedShape::SingleOption);
        assert!(d.intended);
        assert_eq!(d.stock, StockAction::Keep);
        let cc = strategy(
            StrategyKind::Covered,
            vec![
                stubs::leg(Instrument::stock("SPY"), 100),
                stubs::leg(stubs::call(445), -1),
            ],
        );
        assert_eq!(
            p.decide(&cc),
            Decision {
                shape: AssignedShape::Covered,
                intended: true,
                stock: StockAction::Keep
            }
        );
    }

    #[test]
    fn spreads_are_broken_and_close_their_stock_unless_the_trader_says_otherwise() {
        let mut p = AssignmentPolicy::default();
        let v = strategy(
            StrategyKind::Vertical,
            vec![
                stubs::leg(stubs::put(440), -1),
                stubs::leg(stubs::put(435), 1),
            ],
        );
        let d = p.decide(&v);
        assert!(!d.intended);
        assert_eq!(d.stock, StockAction::Close);
        p.stock.insert(AssignedShape::Vertical, StockAction::Keep);
        assert_eq!(p.decide(&v).stock, StockAction::Keep);
        // The strategy's own choice wins: a wheel keeps its shares and is not an emergency.
        p.strategies.insert(
            v.id,
            StrategyChoice {
                wheel: true,
                stock: Some(StockAction::Close),
            },
        );
        let d = p.decide(&v);
        assert!(d.intended);
        assert_eq!(d.stock, StockAction::Close);
    }

    #[test]
    fn the_policy_reads_from_the_rules_file() {
        let text = "[assignment]\nstock = { single_option = \"close\", iron_condor = \"keep\" }\nopen_delay_secs = 0\n";
        let p = crate::rules::RiskConfig::parse(text, std::path::Path::new("risk.toml"))
            .unwrap()
            .assignment;
        assert_eq!(
            p.stock.get(&AssignedShape::SingleOption),
            Some(&StockAction::Close)
        );
        assert_eq!(
            p.stock.get(&AssignedShape::IronCondor),
            Some(&StockAction::Keep)
        );
        assert_eq!(p.open_delay_secs, Some(0));
        // A typo is an error with its line, never a silent default.
        let bad = "dry_run = true\n[assignment]\nstock = { vertical = \"sell\" }\n";
        let e =
            crate::rules::RiskConfig::parse(bad, std::path::Path::new("risk.toml")).unwrap_err();
        assert!(e.to_string().contains("risk.toml:3"), "{e}");
        let bad = "[assignment]\nstocks = {}\n";
        let e =
            crate::rules::RiskConfig::parse(bad, std::path::Path::new("risk.toml")).unwrap_err();
        assert!(e.to_string().contains("stocks"), "{e}");
    }
}
