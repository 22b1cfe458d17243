//! The `tradeguard` command. Each subcommand lives in its own module and maps one JSON case to one
//! JSON answer; arrays in give arrays out. The whole output is built before anything is printed,
//! so bad input (exit code 2) never leaves half an answer on stdout.

mod error;
mod guard;
mod input;
mod margin;
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
    /// Headless guard: enforcement, reconciliation and status without a window.
    Guard(guard::GuardArgs),
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
    if let Command::Guard(args) = cli.command {
        return guard::run(args);
    }
    let result = match &cli.command {
        Command::Price { input } => run(input, price::price_case),
        Command::Margin { input } => run(input, margin::margin_case),
        Command::Stress { input } => run(input, stress::stress_case),
        // Handled above; the guard never reaches here.
        Command::Guard(_) => return ExitCode::SUCCESS,
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
