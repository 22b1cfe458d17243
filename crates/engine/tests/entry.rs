//! Opening a strategy through the guard (issue "Open strategies through the guard"): the
//! chain, the ticket's preview, and placing only a previewed, unexpired, unused id.
//!
//! 1. The chain lists the simulator's strikes around the price with quotes, IV and delta.
//! 2. An iron condor previewed at the natural price: the wings (protective) are tier 0 and
//!    the shorts tier 1, the credit is the bids less the asks, the maximum loss is the width
//!    less the credit, the gate passes with its stress figures; nothing is sent by the
//!    preview. Placed: the account holds the condor and the strategy is recognized; the id
//!    cannot be placed twice.
//! 3. A naked strangle too big for the account: the preview says the gate would refuse it
//!    and names the scenario and the excess; placing it is refused the same way, and nothing
//!    reaches the broker.
//! 4. A bad ticket names its field; an expired preview is refused.

mod common;
use common::*;
use tradeguard_engine::GateRefusal;
use tradeguard_engine::MemoryJournal;
use tradeguard_engine::assignment::AssignmentConfig;
use tradeguard_engine::enforce::{EnforceConfig, EnforceError, Guard};
use tradeguard_engine::entry::{EntryError, Exits, LimitPrice, Template, Ticket, TicketLeg};
use tradeguard_model::{Instrument, Money, Right, Side, Tif, stubs};

async fn guard(b: &std::sync::Arc<tradeguard_sim::SimBroker>, j: &MemoryJournal) -> Guard {
    guard_on_sim(
        b.clone(),
        start_ts(),
        j,
        "500",
        EnforceConfig::default(),
        Box::new(tradeguard_engine::enforce::NoRules),
        AssignmentConfig::default(),
    )
    .await
}

fn leg(i: Instrument, side: Side) -> TicketLeg {
    TicketLeg {
        instrument: i,
        side,
        ratio: 1,
    }
}

fn condor(quantity: i64) -> Ticket {
    Ticket {
        account: stubs::account(),
        template: Template::IronCondor,
        legs: vec![
            leg(opt(Right::Put, 480), Side::Buy),
            leg(opt(Right::Put, 490), Side::Sell),
            leg(opt(Right::Call, 510), Side::Sell),
            leg(opt(Right::Call, 520), Side::Buy),
        ],
        quantity,
        limit: LimitPrice::Natural,
        tif: Tif::Day,
        exits: Default::default(),
    }
}

/// Previews until the legs have quotes (the preview subscribes them on first sight).
async fn preview(g: &Guard, t: Ticket) -> tradeguard_engine::entry::EntryPreview {
    for _ in 0..50 {
        match g.preview_entry(t.clone()).await {
            Err(EnforceError::Entry(EntryError::NoMarket { .. })) => sleep_ms(200).await,
            other => return other.expect("the preview"),
        }
    }
    panic!("no quotes for the ticket's legs");
}

