//! Rule tests: config errors, hot reload, and every rule on and just below its trigger.

use super::stubs::{config, money, px, row, session, set_mark, snapshot, views};
use super::*;
use crate::intent::Purpose;
use crate::live::{MarkStatus, PositionView};
use crate::strategies::StrategyView;
use chrono::NaiveDate;
use std::collections::HashMap;
use std::path::Path;
use tradeguard_model::stubs::{call, put};
use tradeguard_model::{AccountSnapshot, BrokenReason, Instrument, Side, StrategyState, Timestamp};

const ACCT: &str = "DU-TEST";

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 1, d).expect("date")
}

fn at(d: u32, h: u32, m: u32) -> Timestamp {
    Timestamp::from_secs(
        day(d)
            .and_hms_opt(h, m, 0)
            .expect("time")
            .and_utc()
            .timestamp(),
    )
}

fn parse_err(text: &str) -> ConfigError {
    RiskConfig::parse(text, Path::new("/etc/risk.toml")).expect_err("must be rejected")
}

// ---- config --------------------------------------------------------------------------

#[test]
fn example_file_parses_and_documents_every_rule() {
    // Built in, so cargo rebuilds the test when the file changes (a path baked in at compile time
    // would point into whichever clone built a reused test binary).
    let text = include_str!("../../../../config/risk.example.toml");
    let cfg = RiskConfig::parse(text, Path::new("config/risk.example.toml"))
        .expect("example config is valid");
    let mut kinds: Vec<&str> = cfg.rules.iter().map(|r| r.kind.name()).collect();
    kinds.sort();
    kinds.dedup();
    assert_eq!(
        kinds,
        vec![
            "daily_loss",
            "dte_exit",
            "max_contracts",
            "max_drawdown",
            "pin_risk",
            "position_cap",
            "profit_target",
            "stop_loss",
            "trailing_stop"
        ]
    );
    for field in [
        "id",
        "enabled",
        "severity",
        "action",
        "dry_run",
        "accounts",
        "underlyings",
        "account_stale_after_secs",
        "max_contracts",
        "max_positions",
        "max_loss",
        "max_drawdown",
        "pct_of_credit",
        "credit_multiple",
        "activation_pct",
        "give_back_pct",
        "days",
        "within",
        "minutes_before_close",
    ] {
        assert!(
            text.contains(&format!("#   {field}")) || text.contains(&format!("{field} =")),
            "{field} undocumented"
        );
    }
}

#[test]
fn missing_global_dry_run_means_dry_run() {
    // Fails safe: only an explicit `dry_run = false` goes live.
    let cfg = config("[[dte_exit]]\naction = \"flatten\"\ndays = 2\n");
    assert!(cfg.dry_run, "a file without dry_run is in dry-run");
    assert!(
        !cfg.rules[0].common.dry_run,
        "a rule's own dry_run still defaults to false (the global switch decides)"
    );
    assert!(config("").dry_run, "an empty file too");
    assert!(RiskConfig::default().dry_run, "and the in-memory default");
    assert!(!config("dry_run = false\n[[dte_exit]]\ndays = 2\n").dry_run);
    assert!(config("dry_run = true\n").dry_run);
}

#[test]
fn defaults_and_generated_ids() {
    let cfg = config("[[dte_exit]]\ndays = 2\n[[dte_exit]]\ndays = 0\n");
    assert!(cfg.dry_run);
    assert_eq!(cfg.account_stale_after_secs, 300);
    let r = &cfg.rules[0];
    assert_eq!(r.common.id, "dte_exit");
    assert!(r.common.enabled && !r.common.dry_run);
    assert_eq!(
        (r.common.severity, r.common.action),
        (RuleSeverity::Warning, RuleAction::Alert)
    );
    assert_eq!(cfg.rules[1].common.id, "dte_exit#2");
}

#[test]
fn syntax_error_names_file_and_line() {
    let e = parse_err("dry_run = false\n\n[[stop_loss]\ncredit_multiple = 2\n");
    assert_eq!(e.code(), "config.syntax");
    assert_eq!(e.line(), Some(3));
    assert!(e.to_string().starts_with("/etc/risk.toml:3:"), "{e}");
}

#[test]
fn unknown_field_names_line_and_field() {
    let e = parse_err("[[stop_loss]]\ncredit_multiple = 2\ncredit_multipel = 3\n");
    assert_eq!(e.code(), "config.unknown_field");
    assert_eq!(e.line(), Some(3));
    let s = e.to_string();
    assert!(
        s.contains("stop_loss.credit_multipel") && s.contains("/etc/risk.toml:3"),
        "{s}"
    );
    let top = parse_err("dryrun = true\n");
    assert_eq!((top.code(), top.line()), ("config.unknown_field", Some(1)));
}

#[test]
fn missing_field_and_bad_values() {
    let e = parse_err("dry_run = true\n[[max_contracts]]\naction = \"flatten\"\n");
    assert_eq!(e.code(), "config.missing_field");
    assert!(e.to_string().contains("max_contracts"), "{e}");
    let e = parse_err("[[max_contracts]]\nmax_contracts = \"ten\"\n");
    assert_eq!((e.code(), e.line()), ("config.bad_value", Some(2)));
    assert!(e.to_string().contains("max_contracts.max_contracts"), "{e}");
    let e = parse_err("[[daily_loss]]\naction = \"panic\"\nmax_loss = 10\n");
    assert_eq!((e.code(), e.line()), ("config.bad_value", Some(2)));
    assert!(e.to_string().contains("daily_loss.action"), "{e}");
    let e = parse_err("[[daily_loss]]\nmax_loss = \"12.345678\"\n");
    assert_eq!(e.code(), "config.bad_value");
}

