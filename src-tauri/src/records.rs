//! The audit log and the risk rules file across IPC: the audit screen (filter, CSV export) and
//! the rules screen (the file, inline validation errors, save that applies without restart).
//!
//! Going live is two steps: a save that would turn the global dry-run off (the file on disk is
//! in dry-run, or not valid) writes nothing and returns a [`GoLivePreview`] — which rules will
//! then send orders on their own — with a single-use id; only saving the same text again with
//! that id (within [`GO_LIVE_VALID_FOR`]) writes it.

use crate::error::{ErrorCode, IpcError};
use crate::paths::AppPaths;
use crate::state::AppState;
use serde::{Deserialize, Serialize};
use specta::Type;
use std::io::Write as _;
use tradeguard_store::AuditEntry;

/// How many entries the audit screen reads (newest first); the CSV export takes all that match.
const SCREEN_LIMIT: u32 = 500;
const EXPORT_LIMIT: u32 = 1_000_000;

/// Which audit entries.
#[derive(Debug, Clone, Default, Deserialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct AuditFilter {
    /// Only this kind (`rule_fired`, `order_sent`, ...); empty or absent = every kind.
    pub kind: Option<String>,
    /// Case-insensitive text in the subject or the reason.
    pub text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct AuditRow {
    #[specta(type = specta_typescript::Number)]
    pub id: i64,
    /// RFC 3339.
    pub at: String,
    pub kind: String,
    pub subject: String,
    pub reason: String,
    /// Structured details (JSON text).
    pub details: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct AuditPage {
    /// Newest first.
    pub rows: Vec<AuditRow>,
    /// Every kind there is, for the filter.
    pub kinds: Vec<String>,
    /// Entries in the whole log.
    #[specta(type = specta_typescript::Number)]
    pub total: i64,
    /// More entries match than the screen shows (export to see all).
    pub truncated: bool,
}

fn at(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(|| ms.to_string(), |t| t.to_rfc3339())
}

fn row(e: &AuditEntry) -> AuditRow {
    AuditRow {
        id: e.id,
        at: at(e.entry.ts_ms),
        kind: e.entry.kind.as_str().to_owned(),
        subject: e.entry.subject.clone(),
        reason: e.entry.reason.clone(),
        details: e.entry.details.to_string(),
    }
}

fn validate(f: &AuditFilter) -> Result<(), IpcError> {
    if let Some(k) = f.kind.as_deref().filter(|k| !k.is_empty())
        && tradeguard_store::AuditKind::parse(k).is_err()
    {
        return Err(IpcError::invalid_input(
            "audit.bad_kind",
            format!("{k:?} is not an audit kind"),
        ));
    }
    Ok(())
}

fn matches(f: &AuditFilter, e: &AuditEntry) -> bool {
    let kind_ok = f
        .kind
        .as_deref()
        .filter(|k| !k.is_empty())
        .is_none_or(|k| e.entry.kind.as_str() == k);
    let text_ok = f
        .text
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .is_none_or(|t| {
            let t = t.to_lowercase();
            e.entry.subject.to_lowercase().contains(&t)
                || e.entry.reason.to_lowercase().contains(&t)
        });
    kind_ok && text_ok
}

/// The newest audit entries that match, for the screen.
#[tauri::command]
#[specta::specta]
pub async fn audit_log(
    state: tauri::State<'_, AppState>,
    filter: AuditFilter,
) -> Result<AuditPage, IpcError> {
    validate(&filter)?;
    let store = state.store()?;
    crate::commands::read(store, move |s| {
        let r = s.reader();
        let total = r.audit_count()?;
        let all = r.audit_latest(EXPORT_LIMIT)?;
        let matching: Vec<_> = all.iter().filter(|e| matches(&filter, e)).collect();
        Ok(AuditPage {
            truncated: matching.len() > SCREEN_LIMIT as usize,
            rows: matching
                .into_iter()
                .take(SCREEN_LIMIT as usize)
                .map(row)
                .collect(),
            kinds: tradeguard_store::AuditKind::ALL
                .iter()
                .map(|k| k.as_str().to_owned())
                .collect(),
            total,
        })
    })
    .await
}

/// CSV with a header line; fields quoted when they hold a comma, a quote or a line break.
pub fn csv(rows: &[AuditRow]) -> String {
    fn field(s: &str) -> String {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_owned()
        }
    }
    let mut out = String::from("id,at,kind,subject,reason,details\n");
    for r in rows {
        let line = [
            r.id.to_string(),
            r.at.clone(),
            r.kind.clone(),
            r.subject.clone(),
            r.reason.clone(),
            r.details.clone(),
        ]
        .iter()
        .map(|f| field(f))
        .collect::<Vec<_>>()
        .join(",");
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Writes every matching entry (oldest first) to a CSV file in the data folder; returns its path.
#[tauri::command]
#[specta::specta]
pub async fn export_audit_csv(
    state: tauri::State<'_, AppState>,
    paths: tauri::State<'_, AppPaths>,
    filter: AuditFilter,
) -> Result<String, IpcError> {
    validate(&filter)?;
    let store = state.store()?;
    let dir = paths.data_dir.join("exports");
    crate::commands::read(store, move |s| {
        let mut rows: Vec<AuditRow> = s
            .reader()
            .audit_latest(EXPORT_LIMIT)?
            .iter()
            .filter(|e| matches(&filter, e))
            .map(row)
            .collect();
        rows.reverse();
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        let path = dir.join(format!("tradeguard-audit-{stamp}.csv"));
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            let mut f = std::fs::File::create(&path)?;
            f.write_all(csv(&rows).as_bytes())?;
            f.sync_all()
        };
        write().map_err(|e| {
            IpcError::new(
                ErrorCode::Storage,
                "audit.export",
                format!("could not write {}: {e}", path.display()),
            )
        })?;
        tracing::info!(path = %path.display(), rows = rows.len(), "audit log exported");
        Ok(path.display().to_string())
    })
    .await
}

/// One problem in the rules file, where it is.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct RulesProblem {
    /// 1-based line, when known.
    pub line: Option<u32>,
    /// Stable code, e.g. `config.invalid`.
    pub code: String,
    pub message: String,
}

