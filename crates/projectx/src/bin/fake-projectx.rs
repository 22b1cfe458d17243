//! A fake ProjectX gateway on this machine holding 5 MNQ: for trying
//! `tradeguard guard --broker projectx` without a prop-firm account.
//!
//! `fake-projectx [PORT]` prints its URL, user, API key and account, then serves until Ctrl-C.

use tradeguard_projectx::fake::{FakeProjectx, FakeProjectxConfig};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let port = std::env::args().nth(1).unwrap_or_else(|| "0".into());
    let f =
        match FakeProjectx::start_on(FakeProjectxConfig::default(), &format!("127.0.0.1:{port}"))
            .await
        {
            Ok(f) => f,
            Err(e) => {
                eprintln!("fake-projectx: cannot listen on port {port}: {e}");
                return std::process::ExitCode::from(2);
            }
        };
    f.set_quote("CON.F.US.MNQ.Z26", 21_000.0, 21_000.25);
    f.set_position("CON.F.US.MNQ.Z26", 5, 20_990.0);
    let c = f.config();
    println!("fake ProjectX: {}", f.url());
    println!("user {} key {} account {}", c.user, c.api_key, c.account);
    let _ = tokio::signal::ctrl_c().await;
    std::process::ExitCode::SUCCESS
}