#[test]
fn semantic_validation() {
    let cases: [(&str, usize, &str); 8] = [
        (
            "[[max_contracts]]\nmax_contracts = -5\n",
            2,
            "max_contracts.max_contracts",
        ),
        (
            "[[position_cap]]\nmax_positions = 0\n",
            2,
            "position_cap.max_positions",
        ),
        (
            "[[daily_loss]]\nmax_loss = -100\n",
            2,
            "daily_loss.max_loss",
        ),
        (
            "[[max_drawdown]]\nmax_drawdown = 0\n",
            2,
            "max_drawdown.max_drawdown",
        ),
        (
            "[[trailing_stop]]\nactivation_pct = 30\ngive_back_pct = 40\n",
            3,
            "trailing_stop.give_back_pct",
        ),
        (
            "[[stop_loss]]\ncredit_multiple = 0\n",
            2,
            "stop_loss.credit_multiple",
        ),
        (
            "[[dte_exit]]\ndays = 1\n[[dte_exit]]\n\ndays = -1\n",
            5,
            "dte_exit#2.days",
        ),
        (
            "[[pin_risk]]\nwithin = -0.5\nminutes_before_close = 30\n",
            2,
            "pin_risk.within",
        ),
    ];
    for (text, line, field) in cases {
        let e = parse_err(text);
        assert_eq!(e.code(), "config.invalid", "{text}");
        assert_eq!(e.line(), Some(line), "{text}: {e}");
        assert!(e.to_string().contains(&format!("`{field}`")), "{e}");
    }
    let e = parse_err("[[trailing_stop]]\nactivation_pct = 30\ngive_back_pct = 40\n");
    assert!(e.to_string().contains("larger than the activation"), "{e}");
    let e = parse_err(
        "[[dte_exit]]\nid = \"x\"\ndays = 1\n[[pin_risk]]\nid = \"x\"\nwithin = 1\nminutes_before_close = 5\n",
    );
    assert_eq!((e.code(), e.line()), ("config.duplicate_id", Some(5)));
    let e = parse_err("account_stale_after_secs = 0\n");
    assert_eq!((e.code(), e.line()), ("config.invalid", Some(1)));
}

#[test]
fn missing_file_is_an_io_error() {
    let e = RiskConfig::load(Path::new("/nonexistent/risk.toml")).expect_err("no file");
    assert_eq!(e.code(), "config.io");
    assert!(e.to_string().contains("/nonexistent/risk.toml"));
}

// ---- hot reload --------------------------------------------------------------------------

#[test]
fn reload_applies_good_edits_and_keeps_last_good_on_bad_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("risk.toml");
    std::fs::write(&path, "[[dte_exit]]\ndays = 1\n").expect("write");
    let mut w = ConfigWatcher::load(&path).expect("load");
    assert_eq!(w.poll(), Reload::Unchanged);

    std::fs::write(&path, "[[dte_exit]]\ndays = 3\n").expect("write");
    let Reload::Applied(cfg) = w.poll() else {
        panic!("good edit applies")
    };
    assert_eq!(cfg.rules[0].kind, RuleKind::DteExit { days: 3 });

    std::fs::write(&path, "[[dte_exit]]\ndays = -3\n").expect("write");
    let Reload::Rejected(e) = w.poll() else {
        panic!("bad edit rejected")
    };
    assert_eq!((e.code(), e.line()), ("config.invalid", Some(2)));
    assert_eq!(
        w.current().rules[0].kind,
        RuleKind::DteExit { days: 3 },
        "last good kept"
    );
    assert_eq!(w.poll(), Reload::Unchanged, "reported once");
    assert!(w.last_error().is_some());

    std::fs::remove_file(&path).expect("rm");
    assert!(matches!(w.poll(), Reload::Rejected(ConfigError::Io { .. })));
    assert_eq!(w.poll(), Reload::Unchanged);
    std::fs::write(&path, "dry_run = true\n[[dte_exit]]\ndays = 0\n").expect("write");
    assert!(matches!(w.poll(), Reload::Applied(_)));
    assert!(w.current().dry_run && w.last_error().is_none());
}

#[test]
fn watch_starts_on_the_fallback_when_the_file_is_bad_and_applies_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("risk.toml");
    let bad = "dry_run = false\n\n[[max_contracts]]\nid = \"mc\"\nmax_contracts = \"two\"\n";
    std::fs::write(&path, bad).expect("write");
    let (mut w, e) = ConfigWatcher::watch(&path, RiskConfig::none(&path));
    let e = e.expect("the bad file is reported");
    assert_eq!((e.code(), e.line()), ("config.bad_value", Some(5)));
    assert!(
        e.to_string().contains("risk.toml:5")
            && e.to_string().contains("max_contracts.max_contracts"),
        "{e}"
    );
    let cfg = w.current();
    assert!(
        cfg.rules.is_empty() && cfg.dry_run,
        "the fallback: no rule, dry-run"
    );
    assert!(w.source().is_none(), "nothing good to keep");
    assert_eq!(w.poll(), Reload::Unchanged, "reported once, by watch");

    let good = "dry_run = false\n\n[[max_contracts]]\nid = \"mc\"\nmax_contracts = 2\n";
    std::fs::write(&path, good).expect("write");
    assert!(matches!(w.poll(), Reload::Applied(_)));
    assert_eq!(w.current().rules.len(), 1);
    let src = w.source().expect("the good text");
    assert_eq!(src.text, good);
    assert_eq!(src.hash, ConfigSource::new(&path, good).hash);
    assert_ne!(src.hash, ConfigSource::new(&path, bad).hash);

    // A missing file at start is the same: fallback, reported, applied once it appears.
    let missing = dir.path().join("none.toml");
    let (mut w, e) = ConfigWatcher::watch(&missing, RiskConfig::none(&missing));
    assert_eq!(e.map(|e| e.code()), Some("config.io"));
    assert_eq!(w.poll(), Reload::Unchanged);
    std::fs::write(&missing, good).expect("write");
    assert!(matches!(w.poll(), Reload::Applied(_)));
}

