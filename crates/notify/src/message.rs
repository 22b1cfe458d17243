//! [`Message`]: what an alert says away from the desk. The alert's own text carries the
//! details the guard knows when it raises it (for an assignment: the strategy, the option
//! with its strike, what was assigned or exercised, the stock delivered, the close plan; for
//! each order the assignment guard sends, a later `assignment.order_sent` alert with its id);
//! the message adds the severity, the code, the time in New York and what the trader should do.

use chrono::TimeZone;
use serde::Serialize;
use tradeguard_engine::alert::{Alert, Severity};

/// One alert, written for a person on a phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// `CRITICAL`, `WARNING`, `INFO`.
    pub severity: &'static str,
    /// The alert's stable code.
    pub code: String,
    /// First sentence of the alert (`ASSIGNMENT: SPY 21MAR25 440 P ×1 assigned — …`).
    pub title: String,
    /// The rest of the alert's text.
    pub details: String,
    /// What the trader should do.
    pub action: String,
    /// When, New York time (`Mon 2026-12-07 02:14:03 ET`).
    pub at: String,
    /// When, Unix milliseconds.
    pub ts_ms: i64,
}

fn severity_word(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "CRITICAL",
        Severity::Warning => "WARNING",
        Severity::Info => "INFO",
    }
}

/// What the trader should do about an alert with `code` and `severity`.
pub fn action_for(code: &str, severity: Severity) -> &'static str {
    match code {
        "assignment.detected" | "assignment.exercise_detected" | "assignment.leg_missing" => {
            "The guard is closing the rest of the strategy in the safe order (shorts first, the protection last). Check your broker's positions; do not trade these legs by hand unless a later alert says the guard could not close them."
        }
        "assignment.close_failed"
        | "assignment.close_unconfirmed"
        | "close.needs_manual_action" => {
            "Close these positions yourself in your broker now: the guard could not finish."
        }
        "assignment.intended" => "Nothing to do unless you want to change the position.",
        "assignment.close_completed" | "close.done" => {
            "Nothing to do: check that the account is flat."
        }
        c if c.starts_with("assignment.order") => {
            "Nothing to do now; a further alert follows when the close completes or fails."
        }
        "assignment.stopped" | "supervisor.task_hung" | "enforce.stream_ended" => {
            "Open Tradeguard now: part of the guard has stopped and your positions may be unguarded."
        }
        "guard.connection_lost" | "broker.not_connected" => {
            "Check the broker connection (gateway, network); the guard resumes when it is back."
        }
        c if c.starts_with("unwind.") => {
            "Forced unwind is closing positions; open Tradeguard to follow it or switch it off."
        }
        c if c.starts_with("alerts.") => "Check this channel's settings in Settings → Alerts.",
        _ => match severity {
            Severity::Critical => "Open Tradeguard now and review.",
            Severity::Warning => "Review in Tradeguard when you can.",
            Severity::Info => "For the record.",
        },
    }
}

/// New York wall time of `ts`.
fn new_york(ts_ms: i64) -> String {
    match chrono_tz::America::New_York.timestamp_millis_opt(ts_ms) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
            t.format("%a %Y-%m-%d %H:%M:%S ET").to_string()
        }
        chrono::LocalResult::None => format!("{ts_ms} ms"),
    }
}

impl Message {
    /// The message of `a`.
    pub fn of(a: &Alert) -> Self {
        let n = tradeguard_engine::enforce::alerter::notification_of(a);
        // notification_of puts the code at the end of the body; the message has its own field.
        let suffix = format!("[{}]", a.code);
        let details = n
            .body
            .strip_suffix(&suffix)
            .unwrap_or(&n.body)
            .trim()
            .to_owned();
        let ts_ms = a.ts.millis();
        Self {
            severity: severity_word(a.severity),
            code: a.code.clone(),
            title: n.title,
            details,
            action: action_for(&a.code, a.severity).to_owned(),
            at: new_york(ts_ms),
            ts_ms,
        }
    }

    /// A test message (the Settings test button).
    pub fn test(channel: &str, ts_ms: i64) -> Self {
        Self {
            severity: "INFO",
            code: "alerts.test".to_owned(),
            title: format!("Tradeguard test message for channel \"{channel}\""),
            details: "If you read this, alerts reach you here.".to_owned(),
            action: "Nothing to do.".to_owned(),
            at: new_york(ts_ms),
            ts_ms,
        }
    }

    /// The subject line of an email, the title of a push.
    pub fn subject(&self) -> String {
        format!("[Tradeguard {}] {}", self.severity, self.title)
    }

    /// The plain-text body.
    pub fn text(&self) -> String {
        let mut s = String::new();
        if !self.details.is_empty() {
            s.push_str(&self.details);
            s.push_str("\n\n");
        }
        s.push_str("What to do: ");
        s.push_str(&self.action);
        s.push_str(&format!(
            "\n\n{} · {} · {}",
            self.severity, self.code, self.at
        ));
        s
    }

    /// Subject and body in one text (chat channels), cut to `max` characters.
    pub fn chat(&self, max: usize) -> String {
        let s = format!("*{}*\n{}", self.subject(), self.text());
        if s.chars().count() <= max {
            s
        } else {
            let mut cut: String = s.chars().take(max.saturating_sub(1)).collect();
            cut.push('…');
            cut
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradeguard_model::Timestamp;

    #[test]
    fn an_assignment_alert_reads_well_away_from_the_desk() {
        let a = Alert {
            // 2026-12-07 07:14:03 UTC = 02:14:03 in New York.
            ts: Timestamp(1_796_627_643_000_000_000),
            severity: Severity::Critical,
            code: "assignment.detected".to_owned(),
            message: "ASSIGNMENT: SPY 21MAR25 440 P ×1 assigned — emergency close armed for the open. Iron condor SPY is Broken: short put assigned; 100 SPY delivered at 440".to_owned(),
            group: None,
            stop: None,
        };
        let m = Message::of(&a);
        assert_eq!(
            m.subject(),
            "[Tradeguard CRITICAL] ASSIGNMENT: SPY 21MAR25 440 P ×1 assigned — emergency close armed for the open"
        );
        assert_eq!(
            m.details,
            "Iron condor SPY is Broken: short put assigned; 100 SPY delivered at 440"
        );
        assert!(m.action.starts_with("The guard is closing the rest"));
        assert_eq!(m.at, "Mon 2026-12-07 02:14:03 ET");
        let t = m.text();
        assert!(
            t.contains("What to do:") && t.contains("assignment.detected"),
            "{t}"
        );
        assert_eq!(m.chat(40).chars().count(), 40);
    }
}