#[tokio::test(start_paused = true)]
async fn an_iron_condor_is_previewed_then_placed_protective_legs_first() {
    let b = broker(sim_cfg(41));
    let j = MemoryJournal::new();
    let g = guard(&b, &j).await;

    // The chain: strikes around 500 with both sides quoted once subscribed.
    let mut chain = g.option_chain("SPY", None, 10).await.expect("the chain");
    for _ in 0..20 {
        if chain.strikes.iter().all(|s| s.call.quote.is_some()) {
            break;
        }
        sleep_ms(200).await;
        chain = g.option_chain("SPY", Some(chain.expiry), 10).await.unwrap();
    }
    assert_eq!(chain.strikes.len(), 10);
    assert!(chain.strikes.windows(2).all(|w| w[0].strike < w[1].strike));
    let atm = chain
        .strikes
        .iter()
        .find(|s| s.strike == px("500"))
        .expect("500 listed");
    let (iv, delta) = (atm.call.iv.expect("iv"), atm.call.delta.expect("delta"));
    assert!((0.10..0.20).contains(&iv), "the sim's 15 % vol: {iv}");
    assert!((0.4..0.65).contains(&delta), "{delta}");
    assert!(atm.put.delta.expect("put delta") < 0.0);

    let p = preview(&g, condor(2)).await;
    assert_eq!(executions(&b).await.len(), 0, "a preview sends nothing");
    assert!(!p.native_combo, "legged: the engine's default");
    // Protective wings in the first tier, the shorts after.
    let tier = |k: i64, r: Right| {
        p.orders
            .iter()
            .find(|o| o.instrument == opt(r, k))
            .unwrap()
            .tier
    };
    assert_eq!((tier(480, Right::Put), tier(520, Right::Call)), (0, 0));
    assert_eq!((tier(490, Right::Put), tier(510, Right::Call)), (1, 1));
    assert!(p.orders[0].tier == 0 && p.orders[3].tier == 1);
    // Natural: sells at the bid, buys at the ask; the credit and the profile follow.
    let mut credit = 0i64;
    for o in &p.orders {
        let (bid, ask) = (o.bid.unwrap(), o.ask.unwrap());
        match o.side {
            Side::Sell => {
                assert_eq!(o.limit, bid);
                credit += bid.raw();
            }
            Side::Buy => {
                assert_eq!(o.limit, ask);
                credit -= ask.raw();
            }
        }
        assert_eq!(o.qty, 2);
    }
    assert!(credit > 0, "a condor sold for a credit");
    assert_eq!(p.net_price.raw(), -credit);
    let credit_usd = credit as f64 / 10_000.0 * 100.0 * 2.0;
    assert!(
        (p.net_cash - credit_usd).abs() < 1e-6,
        "{} vs {credit_usd}",
        p.net_cash
    );
    let max_loss = p.profile.max_loss.expect("bounded");
    assert!(
        (max_loss - (10.0 * 100.0 * 2.0 - credit_usd)).abs() < 0.01,
        "width less the credit: {max_loss}"
    );
    assert_eq!(p.profile.breakevens.len(), 2);
    assert!(p.margin.gross > 0.0);
    assert_eq!(p.refusal, None, "{:?}", p.refusal);
    let stress = p.stress.as_ref().expect("stress figures");
    assert!(stress.worst.requirement <= stress.limit);
    assert_eq!(stress.pct, 90);

    let group = g.place_entry(&p.id).await.expect("placed");
    for _ in 0..100 {
        if qty_at_broker(&b, &opt(Right::Put, 490)).await == -2
            && qty_at_broker(&b, &opt(Right::Call, 510)).await == -2
        {
            break;
        }
        sleep_ms(100).await;
    }
    for (k, r, q) in [
        (480, Right::Put, 2),
        (490, Right::Put, -2),
        (510, Right::Call, -2),
        (520, Right::Call, 2),
    ] {
        assert_eq!(qty_at_broker(&b, &opt(r, k)).await, q, "{k} {r:?}");
    }
    // The wings filled before any short was sent.
    let ex = executions(&b).await;
    let first_sell = ex.iter().position(|e| e.side == Side::Sell).unwrap();
    assert_eq!(
        ex[..first_sell].iter().map(|e| e.qty).sum::<i64>(),
        4,
        "both wings bought before the first sale: {ex:#?}"
    );
    for _ in 0..30 {
        if g.strategies()
            .iter()
            .any(|s| s.kind.as_str() == "iron_condor")
        {
            break;
        }
        sleep_ms(200).await;
    }
    assert!(
        g.strategies()
            .iter()
            .any(|s| s.kind.as_str() == "iron_condor"),
        "{:#?}",
        g.strategies()
    );
    let audits = audits(&j);
    assert!(
        audits
            .iter()
            .any(|a| a.code == "entry.placed" && a.reason.contains(&group.to_string())),
        "{audits:#?}"
    );
    match g.place_entry(&p.id).await {
        Err(EnforceError::Entry(EntryError::AlreadyUsed { .. })) => {}
        other => panic!("a second placement is refused: {other:?}"),
    }
    g.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_stress_refusal_names_the_scenario_and_sends_nothing() {
    let mut cfg = sim_cfg(42);
    cfg.cash = Money::from_units(20_000).unwrap();
    let b = broker(cfg);
    let j = MemoryJournal::new();
    let g = guard(&b, &j).await;
    let strangle = Ticket {
        account: stubs::account(),
        template: Template::Strangle,
        legs: vec![
            leg(opt(Right::Put, 480), Side::Sell),
            leg(opt(Right::Call, 520), Side::Sell),
        ],
        quantity: 10,
        limit: LimitPrice::Mid,
        tif: Tif::Day,
        exits: Default::default(),
    };
    let p = preview(&g, strangle).await;
    let Some(GateRefusal::StressLimit {
        scenario, excess, ..
    }) = &p.refusal
    else {
        panic!("the gate would refuse it on stress: {:?}", p.refusal);
    };
    assert!(excess.is_positive());
    let said = p.refusal.as_ref().unwrap().to_string();
    assert!(said.contains(&scenario.to_string()), "{said}");
    match g.place_entry(&p.id).await {
        Err(EnforceError::Entry(EntryError::Refused(GateRefusal::StressLimit { .. }))) => {}
        other => panic!("placing it is refused: {other:?}"),
    }
    sleep_ms(2_000).await;
    assert!(executions(&b).await.is_empty());
    let audits = audits(&j);
    assert!(
        audits
            .iter()
            .any(|a| a.code == "gate.stress_limit" && a.reason.contains(&scenario.to_string())),
        "the audit log names the scenario: {audits:#?}"
    );
    g.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn bad_tickets_and_expired_previews_are_refused_by_name() {
    let b = broker(sim_cfg(43));
    let j = MemoryJournal::new();
    let g = guard(&b, &j).await;
    let mut t = condor(1);
    t.legs[1].side = Side::Buy;
    match g.preview_entry(t).await {
        Err(EnforceError::Entry(EntryError::BadTicket(e))) => {
            assert_eq!(e.field, "legs");
            assert!(e.message.contains("iron_condor"), "{e:?}");
        }
        other => panic!("{other:?}"),
    }
    let p = preview(&g, condor(1)).await;
    sleep_ms(61_000).await;
    match g.place_entry(&p.id).await {
        Err(EnforceError::Entry(EntryError::ExpiredPreview { .. })) => {}
        other => panic!("{other:?}"),
    }
    match g.place_entry("ep-nothing").await {
        Err(e) => assert_eq!(e.code(), "entry.unknown_preview"),
        Ok(g) => panic!("placed {g}"),
    }
    sleep_ms(1_000).await;
    assert!(executions(&b).await.is_empty());
    g.shutdown().await;
}

/// A put credit spread opened with a stop attached at 0.5 × its credit, under a rules file in
/// dry-run: the strategy shows its stop; when SPY falls through the short put the stop exits
/// once, through the hybrid exit (limits for 2 s, the short bought back first), though the
/// file's rules are in dry-run (a stop a person placed is not held back); the account ends flat
/// and the exit ends with its strategy.
#[tokio::test(start_paused = true)]
async fn a_stop_attached_at_entry_exits_once_through_the_hybrid_exit() {
    let b = broker(sim_cfg(44));
    let j = MemoryJournal::new();
    let g = guard_on_sim(
        b.clone(),
        start_ts(),
        &j,
        "500",
        EnforceConfig::default(),
        rules_file("# no rules, dry-run (no dry_run line)\n"),
        AssignmentConfig::default(),
    )
    .await;
    let mut t = condor(1);
    t.template = Template::Vertical;
    t.legs.truncate(2);
    t.exits = Exits {
        stop_loss_multiple: Some(px("0.5")),
        profit_target_pct: None,
    };
    // Paid 0.20 through the natural price, so the sells fill though the market moves.
    let natural = preview(&g, t.clone()).await.net_price;
    t.limit = LimitPrice::Custom {
        net: tradeguard_model::Price::from_raw(natural.raw() + 2_000),
    };
    let p = preview(&g, t).await;
    g.place_entry(&p.id).await.expect("placed");
    let mut attached = Vec::new();
    for _ in 0..100 {
        attached = g.attached_exits();
        if attached.iter().any(|(s, _)| s.is_some()) {
            break;
        }
        sleep_ms(100).await;
    }
    let (Some(strategy), exit) = attached.first().cloned().expect("one attached exit") else {
        panic!("the spread is held as one strategy: {attached:?}");
    };
    assert_eq!(exit.exits.stop_loss_multiple, Some(px("0.5")));
    assert!(g.strategies().iter().any(|s| s.id == strategy));
    let opened = executions(&b).await.len();
    assert_eq!(opened, 2);

    // SPY falls through the short put: the loss passes half the credit.
    venue(&b)
        .lock()
        .unwrap()
        .set_spot("SPY", px("484"))
        .unwrap();
    for _ in 0..300 {
        if qty_at_broker(&b, &opt(Right::Put, 490)).await == 0
            && qty_at_broker(&b, &opt(Right::Put, 480)).await == 0
        {
            break;
        }
        sleep_ms(100).await;
    }
    for (k, r) in [(480, Right::Put), (490, Right::Put)] {
        assert_eq!(qty_at_broker(&b, &opt(r, k)).await, 0, "{k} {r:?} closed");
    }
    let groups: Vec<tradeguard_engine::Group> = group_records(&j)
        .into_iter()
        .filter(|g| g.intent.purpose != tradeguard_engine::intent::Purpose::Open)
        .collect();
    let exit_groups: std::collections::BTreeSet<_> = groups.iter().map(|g| g.id).collect();
    let first = groups.first().expect("an exit group");
    assert_eq!(
        first.intent.leg_timeout,
        Some(std::time::Duration::from_secs(2)),
        "the hybrid exit's limits work 2 s"
    );
    assert!(
        first.legs.iter().all(|l| matches!(
            l.intent.order_type,
            tradeguard_model::OrderType::Limit { .. }
        )),
        "limits first: {first:#?}"
    );
    assert!(
        exit_groups.len() <= 2,
        "one exit (limits, then market for what they left): {exit_groups:?}"
    );
    // The shorts were bought back before the wings were sold.
    let ex = executions(&b).await;
    let closing = &ex[opened..];
    let first_sell = closing.iter().position(|e| e.side == Side::Sell).unwrap();
    assert_eq!(
        closing[..first_sell]
            .iter()
            .filter(|e| e.side == Side::Buy)
            .map(|e| e.qty)
            .sum::<i64>(),
        1,
        "the short bought back first: {closing:#?}"
    );
    let audits = audits(&j);
    assert!(
        audits
            .iter()
            .any(|a| a.reason.contains(&format!("entry-stop:{}", p.id))),
        "the audit names the attached stop: {audits:#?}"
    );
    // Nothing more: the strategy is gone and its exit ends.
    sleep_ms(70_000).await;
    assert!(g.attached_exits().is_empty(), "{:?}", g.attached_exits());
    assert_eq!(executions(&b).await.len(), ex.len(), "the stop exits once");
    g.shutdown().await;
}