#[tokio::test(start_paused = true)]
async fn watcher_task_publishes_reloads_on_virtual_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("risk.toml");
    std::fs::write(&path, "[[dte_exit]]\ndays = 1\n").expect("write");
    let mut h = ConfigWatcher::load(&path)
        .expect("load")
        .spawn(std::time::Duration::from_secs(1));
    std::fs::write(&path, "[[dte_exit]]\ndays = 1\ngarbage = 1\n").expect("write");
    let ev = h.events.recv().await.expect("event");
    assert!(
        matches!(
            ev,
            Reload::Rejected(ConfigError::UnknownField { line: 3, .. })
        ),
        "{ev:?}"
    );
    assert_eq!(
        h.config.borrow().rules[0].kind,
        RuleKind::DteExit { days: 1 }
    );
    std::fs::write(&path, "[[dte_exit]]\ndays = 5\n").expect("write");
    assert!(matches!(h.events.recv().await, Some(Reload::Applied(_))));
    assert_eq!(
        h.config.borrow().rules[0].kind,
        RuleKind::DteExit { days: 5 }
    );
    h.task.abort();
}

// ---- evaluation fixture --------------------------------------------------------------------
//
// Configs that must act (flatten, or show a rule's own dry-run) say `dry_run = false`: a file
// without it is in global dry-run.

struct Fx {
    cfg: RiskConfig,
    rows: Vec<PositionView>,
    strategies: Vec<StrategyView>,
    accounts: Vec<AccountSnapshot>,
    spots: HashMap<String, tradeguard_model::Price>,
    today: NaiveDate,
    now: Timestamp,
    state: RuleState,
}

impl Fx {
    fn new(cfg: &str, rows: Vec<PositionView>) -> Self {
        let strategies = views(&rows);
        Self {
            cfg: config(cfg),
            rows,
            strategies,
            accounts: Vec::new(),
            spots: HashMap::new(),
            today: day(13),
            now: at(13, 15, 0),
            state: RuleState::new(),
        }
    }

    /// The SPY 440/430 put credit spread: sold at 3.00, bought at 1.00 (credit 200).
    fn spread(cfg: &str, short_mark: &str) -> Self {
        Self::new(
            cfg,
            vec![
                row(ACCT, put(440), -1, "3.00", short_mark),
                row(ACCT, put(430), 1, "1.00", "1.00"),
            ],
        )
    }

    fn mark(&mut self, idx: usize, mark: &str) {
        set_mark(&mut self.rows[idx], Some(px(mark)), MarkStatus::Fresh);
        self.restrategize();
    }

    fn restrategize(&mut self) {
        let states: Vec<_> = self
            .strategies
            .iter()
            .map(|s| (s.state, s.broken_reason.clone()))
            .collect();
        self.strategies = views(&self.rows);
        for (s, (st, r)) in self.strategies.iter_mut().zip(states) {
            s.state = st;
            s.broken_reason = r;
        }
    }

    fn run(&mut self) -> Evaluation {
        let input = EvalInput {
            config: &self.cfg,
            strategies: &self.strategies,
            positions: &self.rows,
            accounts: &self.accounts,
            spots: &self.spots,
            session: session(self.today),
            now: self.now,
        };
        evaluate(&input, &mut self.state)
    }

    fn fired(&mut self) -> Vec<Decision> {
        self.run()
            .decisions
            .into_iter()
            .filter(|d| d.outcome == Outcome::Fired)
            .collect()
    }
}

fn purposes(d: &Decision) -> Vec<Purpose> {
    d.intents.iter().map(|i| i.purpose).collect()
}

// ---- position rules ------------------------------------------------------------------------

#[test]
fn max_contracts_reduces_exactly_the_breaching_position_to_the_limit() {
    let cfg = "dry_run = false\n[[max_contracts]]\naction = \"flatten\"\nmax_contracts = 5\n";
    let mut fx = Fx::new(
        cfg,
        vec![
            row(ACCT, put(440), -6, "3.00", "2.00"),
            row(ACCT, call(460), -5, "2.00", "2.00"),
            row(ACCT, call(470), 4, "1.00", "1.00"),
        ],
    );
    let d = fx.fired();
    assert_eq!(d.len(), 1);
    assert_eq!(
        d[0].subject,
        Subject::Position {
            account: ACCT.into(),
            instrument: put(440).id()
        }
    );
    assert_eq!(purposes(&d[0]), vec![Purpose::Flatten]);
    let legs = &d[0].intents[0].legs;
    assert_eq!(legs.len(), 1);
    assert_eq!(
        (legs[0].instrument.id(), legs[0].side, legs[0].qty),
        (put(440).id(), Side::Buy, 1)
    );
    assert!(
        d[0].reason.contains("-6") && d[0].reason.contains("maximum of 5"),
        "{}",
        d[0].reason
    );
}

