//! The `tradeguard` command. Each subcommand lives in its own module and maps one JSON case to one
//! JSON answer; arrays in give arrays out. The whole output is built before anything is printed,
//! so bad input (exit code 2) never leaves half an answer on stdout.

mod error;
mod guard;
mod input;
mod margin;
mod preview;
mod price;
mod stress;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::Value;

use crate::error::CliError;
use crate::input::{Fields, case_ref, parse_cases, read_input};

#[derive(Parser)]
#[command(
    name = "tradeguard",
    version,
    about = "Tradeguard pricing, margin and stress tools"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Price and Greeks (European BSM/Black-76, American QD+ fixed point, cash dividends, IV).
    Price {
        /// JSON file with one case or an array of cases; `-` reads stdin.
        input: String,
    },
    /// Reg T strategy-based margin with the pairing that gives the lowest requirement.
    Margin {
        /// JSON file with one position or an array of positions; `-` reads stdin.
        input: String,
    },
    /// Worst-case stress grid (price moves x IV multipliers x spread widening).
    Stress {
        /// JSON file with one book or an array of books; `-` reads stdin.
        input: String,
    },
    /// Orders: `order preview FILE|-` shows what an order would do before anything is sent.
    Order {
        #[command(subcommand)]
        action: OrderCommand,
    },
    /// Headless guard: enforcement, reconciliation and status without a window.
    Guard(Box<guard::GuardArgs>),
    /// Stores a venue's secret in the OS keychain, read from standard input (never an
    /// argument: arguments show in the process list and the shell's history).
    Secret {
        /// The venue: `tradier` (its access token) or `projectx` (the API key).
        #[arg(value_parser = ["tradier", "projectx"])]
        venue: String,
        /// The venue account the secret is for (ProjectX: the user name).
        #[arg(long)]
        account: String,
    },
}

#[derive(Subcommand)]
enum OrderCommand {
    /// Payoff, maximum profit and loss, breakevens, probability of profit, Reg T margin and the
    /// pre-trade stress verdict of an order on a book (nothing is sent).
    Preview {
        /// JSON file with one order or an array of orders; `-` reads stdin.
        input: String,
    },
}

/// `tradeguard secret`: the first line of standard input into the keychain.
fn store_secret(venue: &str, account: &str) -> ExitCode {
    let account = account.trim();
    let ok = |c: char| c.is_ascii_alphanumeric() || (venue == "projectx" && "-_.@".contains(c));
    if account.is_empty() || !account.chars().all(ok) {
        eprintln!("tradeguard secret: --account {account:?} is not an account number or user name");
        return ExitCode::from(2);
    }
    let mut line = String::new();
    if let Err(e) = std::io::stdin().read_line(&mut line) {
        eprintln!("tradeguard secret: standard input unreadable: {e}");
        return ExitCode::from(2);
    }
    let secret = line.trim();
    if secret.is_empty() {
        eprintln!("tradeguard secret: nothing on standard input; nothing stored");
        return ExitCode::from(2);
    }
    match tradeguard_notify::set_venue_secret(venue, account, secret) {
        Ok(()) => {
            println!(
                "stored the {venue} secret of {account} in the OS keychain ({})",
                tradeguard_notify::venue_key(venue, account)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tradeguard secret: error [{}]: {e}", e.code());
            ExitCode::from(2)
        }
    }
}

type Handler = fn(&Fields<'_>) -> Result<Value, CliError>;

/// Run `handler` on every case of the input and render the whole answer.
fn run(path: &str, handler: Handler) -> Result<String, CliError> {
    let text = read_input(path)?;
    let cases = parse_cases(&text)?;
    let mut answers = Vec::with_capacity(cases.items.len());
    for (index, obj) in cases.items.iter().enumerate() {
        let case = case_ref(index, obj);
        answers.push(handler(&Fields::new(&case, obj))?);
    }
    let out = if cases.was_array {
        Value::Array(answers)
    } else {
        answers.pop().unwrap_or(Value::Null)
    };
    let mut s = serde_json::to_string_pretty(&out)?;
    s.push('\n');
    Ok(s)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Guard(args) => return guard::run(*args),
        Command::Secret { venue, account } => return store_secret(&venue, &account),
        _ => {}
    }
    let result = match &cli.command {
        Command::Price { input } => run(input, price::price_case),
        Command::Margin { input } => run(input, margin::margin_case),
        Command::Stress { input } => run(input, stress::stress_case),
        Command::Order {
            action: OrderCommand::Preview { input },
        } => run(input, preview::preview_case),
        // Handled above; neither reaches here.
        Command::Guard(_) | Command::Secret { .. } => return ExitCode::SUCCESS,
    };
    let written = result.and_then(|out| {
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(out.as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(CliError::Write)
    });
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tradeguard: error [{}]: {e}", e.code());
            ExitCode::from(2)
        }
    }
}
