//! Real servers on loopback for the delivery tests: a minimal SMTP server (RFC 5321: greeting,
//! EHLO, MAIL, RCPT, DATA with dot-terminated body, QUIT) and an axum HTTP receiver that keeps
//! every request (the Slack, Discord, webhook, ntfy and Telegram shapes).
#![allow(dead_code)]

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One mail the SMTP server accepted.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
    pub at: Instant,
}

/// How the SMTP server answers DATA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpMode {
    Accept,
    /// 451: a transient failure (try later).
    Busy,
}

#[derive(Clone)]
pub struct SmtpServer {
    pub port: u16,
    pub mails: Arc<Mutex<Vec<Mail>>>,
    mode: Arc<Mutex<SmtpMode>>,
}

impl SmtpServer {
    pub async fn start() -> Self {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let s = Self {
            port: l.local_addr().unwrap().port(),
            mails: Arc::default(),
            mode: Arc::new(Mutex::new(SmtpMode::Accept)),
        };
        let me = s.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = l.accept().await {
                let me = me.clone();
                tokio::spawn(async move { me.session(sock).await });
            }
        });
        s
    }

    pub fn set_mode(&self, m: SmtpMode) {
        *self.mode.lock().unwrap() = m;
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    async fn session(&self, sock: tokio::net::TcpStream) {
        let (r, mut w) = sock.into_split();
        let mut r = BufReader::new(r);
        let _ = w.write_all(b"220 localhost ESMTP test\r\n").await;
        let (mut from, mut to) = (String::new(), Vec::new());
        let mut line = String::new();
        loop {
            line.clear();
            if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let cmd = line.trim_end().to_owned();
            let up = cmd.to_ascii_uppercase();
            let reply: &[u8] = if up.starts_with("EHLO") {
                b"250-localhost\r\n250 8BITMIME\r\n"
            } else if up.starts_with("HELO") {
                b"250 localhost\r\n"
            } else if up.starts_with("MAIL FROM:") {
                from = cmd[10..].trim().to_owned();
                b"250 OK\r\n"
            } else if up.starts_with("RCPT TO:") {
                to.push(cmd[8..].trim().to_owned());
                b"250 OK\r\n"
            } else if up == "DATA" {
                if *self.mode.lock().unwrap() == SmtpMode::Busy {
                    b"451 4.3.0 try again later\r\n"
                } else {
                    let _ = w.write_all(b"354 go ahead\r\n").await;
                    let mut data = String::new();
                    loop {
                        line.clear();
                        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if line == ".\r\n" {
                            break;
                        }
                        data.push_str(&line);
                    }
                    self.mails.lock().unwrap().push(Mail {
                        from: from.clone(),
                        to: std::mem::take(&mut to),
                        data,
                        at: Instant::now(),
                    });
                    b"250 OK queued\r\n"
                }
            } else if up == "RSET" || up == "NOOP" {
                b"250 OK\r\n"
            } else if up == "QUIT" {
                let _ = w.write_all(b"221 bye\r\n").await;
                return;
            } else {
                b"502 not implemented\r\n"
            };
            if w.write_all(reply).await.is_err() {
                return;
            }
        }
    }
}

/// Decodes a quoted-printable mail body (lettre encodes non-ASCII text that way).
pub fn unfold_qp(s: &str) -> String {
    let s = s.replace("=\r\n", "");
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'='
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One HTTP request the receiver got.
#[derive(Debug, Clone)]
pub struct Hit {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: String,
    pub at: Instant,
}

impl Hit {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn header(&self, k: &str) -> String {
        self.headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    }
}

#[derive(Clone)]
pub struct HookServer {
    pub port: u16,
    hits: Arc<Mutex<Vec<Hit>>>,
    status: Arc<AtomicU16>,
    /// Per path prefix, overriding `status`.
    on: Arc<Mutex<Vec<(String, u16)>>>,
}

async fn keep(
    State(s): State<HookServer>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, HeaderMap, &'static str) {
    s.hits.lock().unwrap().push(Hit {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or("").to_owned(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
    });
    let own =
        s.on.lock()
            .unwrap()
            .iter()
            .find(|(p, _)| uri.path().starts_with(p.as_str()))
            .map(|(_, c)| *c);
    let code =
        StatusCode::from_u16(own.unwrap_or_else(|| s.status.load(Ordering::SeqCst))).unwrap();
    let mut h = HeaderMap::new();
    if code == StatusCode::TOO_MANY_REQUESTS {
        h.insert("retry-after", "1".parse().unwrap());
    }
    (code, h, "{\"ok\":true}")
}

impl HookServer {
    pub async fn start() -> Self {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let s = Self {
            port: l.local_addr().unwrap().port(),
            hits: Arc::default(),
            status: Arc::new(AtomicU16::new(200)),
            on: Arc::default(),
        };
        let app = Router::new().fallback(keep).with_state(s.clone());
        tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        s
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The status every later request gets.
    pub fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// The status later requests to paths under `prefix` get.
    pub fn answer_on(&self, prefix: &str, status: u16) {
        let mut on = self.on.lock().unwrap();
        on.retain(|(p, _)| p != prefix);
        on.push((prefix.to_owned(), status));
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    pub fn hits_on(&self, prefix: &str) -> Vec<Hit> {
        self.hits()
            .into_iter()
            .filter(|h| h.path.starts_with(prefix))
            .collect()
    }
}

/// Waits (real time) until `f` holds, up to `limit`.
pub async fn until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    f()
}