/// Do no harm: a vertical over the limit is reduced by whole spreads (short bought back with
/// its protection), never by selling the protective long alone.
#[test]
fn max_contracts_reduces_a_spread_by_whole_units_never_its_protection_alone() {
    let cfg = "dry_run = false\n[[max_contracts]]\naction = \"flatten\"\nmax_contracts = 4\n";
    let mut fx = Fx::new(
        cfg,
        vec![
            row(ACCT, call(460), -6, "2.00", "2.00"),
            row(ACCT, call(470), 6, "1.00", "1.00"),
        ],
    );
    let d = fx.fired();
    assert_eq!(d.len(), 2, "each leg breaches: {d:#?}");
    for dec in &d {
        assert_eq!(dec.intents.len(), 1, "{dec:#?}");
        let mut legs: Vec<_> = dec.intents[0]
            .legs
            .iter()
            .map(|l| (l.instrument.id(), l.side, l.qty))
            .collect();
        legs.sort_by_key(|l| l.0.clone());
        assert_eq!(
            legs,
            vec![
                (call(460).id(), Side::Buy, 2),
                (call(470).id(), Side::Sell, 2)
            ],
            "two whole spreads: {}",
            dec.reason
        );
    }
    // Protection beyond what the spread needs goes first (it protects nothing), then whole
    // spreads: 7 long over 2 short, limit 4 → 5 unneeded longs, 3 of them are enough.
    let mut fx = Fx::new(
        cfg,
        vec![
            row(ACCT, call(460), -2, "2.00", "2.00"),
            row(ACCT, call(470), 7, "1.00", "1.00"),
        ],
    );
    let d = fx.fired();
    assert_eq!(d.len(), 1);
    let legs = &d[0]
        .intents
        .iter()
        .flat_map(|i| i.legs.iter())
        .collect::<Vec<_>>();
    assert_eq!(legs.len(), 1, "{d:#?}");
    assert_eq!(
        (legs[0].instrument.id(), legs[0].side, legs[0].qty),
        (call(470).id(), Side::Sell, 3)
    );
    // 3 unneeded longs over 2 spreads, limit 1: the 3 go, then both spreads as units.
    let cfg1 = "dry_run = false\n[[max_contracts]]\naction = \"flatten\"\nmax_contracts = 1\n";
    let mut fx = Fx::new(
        cfg1,
        vec![
            row(ACCT, call(460), -2, "2.00", "2.00"),
            row(ACCT, call(470), 5, "1.00", "1.00"),
        ],
    );
    let d = fx.fired();
    let long = d
        .iter()
        .find(|d| {
            d.subject
                == Subject::Position {
                    account: ACCT.into(),
                    instrument: call(470).id(),
                }
        })
        .expect("the long's own part");
    let sold_alone: Vec<_> = long.intents.iter().flat_map(|i| i.legs.iter()).collect();
    assert_eq!(sold_alone.len(), 1, "{long:#?}");
    assert_eq!((sold_alone[0].side, sold_alone[0].qty), (Side::Sell, 3));
    // The spread's units are the strategy's own decision (one close job keeps its legs
    // together): one spread, both legs.
    let units: Vec<_> = d
        .iter()
        .filter(|d| matches!(d.subject, Subject::Strategy { .. }))
        .collect();
    assert!(!units.is_empty(), "{d:#?}");
    for u in units {
        let legs = &u.intents[0].legs;
        assert_eq!(legs.len(), 2, "{u:#?}");
        assert!(legs.iter().all(|l| l.qty == 1), "one spread: {u:#?}");
    }
}

#[test]
fn max_contracts_counts_option_contracts_not_shares() {
    // A covered call: 2,000 shares under 20 short calls. The shares are not "contracts";
    // flattening them would leave the calls naked.
    let cfg = "dry_run = false\n[[max_contracts]]\naction = \"flatten\"\nmax_contracts = 20\n";
    let mut fx = Fx::new(
        cfg,
        vec![
            row(
                ACCT,
                tradeguard_model::Instrument::stock("SPY"),
                2000,
                "440.00",
                "441.00",
            ),
            row(ACCT, call(460), -20, "2.00", "2.00"),
        ],
    );
    assert!(
        fx.fired().is_empty(),
        "20 contracts is at the limit; shares do not count"
    );
    let mut fx = Fx::new(cfg, vec![row(ACCT, call(460), -21, "2.00", "2.00")]);
    assert_eq!(fx.fired().len(), 1, "21 contracts breach it");
}

#[test]
fn dry_run_rule_and_global_dry_run_send_nothing() {
    let mut fx = Fx::new(
        "dry_run = false\n[[max_contracts]]\naction = \"flatten\"\ndry_run = true\nmax_contracts = 1\n",
        vec![row(ACCT, put(440), -2, "3.00", "2.00")],
    );
    let d = fx.fired();
    assert_eq!(d.len(), 1);
    assert!(d[0].dry_run && d[0].intents.is_empty());
    assert_eq!(d[0].would_send.len(), 1, "dry-run logs what it would send");
    let mut fx = Fx::new(
        "dry_run = true\n[[max_contracts]]\naction = \"flatten\"\nmax_contracts = 1\n",
        vec![row(ACCT, put(440), -2, "3.00", "2.00")],
    );
    let ev = fx.run();
    assert_eq!(ev.intents().count(), 0);
    assert!(ev.decisions[0].dry_run);
    assert!(ev.alerts[0].message.contains("[dry-run]"));
    // action = alert: fired, but never any order.
    let mut fx = Fx::new(
        "dry_run = false\n[[max_contracts]]\nmax_contracts = 1\n",
        vec![row(ACCT, put(440), -2, "3.00", "2.00")],
    );
    let d = fx.fired();
    assert!(d[0].intents.is_empty() && d[0].would_send.is_empty() && !d[0].dry_run);
}

#[test]
fn position_cap_closes_smallest_exposures_first_and_keeps_protection() {
    let cfg = "dry_run = false\n[[position_cap]]\naction = \"flatten\"\nmax_positions = 3\n";
    let mk = |n| {
        vec![
            // A vertical: the long 430 P protects the short 440 P and is never picked.
            row(ACCT, put(440), -1, "3.00", "2.00"), // exposure 200
            row(ACCT, put(430), 1, "0.10", "0.10"),  // exposure 10 (protection)
            row(ACCT, call(500), 1, "0.50", "0.50"), // 50
            row(ACCT, call(510), 1, "0.20", "0.30"), // 30
            row(ACCT, Instrument::stock("QQQ"), 10, "400", "400"), // 4000
        ]
        .into_iter()
        .take(n)
        .collect::<Vec<_>>()
    };
    let mut at_cap = Fx::new(cfg, mk(3));
    assert!(at_cap.fired().is_empty(), "3 positions at a cap of 3");
    let mut fx = Fx::new(cfg, mk(5));
    let d = fx.fired();
    let closed: Vec<_> = d
        .iter()
        .flat_map(|d| {
            d.intents
                .iter()
                .flat_map(|i| i.legs.iter().map(|l| l.instrument.id()))
        })
        .collect();
    assert_eq!(
        closed,
        vec![call(510).id(), call(500).id()],
        "smallest exposure first"
    );
    assert!(d.iter().all(|d| purposes(d) == vec![Purpose::Flatten]));
    assert!(
        d[0].reason.contains("5 open positions exceed the cap of 3"),
        "{}",
        d[0].reason
    );
}

