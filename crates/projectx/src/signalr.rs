//! The SignalR JSON hub protocol, by hand over a WebSocket (no negotiate step: ProjectX's hubs
//! take `skipNegotiation` with the WebSocket transport and the token as `?access_token=`).
//!
//! Frames end with the record separator 0x1E. The client opens with
//! `{"protocol":"json","version":1}` and the server answers `{}` (or `{"error": …}`). Then:
//! type 1 invocation (`target`, `arguments`, optional `invocationId`), 3 completion, 6 ping,
//! 7 close (<https://github.com/dotnet/aspnetcore/blob/main/src/SignalR/docs/specs/HubProtocol.md>).

use serde_json::{Value, json};

/// The record separator ending every frame.
pub const RS: char = '\u{1e}';

/// The handshake request.
pub fn handshake() -> String {
    format!("{}{RS}", json!({"protocol": "json", "version": 1}))
}

/// An invocation of `target` (with an id: the server answers with a completion).
pub fn invocation(target: &str, arguments: Vec<Value>, id: Option<u64>) -> String {
    let mut m = json!({"type": 1, "target": target, "arguments": arguments});
    if let Some(id) = id {
        m["invocationId"] = Value::String(id.to_string());
    }
    format!("{m}{RS}")
}

/// A ping.
pub fn ping() -> String {
    format!("{}{RS}", json!({"type": 6}))
}

/// One hub message.
#[derive(Debug, Clone, PartialEq)]
pub enum HubMessage {
    /// An event (server → client) or a call (client → server).
    Invocation {
        /// The method or event name.
        target: String,
        /// Its arguments.
        arguments: Vec<Value>,
        /// Present when a completion is expected.
        invocation_id: Option<String>,
    },
    /// The end of an invocation.
    Completion {
        /// Which one.
        invocation_id: String,
        /// Why it failed, when it did.
        error: Option<String>,
    },
    /// Keep-alive.
    Ping,
    /// The server closes the connection.
    Close {
        /// Why, when said.
        error: Option<String>,
    },
    /// The handshake answer (`{}` or `{"error": …}`).
    Handshake {
        /// Why it was refused, when it was.
        error: Option<String>,
    },
    /// A type this client does not use (stream items, acks).
    Other(i64),
}

/// The messages of one text frame (one or more records); an unreadable record is an error
/// with its text, the rest still read.
pub fn parse(text: &str) -> Vec<Result<HubMessage, String>> {
    text.split(RS)
        .filter(|r| !r.trim().is_empty())
        .map(|r| {
            let v: Value = serde_json::from_str(r).map_err(|e| format!("{e}: {}", clip(r)))?;
            let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
            Ok(match v.get("type").and_then(Value::as_i64) {
                None => HubMessage::Handshake { error: s("error") },
                Some(1) => HubMessage::Invocation {
                    target: s("target")
                        .ok_or_else(|| format!("invocation without a target: {}", clip(r)))?,
                    arguments: v
                        .get("arguments")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default(),
                    invocation_id: s("invocationId"),
                },
                Some(3) => HubMessage::Completion {
                    invocation_id: s("invocationId").unwrap_or_default(),
                    error: s("error"),
                },
                Some(6) => HubMessage::Ping,
                Some(7) => HubMessage::Close { error: s("error") },
                Some(t) => HubMessage::Other(t),
            })
        })
        .collect()
}

fn clip(s: &str) -> String {
    s.chars().take(200).collect()
}

/// The records of an event's arguments: a bare object, an `{action, data}` wrapper, or an
/// array of either (ProjectX sends all three; project-x-py unwraps them the same way).
pub fn payloads(arguments: &[Value]) -> Vec<(Option<i64>, Value)> {
    let mut out = Vec::new();
    for a in arguments {
        unwrap(a, None, &mut out);
    }
    out
}

fn unwrap(v: &Value, action: Option<i64>, out: &mut Vec<(Option<i64>, Value)>) {
    match v {
        Value::Array(items) => {
            for i in items {
                unwrap(i, action, out);
            }
        }
        Value::Object(m) if m.contains_key("data") && m.len() <= 2 => {
            let action = m.get("action").and_then(Value::as_i64).or(action);
            if let Some(d) = m.get("data") {
                unwrap(d, action, out);
            }
        }
        Value::Object(_) => out.push((action, v.clone())),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_on_the_separator_and_bad_records_are_said() {
        let text = format!(
            "{{}}{RS}{{\"type\":6}}{RS}{{\"type\":1,\"target\":\"GatewayUserOrder\",\"arguments\":[{{\"id\":1}}]}}{RS}not json{RS}"
        );
        let m = parse(&text);
        assert_eq!(m[0], Ok(HubMessage::Handshake { error: None }));
        assert_eq!(m[1], Ok(HubMessage::Ping));
        assert!(
            matches!(&m[2], Ok(HubMessage::Invocation { target, .. }) if target == "GatewayUserOrder")
        );
        assert!(m[3].is_err());
    }

    #[test]
    fn payloads_come_bare_wrapped_or_in_arrays() {
        let bare = json!({"id": 1});
        let wrapped = json!({"action": 1, "data": {"id": 2}});
        let many = json!([{"id": 3}, {"action": 0, "data": [{"id": 4}]}]);
        let p = payloads(&[bare, wrapped, many]);
        let ids: Vec<i64> = p.iter().map(|(_, v)| v["id"].as_i64().unwrap()).collect();
        assert_eq!(ids, [1, 2, 3, 4]);
        assert_eq!(p[1].0, Some(1));
    }
}
