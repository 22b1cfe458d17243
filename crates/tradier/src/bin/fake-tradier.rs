//! A fake Tradier on this machine, holding seed 000's iron condor (SPY 435/440/460/465 ×2):
//! for trying `tradeguard guard --broker tradier` without an account.
//!
//! `fake-tradier [PORT]` prints the API URL, the account and the token, then serves until
//! Ctrl-C. Orders that are marketable against its quotes fill at once.

use tradeguard_tradier::fake::{FakeTradier, FakeTradierConfig};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let port = std::env::args().nth(1).unwrap_or_else(|| "0".into());
    let f = match FakeTradier::start_on(FakeTradierConfig::default(), &format!("127.0.0.1:{port}"))
        .await
    {
        Ok(f) => f,
        Err(e) => {
            eprintln!("fake-tradier: cannot listen on port {port}: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    f.set_quote("SPY", 449.95, 450.05);
    for (s, b, a, qty, cost) in [
        ("SPY301220P00435000", 1.4, 1.6, 2, 300.0),
        ("SPY301220P00440000", 2.9, 3.1, -2, -600.0),
        ("SPY301220C00460000", 2.4, 2.6, -2, -500.0),
        ("SPY301220C00465000", 1.1, 1.3, 2, 240.0),
    ] {
        f.set_quote(s, b, a);
        f.set_position(s, qty, cost);
    }
    println!("fake Tradier: {}", f.api_url());
    println!("account {} token {}", f.account(), f.token());
    let _ = tokio::signal::ctrl_c().await;
    std::process::ExitCode::SUCCESS
}