// ---- account rules ---------------------------------------------------------------------------

#[test]
fn daily_loss_fires_at_the_limit_not_below_and_resets_next_day() {
    let mut fx = Fx::new(
        "dry_run = false\n[[daily_loss]]\naction = \"flatten\"\nmax_loss = 1000\n",
        vec![
            row(ACCT, put(440), -1, "3.00", "2.00"),
            row(ACCT, put(430), 1, "1.00", "1.00"),
        ],
    );
    fx.accounts = vec![snapshot(ACCT, "50000", fx.now)];
    assert!(fx.fired().is_empty());
    fx.accounts = vec![snapshot(ACCT, "49000.01", fx.now)];
    assert!(fx.fired().is_empty(), "999.99 lost: below the limit");
    fx.accounts = vec![snapshot(ACCT, "49000", fx.now)];
    let d = fx.fired();
    assert_eq!(d.len(), 1);
    assert_eq!(
        d[0].subject,
        Subject::Account {
            account: ACCT.into()
        }
    );
    assert!(
        d[0].reason.contains("daily loss 1000.00"),
        "{}",
        d[0].reason
    );
    // One flatten intent over every position, shorts and longs.
    assert_eq!(purposes(&d[0]), vec![Purpose::Flatten]);
    let legs: Vec<_> = d[0].intents[0]
        .legs
        .iter()
        .map(|l| (l.instrument.id(), l.side))
        .collect();
    assert_eq!(
        legs,
        vec![(put(440).id(), Side::Buy), (put(430).id(), Side::Sell)]
    );
    // Next trading day: the day start is the new value, so no loss yet.
    fx.today = day(14);
    fx.now = at(14, 15, 0);
    fx.accounts = vec![snapshot(ACCT, "49000", fx.now)];
    assert!(fx.fired().is_empty());
}

#[test]
fn max_drawdown_tracks_the_peak() {
    let mut fx = Fx::new("[[max_drawdown]]\nmax_drawdown = 500\n", Vec::new());
    for nlv in ["10000", "10600", "10100.01"] {
        fx.accounts = vec![snapshot(ACCT, nlv, fx.now)];
        assert!(fx.fired().is_empty(), "{nlv}");
    }
    fx.accounts = vec![snapshot(ACCT, "10100", fx.now)];
    let d = fx.fired();
    assert_eq!(d.len(), 1);
    assert!(d[0].reason.contains("peak 10600.00"), "{}", d[0].reason);
    assert_eq!(fx.state.accounts[&ACCT.into()].peak, money("10600"));
}

/// The prop firms' trailing maximum loss: the floor trails the end-of-day balance high (not
/// the intraday peak), stops rising at `stop_at`, and the breach flattens the account.
#[test]
fn trailing_max_loss_trails_end_of_day_highs_and_stops_at_the_starting_balance() {
    let mut fx = Fx::new(
        "dry_run = false\n[[trailing_max_loss]]\naction = \"flatten\"\nmax_loss = 2000\nstop_at = 50000\n",
        vec![row(ACCT, put(440), -1, "3.00", "2.00")],
    );
    // Day 13 starts at 50,000: the floor is 48,000.
    fx.accounts = vec![snapshot(ACCT, "50000", fx.now)];
    assert!(fx.fired().is_empty());
    // An intraday run to 51,500 does not move an end-of-day floor.
    fx.accounts = vec![snapshot(ACCT, "51500", fx.now)];
    assert!(fx.fired().is_empty());
    fx.accounts = vec![snapshot(ACCT, "48000.01", fx.now)];
    assert!(fx.fired().is_empty(), "above the floor");
    // Day 14 opens at 51,000 (yesterday's close): the floor rises to 49,000 (below the
    // 50,000 where it stops rising).
    fx.today = day(14);
    fx.accounts = vec![snapshot(ACCT, "51000", fx.now)];
    assert!(fx.fired().is_empty());
    assert_eq!(fx.state.accounts[&ACCT.into()].eod_high, money("51000"));
    fx.accounts = vec![snapshot(ACCT, "49000.01", fx.now)];
    assert!(fx.fired().is_empty());
    fx.accounts = vec![snapshot(ACCT, "49000", fx.now)];
    let d = fx.fired();
    assert_eq!(d.len(), 1);
    assert!(d[0].reason.contains("floor 49000.00"), "{}", d[0].reason);
    assert!(
        d[0].reason.contains("end-of-day high 51000.00"),
        "{}",
        d[0].reason
    );
    // Day 15 opens at 53,000: the floor (51,000) is capped at 50,000.
    fx.today = day(15);
    fx.accounts = vec![snapshot(ACCT, "53000", fx.now)];
    assert!(fx.fired().is_empty());
    fx.accounts = vec![snapshot(ACCT, "50000.01", fx.now)];
    assert!(fx.fired().is_empty(), "above the capped floor");
    fx.accounts = vec![snapshot(ACCT, "50000", fx.now)];
    let d = fx.fired();
    assert_eq!(d.len(), 1, "at the capped floor");
    assert!(d[0].reason.contains("stops at 50000.00"), "{}", d[0].reason);
}

