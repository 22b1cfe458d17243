//! Diagnostics export: one text file for a bug report. It is built from an allowlist: only the
//! fields below are written, each chosen on purpose — versions and OS, the locations (the home
//! directory shown as `~`), the settings values that are not secrets, the risk rules' counts and
//! kinds (never their text: rules may be scoped to accounts), guard health with the last
//! reconciliation, the codes of the recent alerts (never their messages) — and the recent log,
//! whose lines pass through [`Redactor`] first: account ids (IB's `U1234567`/`DU1234567` shapes,
//! the configured account and every account id the app knows), the home directory and anything
//! that looks like a token, secret or password value are replaced.

use crate::error::IpcError;
use crate::paths::AppPaths;
use crate::view::{AlertView, GuardView, SeverityView};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// How many log lines the export carries.
pub const LOG_LINES: usize = 2000;

/// What replaces an account id.
pub const ACCOUNT: &str = "<account>";
/// What replaces a secret value or a token.
pub const SECRET: &str = "<redacted>";

/// Key names whose values are secrets (case-insensitive, anywhere in the key: `ib_account`,
/// `X-Api-Key`, `password`...). Account ids are not secrets to the broker but are to a bug
/// report.
const SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "credential",
    "authorization",
    "cookie",
    "private_key",
    "account",
    "acct",
];

/// A run of token characters this long or longer, with letters and digits, is a token.
const TOKEN_MIN: usize = 32;

/// Shortest known account id replaced as such (shorter strings are not identifying and would
/// garble the log).
const ACCOUNT_MIN: usize = 3;

/// Redacts log lines and free text (task failures, error messages).
#[derive(Debug, Clone)]
pub struct Redactor {
    /// Home directory as text, without a trailing separator.
    home: Option<String>,
    /// Known account ids, longest first (a prefix never hides a longer id).
    accounts: Vec<String>,
}

impl Redactor {
    pub fn new(home: Option<&Path>, accounts: impl IntoIterator<Item = String>) -> Self {
        let home = home
            .map(|h| h.display().to_string().trim_end_matches('/').to_owned())
            // The root directory as home would turn every path into `~`.
            .filter(|h| !h.is_empty());
        let mut accounts: Vec<String> = accounts
            .into_iter()
            .map(|a| a.trim().to_owned())
            .filter(|a| a.len() >= ACCOUNT_MIN)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        accounts.sort_by_key(|a| std::cmp::Reverse(a.len()));
        Self { home, accounts }
    }

