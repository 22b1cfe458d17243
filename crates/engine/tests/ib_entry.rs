//! Opening an iron condor through the Interactive Brokers adapter (the real `ibapi` client
//! against the fake TWS, which fills only what the test fills): the preview prices the legs
//! from the gateway's quotes and plans the wings first; placing it sends the two wings as limit
//! orders at their asks and nothing else; the shorts go only once both wings have filled (one
//! of them in two partial fills); the account ends holding the condor. The IB adapter lists no
//! chain yet, and says so by its typed error.

mod common;
use common::{guard_on_ib, ib_broker, ib_quote as quote, until};
use std::time::Duration;
use tradeguard_engine::enforce::{EnforceConfig, NoRules};
use tradeguard_engine::entry::{LimitPrice, Template, Ticket, TicketLeg};
use tradeguard_ibkr::fake_tws::{FakeTws, PlacedOrder};
use tradeguard_model::{AccountId, Instrument, OptionContract, Price, Right, Side, Tif};

const ACCOUNT: &str = "DU-ENTRY";

fn contract(conid: i32, right: &str, strike: f64) -> tradeguard_ibkr::fake_tws::proto::Contract {
    FakeTws::option(conid, "SPY", "20301220", right, strike)
}

fn leg(right: Right, strike: i64, side: Side) -> TicketLeg {
    TicketLeg {
        instrument: Instrument::Option(OptionContract::equity(
            "SPY",
            chrono::NaiveDate::from_ymd_opt(2030, 12, 20).unwrap(),
            right,
            Price::from_units(strike).unwrap(),
        )),
        side,
        ratio: 1,
    }
}

fn placed_for(f: &FakeTws, right: &str, strike: f64) -> Vec<PlacedOrder> {
    f.placed()
        .into_iter()
        .filter(|p| {
            p.contract.strike == Some(strike)
                && p.contract.right.as_deref() == Some(right)
                && !p.order.what_if.unwrap_or(false)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_iron_condor_opens_on_ib_wings_first_partial_fills_included() {
    let f = FakeTws::start_for(ACCOUNT).await.unwrap();
    let book = [
        // Four years out with SPY at 500: prices inside the no-arbitrage bounds (the preview
        // implies each leg's vol from its mid).
        (contract(51, "P", 480.0), 36.0),
        (contract(52, "P", 490.0), 40.0),
        (contract(53, "C", 510.0), 76.0),
        (contract(54, "C", 520.0), 71.0),
    ];
    for (c, mid) in &book {
        f.add_contract(c.clone());
        f.set_quote(c.clone(), quote(*mid));
    }
    for (tag, v) in [
        ("NetLiquidation", "250000"),
        ("MaintMarginReq", "0"),
        ("InitMarginReq", "0"),
        ("ExcessLiquidity", "250000"),
        ("AvailableFunds", "250000"),
        ("BuyingPower", "1000000"),
    ] {
        f.set_account_value(tag, v);
    }
    // The underlying's price prices the legs (the preview subscribes it too).
    f.add_contract(FakeTws::stock(50, "SPY"));
    f.set_quote(FakeTws::stock(50, "SPY"), quote(500.0));
    let g = guard_on_ib(
        ib_broker(f.port(), 9, ACCOUNT),
        &[("SPY", "500")],
        EnforceConfig::default(),
        Box::new(NoRules),
    )
    .await;
    let ticket = Ticket {
        account: AccountId::new(ACCOUNT),
        template: Template::IronCondor,
        legs: vec![
            leg(Right::Put, 480, Side::Buy),
            leg(Right::Put, 490, Side::Sell),
            leg(Right::Call, 510, Side::Sell),
            leg(Right::Call, 520, Side::Buy),
        ],
        quantity: 2,
        limit: LimitPrice::Natural,
        tif: Tif::Day,
        exits: Default::default(),
    };
    // The first preview subscribes the legs; the gateway's quotes follow.
    let mut preview = None;
    for _ in 0..150 {
        match g.preview_entry(ticket.clone()).await {
            // Until the account's first update, the gate cannot weigh the stress.
            Ok(p) if p.refusal == Some(tradeguard_engine::GateRefusal::NoAccount) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Ok(p) => {
                preview = Some(p);
                break;
            }
            Err(e) if e.code() == "entry.no_market" => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("{e} ({})", e.code()),
        }
    }
    let p = preview.expect("the legs are quoted");
    // quote(mid) is 0.05 either side: a credit of (39.95 + 75.95) − (36.05 + 71.05) = 8.80.
    assert_eq!(p.net_price, Price::parse("-8.80").unwrap());
    assert_eq!(p.refusal, None, "{:?}", p.refusal);
    assert!(f.placed().iter().all(|o| o.order.what_if.unwrap_or(false)));
    assert_eq!(
        g.option_chain("SPY", None, 10).await.unwrap_err().code(),
        "broker.unsupported"
    );

    g.place_entry(&p.id).await.expect("placed");
    let p480 = until("the put wing", || {
        placed_for(&f, "P", 480.0).into_iter().next()
    })
    .await;
    let c520 = until("the call wing", || {
        placed_for(&f, "C", 520.0).into_iter().next()
    })
    .await;
    for (w, ask) in [(&p480, 36.05), (&c520, 71.05)] {
        assert_eq!(w.order.action.as_deref(), Some("BUY"));
        assert_eq!(w.order.order_type.as_deref(), Some("LMT"));
        assert_eq!(w.order.lmt_price, Some(ask));
        assert_eq!(w.order.total_quantity.as_deref(), Some("2"));
    }
    // One wing fills in two parts; the shorts wait for all of it.
    assert!(f.fill(p480.order_id, 2.0, 36.05));
    assert!(f.fill(c520.order_id, 1.0, 71.05));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        placed_for(&f, "P", 490.0).is_empty() && placed_for(&f, "C", 510.0).is_empty(),
        "no short while a wing is partly filled"
    );
    assert!(f.fill(c520.order_id, 1.0, 71.05));
    let p490 = until("the put sold", || {
        placed_for(&f, "P", 490.0).into_iter().next()
    })
    .await;
    let c510 = until("the call sold", || {
        placed_for(&f, "C", 510.0).into_iter().next()
    })
    .await;
    for (s, bid) in [(&p490, 39.95), (&c510, 75.95)] {
        assert_eq!(s.order.action.as_deref(), Some("SELL"));
        assert_eq!(s.order.lmt_price, Some(bid));
        assert_eq!(s.order.total_quantity.as_deref(), Some("2"));
        assert!(f.fill(s.order_id, 2.0, bid));
    }
    until("the condor held at the gateway", || {
        let held: Vec<(Option<f64>, f64)> = f
            .positions()
            .into_iter()
            .filter(|p| p.0 == ACCOUNT && p.2 != 0.0)
            .map(|p| (p.1.strike, p.2))
            .collect();
        let want = [(480.0, 2.0), (490.0, -2.0), (510.0, -2.0), (520.0, 2.0)];
        want.iter()
            .all(|(k, q)| held.contains(&(Some(*k), *q)))
            .then_some(held)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ours: Vec<_> = f
        .placed()
        .into_iter()
        .filter(|p| !p.order.what_if.unwrap_or(false))
        .collect();
    assert_eq!(ours.len(), 4, "four orders, nothing more: {ours:#?}");
    g.shutdown().await;
}