/// The trader's flatten time before the firm's: weekdays from `at` (Chicago time) until the
/// daily halt, every position in scope closed; nothing before, after, or on a weekend.
#[test]
fn session_flatten_closes_the_account_within_its_window_only() {
    let mut fx = Fx::new(
        "dry_run = false\n[[session_flatten]]\naction = \"flatten\"\nat = \"15:05\"\n",
        vec![
            row(ACCT, put(440), -1, "3.00", "2.00"),
            row(ACCT, put(430), 1, "1.00", "1.00"),
        ],
    );
    // Monday 7 December 2026; Chicago is UTC−6 in winter.
    let at = |h: u32, m: u32, d: u32| {
        Timestamp::from_datetime(
            chrono::NaiveDate::from_ymd_opt(2026, 12, d)
                .unwrap()
                .and_hms_opt(h, m, 0)
                .unwrap()
                .and_utc(),
        )
        .unwrap()
    };
    fx.now = at(21, 4, 7);
    assert!(fx.fired().is_empty(), "14:04 CT");
    fx.now = at(21, 5, 7);
    let d = fx.fired();
    assert_eq!(d.len(), 1, "15:05 CT");
    assert!(
        d[0].reason.contains("15:05 America/Chicago"),
        "{}",
        d[0].reason
    );
    assert_eq!(d[0].intents[0].legs.len(), 2, "both positions closed");
    fx.now = at(22, 0, 7);
    assert!(
        fx.fired().is_empty(),
        "16:00 CT: the halt, the window is over"
    );
    fx.now = at(21, 30, 12);
    assert!(fx.fired().is_empty(), "Saturday");
    let e = RiskConfig::parse(
        "[[session_flatten]]\nat = \"3pm\"\n",
        std::path::Path::new("risk.toml"),
    )
    .unwrap_err();
    assert!(e.to_string().contains("session_flatten.at"), "{e}");
    let e = RiskConfig::parse(
        "[[session_flatten]]\nat = \"15:05\"\ntz = \"Chicago\"\n",
        std::path::Path::new("risk.toml"),
    )
    .unwrap_err();
    assert!(e.to_string().contains("session_flatten.tz"), "{e}");
}

#[test]
fn trailing_max_loss_errors_name_the_field() {
    let e = RiskConfig::parse(
        "[[trailing_max_loss]]\nmax_loss = 0\n",
        std::path::Path::new("risk.toml"),
    )
    .unwrap_err();
    assert!(e.to_string().contains("max_loss"), "{e}");
    let e = RiskConfig::parse(
        "[[trailing_max_loss]]\nmax_loss = 100\nstop_at = -5\n",
        std::path::Path::new("risk.toml"),
    )
    .unwrap_err();
    assert!(e.to_string().contains("stop_at"), "{e}");
}

#[test]
fn stale_or_missing_account_values_cannot_be_evaluated() {
    let mut fx = Fx::spread("[[daily_loss]]\nmax_loss = 100\n", "2.00");
    let ev = fx.run();
    assert_eq!(ev.decisions.len(), 1);
    assert_eq!(ev.decisions[0].outcome, Outcome::CannotEvaluate);
    assert!(
        ev.decisions[0].reason.contains("no account values"),
        "{}",
        ev.decisions[0].reason
    );
    fx.accounts = vec![snapshot(
        ACCT,
        "1000",
        fx.now.minus(std::time::Duration::from_secs(301)),
    )];
    let ev = fx.run();
    assert_eq!(ev.decisions[0].outcome, Outcome::CannotEvaluate);
    assert!(
        ev.decisions[0].reason.contains("stale"),
        "{}",
        ev.decisions[0].reason
    );
    assert_eq!(ev.decisions[0].code(), "rules.daily_loss.no_data");
}

// ---- strategy exits ----------------------------------------------------------------------

#[test]
fn profit_target_fires_at_pct_of_credit_not_below() {
    let cfg = "dry_run = false\n[[profit_target]]\naction = \"flatten\"\npct_of_credit = 50\n";
    // Credit 200; P&L = (3.00 - short mark) × 100.
    assert!(Fx::spread(cfg, "2.01").fired().is_empty(), "P&L 99 < 100");
    let d = Fx::spread(cfg, "2.00").fired();
    assert_eq!(d.len(), 1);
    assert!(
        d[0].reason.contains("P&L 100.00") && d[0].reason.contains("200.00"),
        "{}",
        d[0].reason
    );
    assert_eq!(purposes(&d[0]), vec![Purpose::Close]);
    let i = &d[0].intents[0];
    assert!(i.strategy.is_some());
    let legs: Vec<_> = i
        .legs
        .iter()
        .map(|l| (l.instrument.id(), l.side, l.qty))
        .collect();
    assert!(
        legs.contains(&(put(440).id(), Side::Buy, 1))
            && legs.contains(&(put(430).id(), Side::Sell, 1))
    );
}

#[test]
fn stop_loss_fires_at_the_credit_multiple_not_below() {
    let cfg = "dry_run = false\n[[stop_loss]]\naction = \"flatten\"\ncredit_multiple = 1.5\n";
    assert!(Fx::spread(cfg, "5.99").fired().is_empty(), "loss 299 < 300");
    let d = Fx::spread(cfg, "6.00").fired();
    assert_eq!(d.len(), 1);
    assert!(d[0].reason.contains("loss 300.00"), "{}", d[0].reason);
}

#[test]
fn trailing_stop_activates_and_fires_on_give_back() {
    let cfg = "dry_run = false\n[[trailing_stop]]\naction = \"flatten\"\nactivation_pct = 50\ngive_back_pct = 20\n";
    let mut fx = Fx::spread(cfg, "2.01"); // P&L 99 < activation 100
    assert!(fx.fired().is_empty());
    assert!(
        fx.state
            .trailing
            .get("trailing_stop")
            .is_none_or(|m| m.is_empty())
    );
    fx.mark(0, "2.00"); // P&L 100: activated, high 100
    assert!(fx.fired().is_empty());
    let id = fx.strategies[0].id;
    assert_eq!(
        fx.state.trailing_high("trailing_stop", id),
        Some(money("100"))
    );
    fx.mark(0, "1.50"); // high 150; stop at 150 - 40 = 110
    assert!(fx.fired().is_empty());
    fx.mark(0, "1.89"); // 111 > 110
    assert!(fx.fired().is_empty());
    assert_eq!(
        fx.state.trailing_high("trailing_stop", id),
        Some(money("150"))
    );
    fx.mark(0, "1.90"); // 110: fires
    let d = fx.fired();
    assert_eq!(d.len(), 1);
    assert!(
        d[0].reason.contains("from its high 150.00"),
        "{}",
        d[0].reason
    );
    assert_eq!(d[0].intents.len(), 1);
}