    /// `text` with secret values, account ids, the home directory and tokens replaced.
    pub fn redact(&self, text: &str) -> String {
        let mut s = redact_secret_values(text);
        for a in &self.accounts {
            s = replace_word(&s, a, ACCOUNT);
        }
        if let Some(h) = &self.home {
            s = replace_path_prefix(&s, h, "~");
        }
        for base in USER_DIRS {
            s = redact_user_dirs(&s, base);
        }
        redact_tokens(&s)
    }
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Replaces every occurrence of `word` not inside a longer word.
fn replace_word(s: &str, word: &str, with: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(word) {
        let before = rest[..i].chars().next_back();
        let after = rest[i + word.len()..].chars().next();
        out.push_str(&rest[..i]);
        if before.is_some_and(is_word) || after.is_some_and(is_word) {
            out.push_str(word);
        } else {
            out.push_str(with);
        }
        rest = &rest[i + word.len()..];
    }
    out.push_str(rest);
    out
}

/// Where other users' home directories live: their names are replaced too.
const USER_DIRS: &[&str] = &["/home/", "/Users/"];

/// `/home/NAME` → `/home/<user>` (someone else's home, or this user's under another path).
fn redact_user_dirs(s: &str, base: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(base) {
        let after = &rest[i + base.len()..];
        let len = after
            .find(|c: char| {
                c == '/' || c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ';' | ')')
            })
            .unwrap_or(after.len());
        out.push_str(&rest[..i + base.len()]);
        if len > 0 {
            out.push_str("<user>");
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

/// Replaces `prefix` where it is a whole path component sequence (followed by `/`, the end or
/// a character that cannot continue a file name).
fn replace_path_prefix(s: &str, prefix: &str, with: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(prefix) {
        let after = rest[i + prefix.len()..].chars().next();
        out.push_str(&rest[..i]);
        if after.is_none_or(|c| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))) {
            out.push_str(with);
        } else {
            out.push_str(prefix);
        }
        rest = &rest[i + prefix.len()..];
    }
    out.push_str(rest);
    out
}

/// Replaces the value of every `key=value`, `key: value`, `"key":"value"` whose key names a
/// secret ([`SECRET_KEYS`]).
fn redact_secret_values(s: &str) -> String {
    // Byte offsets: a key is ASCII, so a match (and everything cut at one) is on a character
    // boundary whatever the text around it.
    let lower = s.to_ascii_lowercase();
    let lower = lower.as_bytes();
    let bytes = s.as_bytes();
    let key_char = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.');
    let mut out = String::with_capacity(s.len());
    let mut copied = 0;
    let mut i = 0;
    while i < s.len() {
        let Some(k) = SECRET_KEYS
            .iter()
            .filter(|k| lower[i..].starts_with(k.as_bytes()))
            .map(|k| k.len())
            .max()
        else {
            i += 1;
            continue;
        };
        // The whole key around the match.
        let mut end = i + k;
        while end < bytes.len() && key_char(bytes[end]) {
            end += 1;
        }
        let mut j = end;
        if j < bytes.len() && matches!(bytes[j], b'"' | b'\'') {
            j += 1;
        }
        while j < bytes.len() && bytes[j] == b' ' {
            j += 1;
        }
        if j >= bytes.len() || !matches!(bytes[j], b'=' | b':') {
            i = end;
            continue;
        }
        j += 1;
        while j < bytes.len() && bytes[j] == b' ' {
            j += 1;
        }
        let (from, to) = value_span(s, j);
        if from == to {
            i = end;
            continue;
        }
        out.push_str(&s[copied..from]);
        out.push_str(SECRET);
        copied = to;
        i = to;
    }
    out.push_str(&s[copied..]);
    out
}

/// The value starting at `at`: a quoted string (without its quotes), else up to a space or a
/// separator; a `Bearer`/`Basic` scheme takes the word after it too.
fn value_span(s: &str, at: usize) -> (usize, usize) {
    let rest = &s[at..];
    if let Some(q) = rest.chars().next().filter(|c| matches!(c, '"' | '\'')) {
        let body = &rest[1..];
        let len = body.find(q).unwrap_or(body.len());
        return (at + 1, at + 1 + len);
    }
    let stop = |c: char| c.is_whitespace() || matches!(c, ',' | ';' | ')' | '}' | ']');
    let mut len = rest.find(stop).unwrap_or(rest.len());
    let word = &rest[..len];
    if word.eq_ignore_ascii_case("bearer") || word.eq_ignore_ascii_case("basic") {
        let after = &rest[len..];
        let spaces = after.len() - after.trim_start().len();
        let next = after.trim_start();
        len += spaces + next.find(stop).unwrap_or(next.len());
    }
    (at, at + len)
}

/// IB's account id shapes: `U`, `F` or `I` (individual, advisor, institution), `D` first on
/// paper accounts, then at least five digits.
fn is_ib_account(t: &str) -> bool {
    let t = t.strip_prefix('D').unwrap_or(t);
    let mut c = t.chars();
    matches!(c.next(), Some('U' | 'F' | 'I'))
        && c.as_str().len() >= 5
        && c.as_str().chars().all(|c| c.is_ascii_digit())
}

/// Replaces IB account ids and long tokens (at least [`TOKEN_MIN`] characters of
/// `[A-Za-z0-9_+]` mixing letters and digits).
fn redact_tokens(s: &str) -> String {
    let token_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '+');
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find(token_char) {
        out.push_str(&rest[..start]);
        let t = &rest[start..];
        let len = t.find(|c: char| !token_char(c)).unwrap_or(t.len());
        let tok = &t[..len];
        if is_ib_account(tok) {
            out.push_str(ACCOUNT);
        } else if tok.len() >= TOKEN_MIN
            && tok.chars().any(|c| c.is_ascii_digit())
            && tok.chars().any(|c| c.is_ascii_alphabetic())
        {
            out.push_str(SECRET);
        } else {
            out.push_str(tok);
        }
        rest = &t[len..];
    }
    out.push_str(rest);
    out
}

