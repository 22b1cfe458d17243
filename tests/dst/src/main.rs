//! `tradeguard-dst`: the soak runner. `--seed S` replays one seed (printing its scenario and,
//! on failure, the report); `--seeds N [--from S]` runs N seeds, prints every failure and
//! reports seeds/s and the failing seeds; `--from random` starts at a fresh random seed (printed
//! first, so any failure replays), so every soak explores seeds no earlier one ran. `--ib` runs
//! the IB simulation instead (the real IB
//! adapter against the fake TWS on loopback, real time; `tradeguard_dst::ib`). Exit code 1 if
//! any seed failed, 2 on bad arguments.

use std::process::ExitCode;
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
enum ArgError {
    #[error("unknown argument {0:?}")]
    Unknown(String),
    #[error("{0} needs a number")]
    Missing(&'static str),
    #[error("{flag}: {value:?} is not a non-negative integer")]
    NotANumber { flag: &'static str, value: String },
}

struct Args {
    from: u64,
    count: u64,
    ib: bool,
}

fn number(flag: &'static str, v: Option<String>) -> Result<u64, ArgError> {
    let v = v.ok_or(ArgError::Missing(flag))?;
    v.parse()
        .map_err(|_| ArgError::NotANumber { flag, value: v })
}

/// A start seed nobody is likely to have run: at or above 11,000 (0–10,999 is the soaked
/// range in the README), below 10^12, from the OS's randomness. Printed by the caller's report,
/// so a failure replays with `--from`.
fn random_start() -> u64 {
    use rand::Rng;
    rand::rng().random_range(11_000..1_000_000_000_000)
}

fn parse(mut it: impl Iterator<Item = String>) -> Result<Args, ArgError> {
    let mut a = Args {
        from: 0,
        count: 100,
        ib: false,
    };
    while let Some(x) = it.next() {
        match x.as_str() {
            "--seed" => {
                a.from = number("--seed", it.next())?;
                a.count = 1;
            }
            "--seeds" => a.count = number("--seeds", it.next())?,
            "--from" => {
                a.from = match it.next() {
                    Some(v) if v == "random" => random_start(),
                    v => number("--from", v)?,
                };
            }
            "--ib" => a.ib = true,
            _ => return Err(ArgError::Unknown(x)),
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    // DST_LOG=info (any tracing filter): the guard's log lines on stderr, stamped with the
    // virtual time's wall instant (replay one seed with it; a soak would drown in them).
    if let Ok(filter) = std::env::var("DST_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .init();
    }
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "tradeguard-dst: {e}\nusage: tradeguard-dst [--ib] [--seeds N] [--from S] | [--ib] --seed S"
            );
            return ExitCode::from(2);
        }
    };
    if args.count > 1 {
        println!(
            "{}soak: {} seeds from {} (replay one with --seed S; this range with --from {})",
            if args.ib { "IB " } else { "" },
            args.count,
            args.from,
            args.from
        );
    }
    if args.ib {
        return ib_soak(&args);
    }
    let t0 = Instant::now();
    let mut virtual_secs = 0u64;
    let mut crashes = 0usize;
    let mut failed: Vec<(u64, &'static str)> = Vec::new();
    for seed in args.from..args.from.saturating_add(args.count) {
        match tradeguard_dst::run_seed(seed) {
            Ok(r) => {
                virtual_secs += r.virtual_secs;
                crashes += r.crashes;
                if args.count == 1 {
                    println!(
                        "seed {seed}: ok, trace {:016x} ({} lines), {} groups, {} submitted, {} refused, {} crashes",
                        r.trace_hash, r.trace_lines, r.groups, r.submitted, r.refused, r.crashes
                    );
                }
            }
            Err(e) => {
                eprintln!("{e}");
                if let tradeguard_dst::DstError::Setup { .. } = e {
                    eprintln!("reproduce: {}", tradeguard_dst::repro_command(seed));
                }
                failed.push((seed, e.code()));
            }
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "soak: {} seeds from {} in {secs:.1} s = {:.2} seeds/s ({} virtual hours, {crashes} crashes); {} failed: {failed:?}",
        args.count,
        args.from,
        args.count as f64 / secs.max(1e-9),
        virtual_secs / 3600,
        failed.len()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The IB simulation soak: every failure printed with its replay command.
fn ib_soak(args: &Args) -> ExitCode {
    let t0 = Instant::now();
    let mut failed: Vec<(u64, &'static str)> = Vec::new();
    let mut orders = 0usize;
    for seed in args.from..args.from.saturating_add(args.count) {
        match tradeguard_dst::ib::run_ib_seed(seed) {
            Ok(r) => {
                orders += r.orders;
                if args.count == 1 {
                    println!(
                        "IB seed {seed}: ok, close {:?}, {} orders, {:.1} s",
                        r.phase,
                        r.orders,
                        r.took.as_secs_f64()
                    );
                }
            }
            Err(f) => {
                eprintln!("{f}");
                failed.push((seed, f.invariant));
            }
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "IB soak: {} seeds from {} in {secs:.1} s ({orders} orders at the fake gateway); {} failed: {failed:?}",
        args.count,
        args.from,
        failed.len()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