/// Issue "On the trader's desk with IB", point 5: after a gap the legs' marks update a few ms
/// apart, and for a moment the strategy P&L mixes legs priced before and after it. A phantom
/// high that lasts less than `pnl_confirm_secs` neither raises the trailing stop's high nor
/// fires it; a give-back that holds for the confirmation time does.
#[test]
fn a_phantom_pnl_extreme_shorter_than_the_confirmation_neither_arms_nor_fires_a_trailing_stop() {
    let cfg = "dry_run = false\npnl_confirm_secs = 2\n[[trailing_stop]]\naction = \"flatten\"\nactivation_pct = 50\ngive_back_pct = 20\n";
    let mut fx = Fx::spread(cfg, "1.50"); // P&L 150
    let step = |fx: &mut Fx, ms: u64| fx.now = fx.now.plus(std::time::Duration::from_millis(ms));
    assert!(fx.fired().is_empty(), "not confirmed yet");
    step(&mut fx, 2_000);
    assert!(fx.fired().is_empty());
    let id = fx.strategies[0].id;
    assert_eq!(
        fx.state.trailing_high("trailing_stop", id),
        Some(money("150"))
    );
    // One leg marked at the new spot, the other not yet: P&L 250 for 300 ms (old code: high
    // 250, stop 210, and the real 155 below it fired).
    step(&mut fx, 500);
    fx.mark(0, "0.50");
    assert!(fx.fired().is_empty());
    step(&mut fx, 300);
    fx.mark(0, "1.45"); // both legs caught up: P&L 155
    assert!(fx.fired().is_empty());
    for _ in 0..10 {
        step(&mut fx, 500);
        assert!(
            fx.fired().is_empty(),
            "155 is well above the stop of 150 - 40"
        );
    }
    assert_eq!(
        fx.state.trailing_high("trailing_stop", id),
        Some(money("155")),
        "the high is what held, not the phantom 250"
    );
    // A real give-back (to 110) fires once it has held for 2 s.
    step(&mut fx, 500);
    fx.mark(0, "1.90");
    assert!(fx.fired().is_empty(), "not held yet");
    step(&mut fx, 1_000);
    assert!(fx.fired().is_empty());
    step(&mut fx, 1_000);
    let d = fx.fired();
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(
        d[0].reason.contains("from its high 155.00"),
        "{}",
        d[0].reason
    );
}

#[test]
fn dte_exit_fires_at_the_configured_days() {
    let cfg = "dry_run = false\n[[dte_exit]]\naction = \"flatten\"\ndays = 1\n"; // stub expiry 2025-01-17
    let mut fx = Fx::spread(cfg, "2.00");
    fx.today = day(15);
    assert!(fx.fired().is_empty(), "2 days left");
    fx.today = day(16);
    let d = fx.fired();
    assert_eq!(d.len(), 1);
    assert!(
        d[0].reason.contains("1 day(s) to expiry 2025-01-17"),
        "{}",
        d[0].reason
    );
}

#[test]
fn pin_risk_near_the_close_of_expiry_day() {
    let cfg = "dry_run = false\n[[pin_risk]]\naction = \"flatten\"\nwithin = 0.5\nminutes_before_close = 60\n";
    let mut fx = Fx::spread(cfg, "0.40");
    fx.today = day(17);
    fx.now = at(17, 20, 0); // close 21:00 UTC, window opens 20:00
    fx.spots.insert("SPY".into(), px("440.51"));
    assert!(fx.fired().is_empty(), "0.51 from the strike");
    fx.spots.insert("SPY".into(), px("440.50"));
    let d = fx.fired();
    assert_eq!(d.len(), 1);
    assert!(d[0].reason.contains("near the strike"), "{}", d[0].reason);
    fx.spots.insert("SPY".into(), px("439"));
    assert!(fx.fired()[0].reason.contains("in the money"));
    fx.now = at(17, 19, 59);
    assert!(fx.fired().is_empty(), "before the window");
    fx.today = day(16);
    fx.now = at(16, 20, 30);
    assert!(fx.fired().is_empty(), "not the expiry day");
    fx.today = day(17);
    fx.now = at(17, 20, 30);
    fx.spots.clear();
    let ev = fx.run();
    assert_eq!(ev.decisions[0].outcome, Outcome::CannotEvaluate);
    assert!(
        ev.decisions[0]
            .reason
            .contains("no underlying price for SPY")
    );
}

#[test]
fn missing_or_stale_mark_is_an_explicit_decision() {
    let cfg = "[[profit_target]]\npct_of_credit = 50\n[[stop_loss]]\ncredit_multiple = 2\n";
    let mut fx = Fx::spread(cfg, "2.00");
    set_mark(&mut fx.rows[1], None, MarkStatus::Missing);
    fx.restrategize();
    let ev = fx.run();
    assert_eq!(ev.decisions.len(), 2, "one per rule, none skipped");
    for d in &ev.decisions {
        assert_eq!(d.outcome, Outcome::CannotEvaluate);
        assert!(
            d.reason
                .starts_with(&format!("cannot evaluate rule {} for strategy", d.rule_id)),
            "{}",
            d.reason
        );
        assert!(
            d.reason.contains(&format!("{} (no mark)", put(430).id())),
            "{}",
            d.reason
        );
    }
    assert_eq!(ev.alerts.len(), 2);
    set_mark(&mut fx.rows[1], Some(px("1.00")), MarkStatus::Stale);
    fx.restrategize();
    let ev = fx.run();
    assert!(
        ev.decisions
            .iter()
            .all(|d| d.reason.contains("(stale mark)"))
    );
}