/// What goes into the report besides the files it reads itself.
pub struct Inputs<'a> {
    pub paths: &'a AppPaths,
    pub version: &'a str,
    /// Guard health, or why there is none.
    pub guard: Result<GuardView, IpcError>,
    /// The recent alerts (only their codes and severities are exported), or why not readable.
    pub alerts: Result<Vec<AlertView>, IpcError>,
    /// Every account id the app knows (venue, positions, database): redacted wherever it shows.
    pub accounts: Vec<String>,
    /// The user's home directory (shown as `~`).
    pub home: Option<PathBuf>,
    /// Wall-clock time of the export (RFC 3339).
    pub now: &'a str,
}

/// The report text.
pub fn report(i: &Inputs<'_>) -> String {
    let settings = crate::settings::Settings::load(&i.paths.settings_file());
    let mut accounts = i.accounts.clone();
    if let Ok(s) = &settings {
        accounts.push(s.venue.ib_account.clone());
        accounts.push(s.venue.tradier_account.clone());
        accounts.push(s.venue.projectx_account.clone());
        accounts.push(s.venue.projectx_user.clone());
    }
    let rules_text = std::fs::read_to_string(i.paths.rules_file());
    let rules = rules_text
        .as_ref()
        .map(|t| tradeguard_engine::rules::RiskConfig::parse(t, &i.paths.rules_file()));
    if let Ok(Ok(c)) = &rules {
        accounts.extend(
            c.rules
                .iter()
                .flat_map(|r| r.common.accounts.iter().cloned()),
        );
    }
    if let Ok(alerts) = &i.alerts {
        accounts.extend(alerts.iter().filter_map(|a| a.account.clone()));
    }
    if let Ok(g) = &i.guard {
        accounts.extend(g.forced_unwind.iter().cloned());
        accounts.extend(g.emergency_closes.iter().map(|c| c.account.clone()));
    }
    let r = Redactor::new(i.home.as_deref(), accounts);
    let path = |p: &Path| r.redact(&p.display().to_string());

    let mut out = String::new();
    let _ = writeln!(out, "# Tradeguard diagnostics\n");
    let _ = writeln!(
        out,
        "Chosen fields only; the log lines have account ids, the home directory (~) and secret values replaced.\n"
    );
    let _ = writeln!(out, "exported: {}", i.now);
    let _ = writeln!(out, "version: {}", i.version);
    let _ = writeln!(out, "os: {}", r.redact(&os_release()));
    let _ = writeln!(out, "arch: {}", std::env::consts::ARCH);

    let _ = writeln!(out, "\n## Locations ({})", i.paths.source);
    let _ = writeln!(out, "data: {}", path(&i.paths.data_dir));
    let _ = writeln!(out, "config: {}", path(&i.paths.config_dir));
    let _ = writeln!(out, "logs: {}", path(&i.paths.log_dir));

    let _ = writeln!(out, "\n## Settings");
    match &settings {
        Ok(s) => {
            let v = &s.venue;
            let _ = writeln!(out, "venue: {}", venue_kind(v.kind));
            let _ = writeln!(out, "ib_host: {}", host_kind(&v.ib_host));
            let _ = writeln!(out, "ib_port: {}", v.ib_port);
            let _ = writeln!(out, "ib_client_id: {}", v.ib_client_id);
            let _ = writeln!(
                out,
                "ib_account: {}",
                if v.ib_account.trim().is_empty() {
                    "not set (the first managed account)"
                } else {
                    "set"
                }
            );
            let _ = writeln!(
                out,
                "tradier: {:?}, account {}, {}",
                v.tradier_env,
                if v.tradier_account.trim().is_empty() {
                    "not set"
                } else {
                    "set"
                },
                if v.tradier_url.trim().is_empty() {
                    "the environment's API"
                } else {
                    "a custom API URL"
                }
            );
            let _ = writeln!(
                out,
                "projectx: user {}, account {}, {}",
                if v.projectx_user.trim().is_empty() {
                    "not set"
                } else {
                    "set"
                },
                if v.projectx_account.trim().is_empty() {
                    "not set"
                } else {
                    "set"
                },
                if v.projectx_api.trim().is_empty() {
                    "TopstepX"
                } else {
                    "a custom firm URL"
                }
            );
            let _ = writeln!(out, "log_level: {}", s.log_level.as_filter());
            let _ = writeln!(out, "start_at_login: {}", s.start_at_login);
        }
        Err(e) => {
            let _ = writeln!(out, "not usable ({}): running on the defaults", e.reason);
        }
    }

    let _ = writeln!(out, "\n## Risk rules");
    match &rules {
        Err(e) => {
            let _ = writeln!(out, "not readable ({:?})", e.kind());
        }
        Ok(Err(e)) => {
            let line = e.line().map(|l| format!(", line {l}")).unwrap_or_default();
            let _ = writeln!(out, "invalid ({}{line})", e.code());
        }
        Ok(Ok(c)) => {
            let enabled: Vec<_> = c.enabled_rules().collect();
            let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
            for rule in &enabled {
                *kinds.entry(rule.kind.name()).or_default() += 1;
            }
            let _ = writeln!(out, "valid");
            let _ = writeln!(out, "dry_run: {}", c.dry_run);
            let _ = writeln!(
                out,
                "rules: {} enabled of {}; {} in their own dry-run; {} scoped to accounts; {} to underlyings",
                enabled.len(),
                c.rules.len(),
                enabled.iter().filter(|r| r.common.dry_run).count(),
                enabled
                    .iter()
                    .filter(|r| !r.common.accounts.is_empty())
                    .count(),
                enabled
                    .iter()
                    .filter(|r| !r.common.underlyings.is_empty())
                    .count(),
            );
            let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
            let _ = writeln!(out, "kinds: {}", kinds.join(", "));
            let _ = writeln!(
                out,
                "account_stale_after_secs: {}",
                c.account_stale_after_secs
            );
        }
    }

    let _ = writeln!(out, "\n## Guard health and last reconciliation");
    match &i.guard {
        Ok(g) => guard_section(&mut out, g, &r),
        Err(e) => {
            let _ = writeln!(out, "no guard ({}): {}", e.reason, r.redact(&e.message));
        }
    }

    let _ = writeln!(out, "\n## Recent alert codes");
    match &i.alerts {
        Ok(list) if list.is_empty() => {
            let _ = writeln!(out, "(none)");
        }
        Ok(list) => {
            let mut codes: BTreeMap<(&str, &str), usize> = BTreeMap::new();
            for a in list {
                *codes
                    .entry((a.code.as_str(), severity(a.severity)))
                    .or_default() += 1;
            }
            for ((code, sev), n) in codes {
                let _ = writeln!(out, "{code} ({sev}) x{n}");
            }
        }
        Err(e) => {
            let _ = writeln!(out, "not readable ({})", e.reason);
        }
    }

    let _ = writeln!(out, "\n## Recent log (last {LOG_LINES} lines, redacted)");
    match crate::logging::tail(&i.paths.log_dir, LOG_LINES) {
        Ok(lines) if lines.is_empty() => {
            let _ = writeln!(out, "(no log file yet)");
        }
        Ok(lines) => {
            for l in lines {
                let _ = writeln!(out, "{}", r.redact(&l));
            }
        }
        Err(e) => {
            let _ = writeln!(out, "(log not readable: {:?})", e.kind());
        }
    }
    out
}