/// The rules file as the rules screen shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct RulesFile {
    pub path: String,
    pub text: String,
    /// The text parses and validates (what the guard would apply).
    pub valid: bool,
    pub problems: Vec<RulesProblem>,
    /// Global dry-run in this text.
    pub dry_run: Option<bool>,
    /// Enabled rules in this text.
    pub rules: u32,
}

fn check(path: &std::path::Path, text: String) -> RulesFile {
    use tradeguard_engine::rules::RiskConfig;
    let parsed = RiskConfig::parse(&text, path);
    let (valid, problems, dry_run, rules) = match &parsed {
        Ok(c) => (
            true,
            Vec::new(),
            Some(c.dry_run),
            u32::try_from(c.enabled_rules().count()).unwrap_or(u32::MAX),
        ),
        Err(e) => (
            false,
            vec![RulesProblem {
                line: e.line().and_then(|l| u32::try_from(l).ok()),
                code: e.code().to_owned(),
                message: e.to_string(),
            }],
            None,
            0,
        ),
    };
    RulesFile {
        path: path.display().to_string(),
        text,
        valid,
        problems,
        dry_run,
        rules,
    }
}

/// The rules file with its validation.
#[tauri::command]
#[specta::specta]
pub fn rules_file(paths: tauri::State<'_, AppPaths>) -> Result<RulesFile, IpcError> {
    let path = paths.rules_file();
    let text = std::fs::read_to_string(&path).map_err(|e| {
        IpcError::new(
            ErrorCode::Storage,
            "rules.read",
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    Ok(check(&path, text))
}

/// Checks `text` without saving (inline validation while editing).
#[tauri::command]
#[specta::specta]
pub fn check_rules(paths: tauri::State<'_, AppPaths>, text: String) -> RulesFile {
    check(&paths.rules_file(), text)
}

/// How long a go-live preview can be confirmed.
pub const GO_LIVE_VALID_FOR: std::time::Duration = std::time::Duration::from_secs(300);

/// What turning the global dry-run off would do, to confirm before anything is written.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct GoLivePreview {
    /// Single-use: save the same text again with it to go live.
    pub preview_id: String,
    /// Enabled rules in the text.
    pub rules: u32,
    /// The enabled `flatten` rules that will send orders on their own (not in their own
    /// dry-run), by id.
    pub will_send: Vec<String>,
}

/// The outcome of a save.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum RulesSave {
    /// Written; the guard applies it without a restart.
    Saved { file: RulesFile },
    /// Nothing written: the text turns the global dry-run off. Save it again with
    /// `preview.previewId` to go live.
    ConfirmGoLive { preview: GoLivePreview },
}

/// The go-live previews issued and not yet used (one at a time: a new one replaces the last).
#[derive(Debug, Default)]
pub struct GoLiveGate {
    pending: std::sync::Mutex<Option<PendingGoLive>>,
    issued: std::sync::atomic::AtomicU64,
}

#[derive(Debug)]
struct PendingGoLive {
    id: String,
    text: String,
    at: std::time::Instant,
}

impl GoLiveGate {
    fn issue(&self, text: &str, now: std::time::Instant) -> String {
        let n = self
            .issued
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let id = format!("go-live-{n}");
        *self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(PendingGoLive {
            id: id.clone(),
            text: text.to_owned(),
            at: now,
        });
        id
    }

    /// Uses `id` up if it was issued for exactly `text` and has not expired.
    fn redeem(&self, id: &str, text: &str, now: std::time::Instant) -> Result<(), IpcError> {
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match pending.take() {
            Some(p) if p.id == id && p.text == text => {
                if now.duration_since(p.at) <= GO_LIVE_VALID_FOR {
                    Ok(())
                } else {
                    Err(IpcError::invalid_input(
                        "rules.go_live_expired",
                        "the go-live confirmation expired: review it again",
                    ))
                }
            }
            other => {
                *pending = other;
                Err(IpcError::invalid_input(
                    "rules.go_live_unknown",
                    "this go-live confirmation is unknown, used, or for another text: review it again",
                ))
            }
        }
    }
}

/// The global dry-run of the file on disk: `true` unless it validates with `dry_run = false`
/// (a missing or invalid file is not known to be live).
fn on_disk_dry_run(path: &std::path::Path) -> bool {
    tradeguard_engine::rules::RiskConfig::load(path).map_or(true, |c| c.dry_run)
}

/// Saves `text` to `path` unless it is invalid (refused) or turns the global dry-run off
/// without a valid `confirm` id (a preview is returned, nothing is written).
fn save_to(
    path: &std::path::Path,
    gate: &GoLiveGate,
    text: String,
    confirm: Option<&str>,
    now: std::time::Instant,
) -> Result<RulesSave, IpcError> {
    let checked = check(path, text);
    if let Some(p) = checked.problems.first() {
        return Err(IpcError::invalid_input(&p.code, p.message.clone()));
    }
    let goes_live = checked.dry_run == Some(false) && on_disk_dry_run(path);
    if goes_live {
        match confirm {
            Some(id) => gate.redeem(id, &checked.text, now)?,
            None => {
                let will_send = tradeguard_engine::rules::RiskConfig::parse(&checked.text, path)
                    .map(|c| {
                        c.enabled_rules()
                            .filter(|r| {
                                r.common.action == tradeguard_engine::rules::RuleAction::Flatten
                                    && !r.common.dry_run
                            })
                            .map(|r| r.common.id.clone())
                            .collect()
                    })
                    .unwrap_or_default();
                let preview = GoLivePreview {
                    preview_id: gate.issue(&checked.text, now),
                    rules: checked.rules,
                    will_send,
                };
                tracing::info!(path = %path.display(), preview = %preview.preview_id, "rules save would go live: confirmation asked");
                return Ok(RulesSave::ConfirmGoLive { preview });
            }
        }
    }
    crate::paths::write_atomically(path, &checked.text).map_err(|e| {
        IpcError::new(
            ErrorCode::Storage,
            "rules.write",
            format!("cannot write {}: {e}", path.display()),
        )
    })?;
    if goes_live {
        tracing::warn!(path = %path.display(), rules = checked.rules, "risk rules saved LIVE from the app (global dry-run off, confirmed)");
    } else {
        tracing::info!(path = %path.display(), dry_run = ?checked.dry_run, rules = checked.rules, "risk rules saved from the app");
    }
    Ok(RulesSave::Saved { file: checked })
}

/// Saves the rules when they validate (atomically: temp file + rename); the guard applies them
/// without a restart. Invalid text is refused and nothing is written. A text that turns the
/// global dry-run off is only written with `confirm` = the id of the preview returned for it.
#[tauri::command]
#[specta::specta]
pub fn save_rules(
    paths: tauri::State<'_, AppPaths>,
    state: tauri::State<'_, AppState>,
    text: String,
    confirm: Option<String>,
) -> Result<RulesSave, IpcError> {
    save_to(
        &paths.rules_file(),
        state.go_live(),
        text,
        confirm.as_deref(),
        std::time::Instant::now(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let rows = vec![AuditRow {
            id: 7,
            at: "2026-11-22T10:00:00+00:00".to_owned(),
            kind: "rule_fired".to_owned(),
            subject: "account:DU1".to_owned(),
            reason: "loss 2,600 > \"2,500\"".to_owned(),
            details: "{\"a\":1}".to_owned(),
        }];
        let text = csv(&rows);
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("id,at,kind,subject,reason,details"));
        assert_eq!(
            lines.next(),
            Some(
                "7,2026-11-22T10:00:00+00:00,rule_fired,account:DU1,\"loss 2,600 > \"\"2,500\"\"\",\"{\"\"a\"\":1}\""
            )
        );
    }

    #[test]
    fn rules_are_checked_with_the_line_of_the_problem() {
        let path = std::path::Path::new("/tmp/risk.toml");
        let ok = check(path, "dry_run = true\n".to_owned());
        assert!(ok.valid, "{:?}", ok.problems);
        assert_eq!(ok.dry_run, Some(true));
        let bad = check(
            path,
            "dry_run = true\n\n[[max_contracts]]\nid = \"m\"\nmax_contracts = -3\n".to_owned(),
        );
        assert!(!bad.valid);
        assert_eq!(bad.problems.len(), 1);
        assert_eq!(bad.problems[0].line, Some(5), "{:?}", bad.problems);
        assert_eq!(bad.problems[0].code, "config.invalid");
        assert!(bad.problems[0].message.contains("max_contracts"));
    }

    const LIVE: &str = "dry_run = false\n\n[[max_contracts]]\nid = \"mc\"\naction = \"flatten\"\nmax_contracts = 5\n\n[[dte_exit]]\ndays = 1\n";

    fn saved(r: Result<RulesSave, IpcError>) -> RulesFile {
        match r {
            Ok(RulesSave::Saved { file }) => file,
            other => panic!("expected a save: {other:?}"),
        }
    }

    fn preview(r: Result<RulesSave, IpcError>) -> GoLivePreview {
        match r {
            Ok(RulesSave::ConfirmGoLive { preview }) => preview,
            other => panic!("expected a go-live preview: {other:?}"),
        }
    }

    #[test]
    fn going_live_needs_the_preview_id_of_that_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("risk.toml");
        std::fs::write(&path, "dry_run = true\n").unwrap();
        let gate = GoLiveGate::default();
        let t0 = std::time::Instant::now();

        // Step one: nothing written, what goes live is listed.
        let p = preview(save_to(&path, &gate, LIVE.to_owned(), None, t0));
        assert_eq!((p.rules, p.will_send.clone()), (2, vec!["mc".to_owned()]));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "dry_run = true\n");

        // A wrong id, or the id with another text, writes nothing either.
        let e = save_to(&path, &gate, LIVE.to_owned(), Some("go-live-999"), t0).unwrap_err();
        assert_eq!(e.reason, "rules.go_live_unknown");
        let other = LIVE.replace("max_contracts = 5", "max_contracts = 1");
        let e = save_to(&path, &gate, other, Some(&p.preview_id), t0).unwrap_err();
        assert_eq!(e.reason, "rules.go_live_unknown");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "dry_run = true\n");

        // Step two: the same text with its id is written, once.
        let f = saved(save_to(
            &path,
            &gate,
            LIVE.to_owned(),
            Some(&p.preview_id),
            t0,
        ));
        assert_eq!(f.dry_run, Some(false));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), LIVE);

        // Already live: later edits save directly.
        let edit = LIVE.replace("days = 1", "days = 2");
        saved(save_to(&path, &gate, edit.clone(), None, t0));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), edit);
    }

    #[test]
    fn a_go_live_preview_is_single_use_and_expires() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("risk.toml");
        // No dry_run line: dry-run (and a missing or invalid file counts as not live).
        std::fs::write(&path, "[[dte_exit]]\ndays = 1\n").unwrap();
        let gate = GoLiveGate::default();
        let t0 = std::time::Instant::now();
        let p = preview(save_to(&path, &gate, LIVE.to_owned(), None, t0));
        let late = t0 + GO_LIVE_VALID_FOR + std::time::Duration::from_secs(1);
        let e = save_to(&path, &gate, LIVE.to_owned(), Some(&p.preview_id), late).unwrap_err();
        assert_eq!(e.reason, "rules.go_live_expired");
        let e = save_to(&path, &gate, LIVE.to_owned(), Some(&p.preview_id), t0).unwrap_err();
        assert_eq!(
            e.reason, "rules.go_live_unknown",
            "used up by the expired try"
        );
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "[[dte_exit]]\ndays = 1\n"
        );

        std::fs::remove_file(&path).unwrap();
        preview(save_to(&path, &gate, LIVE.to_owned(), None, t0));
        std::fs::write(&path, "dry_run = ").unwrap();
        preview(save_to(&path, &gate, LIVE.to_owned(), None, t0));
        // Staying in dry-run never asks.
        saved(save_to(
            &path,
            &gate,
            "dry_run = true\n".to_owned(),
            None,
            t0,
        ));
    }

    #[test]
    fn a_bad_kind_filter_is_refused() {
        let f = AuditFilter {
            kind: Some("rule_fire".to_owned()),
            text: None,
        };
        assert_eq!(validate(&f).unwrap_err().reason, "audit.bad_kind");
        assert!(validate(&AuditFilter::default()).is_ok());
    }
}