#[test]
fn broken_strategy_is_left_to_the_assignment_guard() {
    let cfg = "dry_run = false\n[[stop_loss]]\naction = \"flatten\"\ncredit_multiple = 1\n[[max_contracts]]\naction = \"flatten\"\nmax_contracts = 0\n";
    let cfg = cfg.replace("max_contracts = 0", "max_contracts = 1");
    let mut fx = Fx::new(
        &cfg,
        vec![
            row(ACCT, put(440), -2, "3.00", "9.00"),
            row(ACCT, put(430), 2, "1.00", "5.00"),
        ],
    );
    fx.strategies[0].state = StrategyState::Broken;
    fx.strategies[0].broken_reason = Some(BrokenReason::Assigned {
        instrument: put(440).id(),
    });
    let ev = fx.run();
    assert_eq!(ev.decisions.len(), 3, "{:?}", ev.decisions);
    assert!(
        ev.decisions
            .iter()
            .all(|d| d.outcome == Outcome::LeftToAssignmentGuard)
    );
    assert_eq!(ev.intents().count(), 0);
    assert!(ev.decisions[0].reason.contains("assignment guard"));
}

#[test]
fn no_close_ever_uses_the_emergency_path() {
    let cfg = "dry_run = false\n[[stop_loss]]\naction = \"flatten\"\ncredit_multiple = 1\n[[max_contracts]]\naction = \"flatten\"\nmax_contracts = 1\n[[daily_loss]]\naction = \"flatten\"\nmax_loss = 1\n";
    let mut fx = Fx::spread(cfg, "9.00");
    fx.rows[0].qty = -3;
    fx.restrategize();
    fx.accounts = vec![snapshot(ACCT, "1", fx.now)];
    fx.run();
    fx.accounts = vec![snapshot(ACCT, "0", fx.now)];
    let ev = fx.run();
    assert!(ev.intents().count() >= 3);
    assert!(ev.intents().all(|i| i.purpose != Purpose::Emergency));
}

#[test]
fn alerts_are_raised_once_and_rearm_after_clearing() {
    let cfg = "[[profit_target]]\npct_of_credit = 50\n";
    let mut fx = Fx::spread(cfg, "2.00");
    assert_eq!(fx.run().alerts.len(), 1);
    let ev = fx.run();
    assert_eq!(
        (ev.decisions.len(), ev.alerts.len()),
        (1, 0),
        "decision repeats, alert does not"
    );
    fx.mark(0, "2.50");
    assert!(fx.run().decisions.is_empty());
    fx.mark(0, "1.90");
    let ev = fx.run();
    assert_eq!(ev.alerts.len(), 1);
    assert_eq!(ev.alerts[0].code, "rules.profit_target.fired");
}

#[test]
fn disabled_and_out_of_scope_rules_do_nothing() {
    let mut fx = Fx::spread(
        "[[profit_target]]\nenabled = false\npct_of_credit = 1\n",
        "2.00",
    );
    assert_eq!(fx.run().checks, 0);
    let mut fx = Fx::spread(
        "[[profit_target]]\nunderlyings = [\"QQQ\"]\npct_of_credit = 1\n",
        "2.00",
    );
    assert_eq!(fx.run().checks, 0);
    let mut fx = Fx::spread(
        "[[profit_target]]\naccounts = [\"OTHER\"]\npct_of_credit = 1\n",
        "2.00",
    );
    assert!(fx.run().decisions.is_empty());
}

#[test]
fn scoped_evaluation_matches_the_full_one_for_its_subjects() {
    let cfg = "dry_run = false\n[[profit_target]]\naction = \"flatten\"\npct_of_credit = 50\n[[max_contracts]]\naction = \"flatten\"\nmax_contracts = 1\n[[daily_loss]]\nmax_loss = 10\n";
    let mut fx = Fx::new(
        cfg,
        vec![
            row(ACCT, put(440), -1, "3.00", "2.00"),
            row(ACCT, put(430), 1, "1.00", "1.00"),
            row(ACCT, call(470), -3, "1.00", "0.90"),
        ],
    );
    fx.accounts = vec![snapshot(ACCT, "1000", fx.now)];
    let full = fx.run();
    let input = EvalInput {
        config: &fx.cfg,
        strategies: &fx.strategies,
        positions: &fx.rows,
        accounts: &fx.accounts,
        spots: &fx.spots,
        session: session(fx.today),
        now: fx.now,
    };
    let ix = EvalIndex::build(&input);
    let mut state = RuleState::new();
    let scoped = evaluate_position(&input, &ix, 0, &mut state);
    let subjects: Vec<_> = scoped.decisions.iter().map(|d| d.subject.clone()).collect();
    // The 440 P event re-checks its strategy (profit target fires) but not the 470 C.
    assert_eq!(subjects.len(), 1, "{subjects:?}");
    assert!(
        full.decisions
            .iter()
            .any(|d| d.subject == subjects[0] && d.intents == scoped.decisions[0].intents)
    );
    let scoped = evaluate_position(&input, &ix, 2, &mut state);
    assert_eq!(scoped.decisions.len(), 1);
    assert_eq!(scoped.decisions[0].rule, "max_contracts");
    let beyond = evaluate_position(&input, &ix, 99, &mut state);
    assert!(beyond.decisions.is_empty());
}

#[test]
fn session_from_fixed_offset() {
    // 2025-01-17 02:00 UTC is still the 16th in New York (UTC-5).
    let s = Session::fixed_offset(at(17, 2, 0), -300, 16, 0);
    assert_eq!(s.today, day(16));
    assert_eq!(s.close, at(16, 21, 0));
}