fn guard_section(out: &mut String, g: &GuardView, r: &Redactor) {
    let _ = writeln!(out, "dry_run: {}", g.dry_run);
    let _ = writeln!(
        out,
        "rules: {}; evaluated {}, fired {}, dry-run decisions {}",
        g.rules, g.rules_evaluated, g.decisions_fired, g.dry_run_decisions
    );
    let _ = writeln!(
        out,
        "last reconciliation: {} ({} repaired)",
        g.last_reconciliation.as_deref().unwrap_or("none yet"),
        g.last_reconciliation_repairs
    );
    let _ = writeln!(out, "needs manual action: {}", g.needs_manual_action);
    let _ = writeln!(out, "forced unwind: {} account(s)", g.forced_unwind.len());
    // The state only: its reason names the account (the audit log keeps it).
    let _ = writeln!(out, "trading: {}", g.trading_state);
    let at_broker = g.protections.iter().filter(|p| p.at_broker).count();
    let _ = writeln!(
        out,
        "protections: {} local, {at_broker} at the broker",
        g.protections.len() - at_broker
    );
    let mut phases: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &g.emergency_closes {
        *phases.entry(c.phase.as_str()).or_default() += 1;
    }
    let phases: Vec<String> = phases.iter().map(|(p, n)| format!("{p} {n}")).collect();
    let _ = writeln!(
        out,
        "emergency closes: {}",
        if phases.is_empty() {
            "none".to_owned()
        } else {
            phases.join(", ")
        }
    );
    for t in &g.tasks {
        let since = t.since_last_secs.map_or_else(
            || "no beat yet".to_owned(),
            |s| format!("last beat {s:.1} s ago"),
        );
        let _ = write!(
            out,
            "task {}: {}, {since}, {} restart(s)",
            t.name,
            if t.running { "running" } else { "restarting" },
            t.restarts
        );
        if let Some(f) = &t.last_failure {
            let _ = write!(out, "; last failure: {}", r.redact(f));
        }
        let _ = writeln!(out);
    }
}

fn venue_kind(k: crate::settings::VenueKind) -> &'static str {
    match k {
        crate::settings::VenueKind::Sim => "sim",
        crate::settings::VenueKind::Ib => "ib",
        crate::settings::VenueKind::Tradier => "tradier",
        crate::settings::VenueKind::Projectx => "projectx",
    }
}

/// Where IB Gateway/TWS runs, without naming the host.
fn host_kind(host: &str) -> &'static str {
    let h = host.trim();
    let local = h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if local {
        "this machine"
    } else {
        "another machine"
    }
}

fn severity(s: SeverityView) -> &'static str {
    match s {
        SeverityView::Info => "Info",
        SeverityView::Warning => "Warning",
        SeverityView::Critical => "Critical",
    }
}

fn os_release() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| std::env::consts::OS.to_owned())
}

/// Writes the report into `dir` as `tradeguard-diagnostics-<stamp>.txt`; returns its path.
pub fn write(dir: &Path, stamp: &str, text: &str) -> std::io::Result<PathBuf> {
    let dir = dir.join("diagnostics");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("tradeguard-diagnostics-{stamp}.txt"));
    std::fs::write(&path, text)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::{ProtectionView, TaskView};

    const HOME: &str = "/home/alice";
    const TOKEN: &str = "ghp_4f9Kx2LmQ8zR7tY1vB3nW6pC0dE5sA9hJ2kU";

    fn redactor() -> Redactor {
        Redactor::new(Some(Path::new(HOME)), vec!["SIMACCT42".to_owned()])
    }

    #[test]
    fn account_ids_home_and_secrets_are_replaced_and_the_rest_kept() {
        let r = redactor();
        let cases = [
            (
                "INFO tradeguard_app::venue: connected to IB address=127.0.0.1:4002 account=DU1234567",
                "INFO tradeguard_app::venue: connected to IB address=127.0.0.1:4002 account=<redacted>",
            ),
            (
                "position U7654321 SPY -2 and DF123456, F1234567",
                "position <account> SPY -2 and <account>, <account>",
            ),
            (
                "forced unwind of SIMACCT42 ON; SIMACCT421 is another word",
                "forced unwind of <account> ON; SIMACCT421 is another word",
            ),
            (
                "data=/home/alice/.local/share/dev.tradeguard.desktop logs /home/alice",
                "data=~/.local/share/dev.tradeguard.desktop logs ~",
            ),
            // Not this home (a longer name), and another user's: the names go too.
            (
                "/home/alicex/file and /Users/bob",
                "/home/<user>/file and /Users/<user>",
            ),
            ("/opt/tradeguard stays", "/opt/tradeguard stays"),
            (
                r#"{"password":"hunter2","api_key": "k-1", token=abc; Authorization: Bearer xyz.1 ok"#,
                r#"{"password":"<redacted>","api_key": "<redacted>", token=<redacted>; Authorization: <redacted> ok"#,
            ),
            (
                "pushed with ghp_4f9Kx2LmQ8zR7tY1vB3nW6pC0dE5sA9hJ2kU today",
                "pushed with <redacted> today",
            ),
            (
                "rules.config_rejected: risk.toml:5 max_contracts.max_contracts; 9 positions monitored",
                "rules.config_rejected: risk.toml:5 max_contracts.max_contracts; 9 positions monitored",
            ),
            (
                "SPY   250321P00590000 order I5 filled",
                "SPY   250321P00590000 order I5 filled",
            ),
            (
                "spy put ×1 for DU1234567 — ✓ token=é1 ünïcödé",
                "spy put ×1 for <account> — ✓ token=<redacted> ünïcödé",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(r.redact(input), want, "{input}");
        }
    }

    #[test]
    fn any_text_is_redacted_without_panicking() {
        let r = redactor();
        let text = "é token=ü password:\"×\" /home/é/x DU1234567é ×U1234567 Authorization: Bearer ✓ ghp_ü acct:×";
        for (i, _) in text.char_indices() {
            let _ = r.redact(&text[i..]);
            let _ = r.redact(&text[..i]);
        }
    }

    #[test]
    fn short_or_root_inputs_do_not_garble_the_text() {
        let r = Redactor::new(Some(Path::new("/")), vec!["IB".to_owned(), " ".to_owned()]);
        assert_eq!(r.redact("IB at /usr/lib"), "IB at /usr/lib");
    }

    fn guard_view(home: &str) -> GuardView {
        GuardView {
            rules_path: format!("{home}/.config/dev.tradeguard.desktop/risk.toml"),
            dry_run: true,
            sent_in_dry_run: vec!["emergency closes of strategies an assignment broke".to_owned()],
            rules: 2,
            rules_evaluated: 10,
            decisions_fired: 1,
            dry_run_decisions: 1,
            last_reconciliation: Some("2026-11-22T10:00:00+00:00".to_owned()),
            last_reconciliation_repairs: 0,
            needs_manual_action: 0,
            forced_unwind: vec!["U7654321".to_owned()],
            trading_state: "reducing".to_owned(),
            trading_why: "mll: at the floor (U7654321)".to_owned(),
            tasks: vec![TaskView {
                name: "reconciler".to_owned(),
                running: true,
                since_last_secs: Some(0.5),
                late_after_secs: Some(5.0),
                restarts: 1,
                last_failure: Some(format!(
                    "failed: broker error for DU1234567 reading {home}/x (ib.io)"
                )),
            }],
            protections: vec![
                ProtectionView {
                    name: "max_contracts".to_owned(),
                    at_broker: false,
                },
                ProtectionView {
                    name: "stop".to_owned(),
                    at_broker: true,
                },
            ],
            emergency_closes: Vec::new(),
        }
    }

    #[test]
    fn the_export_holds_the_chosen_fields_and_no_account_home_or_token() {
        let dir = tempfile::tempdir().unwrap();
        // The data directory lives in the home directory, as it does by default.
        let home = dir.path().join("home/alice");
        let paths = AppPaths::portable(home.join(".local/share/tg"), "--data-dir");
        paths.create_all().unwrap();
        let home_text = home.display().to_string();
        std::fs::write(
            paths.settings_file(),
            "logLevel = \"debug\"\n[venue]\nkind = \"ib\"\nibHost = \"127.0.0.1\"\nibPort = 4002\nibClientId = 7\nibAccount = \"DU9988776\"\n",
        )
        .unwrap();
        std::fs::write(
            paths.rules_file(),
            "dry_run = true\n\n[[max_contracts]]\nid = \"mc\"\nmax_contracts = 5\naccounts = [\"ACME-77\"]\n\n[[daily_loss]]\nid = \"dl\"\nmax_loss = \"1000\"\n",
        )
        .unwrap();
        std::fs::write(
            paths.log_dir.join("tradeguard.2026-11-22.log"),
            format!(
                "INFO locations data={home_text}/.local/share/tg\n\
                 INFO connected to IB account=DU9988776\n\
                 WARN reconciliation: DU9988776 SPY local 1 vs broker 2; also U5550001\n\
                 WARN rule mc for ACME-77 fired\n\
                 DEBUG gateway handshake password=hunter2 token: {TOKEN}\n\
                 INFO reconciliation done\n"
            ),
        )
        .unwrap();
        let alerts = vec![AlertView {
            id: 1,
            severity: SeverityView::Critical,
            code: "assignment.detected".to_owned(),
            message: "ASSIGNMENT on U5550001".to_owned(),
            account: Some("U5550001".to_owned()),
            created_at: "2026-11-22T10:00:00+00:00".to_owned(),
            acknowledged_at: None,
        }];
        let text = report(&Inputs {
            paths: &paths,
            version: "9.9.9",
            guard: Ok(guard_view(&home_text)),
            alerts: Ok(alerts),
            accounts: vec!["DU9988776".to_owned()],
            home: Some(home.clone()),
            now: "2026-11-22T10:00:01Z",
        });
        for want in [
            "version: 9.9.9",
            "data: ~/.local/share/tg",
            "venue: ib",
            "ib_host: this machine",
            "ib_port: 4002",
            "ib_client_id: 7",
            "ib_account: set",
            "log_level: debug",
            "dry_run: true",
            "rules: 2 enabled of 2; 0 in their own dry-run; 1 scoped to accounts",
            "kinds: daily_loss 1, max_contracts 1",
            "last reconciliation: 2026-11-22T10:00:00+00:00",
            "forced unwind: 1 account(s)",
            "trading: reducing",
            "protections: 1 local, 1 at the broker",
            "task reconciler: running, last beat 0.5 s ago, 1 restart(s); last failure: failed: broker error for <account> reading ~/x (ib.io)",
            "assignment.detected (Critical) x1",
            "INFO connected to IB account=<redacted>",
            "WARN reconciliation: <account> SPY local 1 vs broker 2; also <account>",
            "WARN rule mc for <account> fired",
            "DEBUG gateway handshake password=<redacted> token: <redacted>",
            "INFO reconciliation done",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        for never in [
            "DU9988776",
            "U5550001",
            "U7654321",
            "DU1234567",
            "ACME-77",
            "alice",
            home_text.as_str(),
            "hunter2",
            TOKEN,
            "ASSIGNMENT on",
        ] {
            assert!(!text.contains(never), "{never:?} exported in\n{text}");
        }
        let file = write(&paths.data_dir, "20261122T100001Z", &text).unwrap();
        assert_eq!(std::fs::read_to_string(file).unwrap(), text);
    }

    #[test]
    fn without_guard_settings_or_rules_the_export_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let paths = AppPaths::portable(dir.path().to_path_buf(), "--data-dir");
        paths.create_all().unwrap();
        std::fs::write(paths.settings_file(), "venue = 3\n").unwrap();
        std::fs::write(
            paths.rules_file(),
            "[[max_contracts]]\nmax_contracts = \"two\"\n",
        )
        .unwrap();
        let text = report(&Inputs {
            paths: &paths,
            version: "9.9.9",
            guard: Err(IpcError::new(
                crate::error::ErrorCode::Unavailable,
                "venue.ib_timeout",
                format!(
                    "no answer from IB for account DU1112223 ({})",
                    dir.path().display()
                ),
            )),
            alerts: Ok(Vec::new()),
            accounts: Vec::new(),
            home: Some(dir.path().to_path_buf()),
            now: "2026-11-22T10:00:01Z",
        });
        for want in [
            "not usable (settings.parse)",
            "invalid (config.",
            "no guard (venue.ib_timeout): no answer from IB for account <account> (~)",
            "(no log file yet)",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        assert!(!text.contains("DU1112223"), "{text}");
    }
}
