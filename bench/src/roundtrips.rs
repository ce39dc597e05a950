//! Store round trips per SSO flow, counted two ways on a separate server
//! (logging costs time, so never on the measured one):
//!
//! * **Statements** (both backends): the server runs with
//!   `RUST_LOG=sqlx::query=debug`, so sqlx logs every statement it executes;
//!   the flow's steps run one at a time and the new log lines after each step
//!   are that step's statements. sqlx logs neither BEGIN nor the pool's
//!   liveness ping, and logs COMMIT only on PostgreSQL, so transaction
//!   control is left out of this count.
//! * **Wire round trips** (PostgreSQL): Latch connects through a counting
//!   proxy that reads the frontend protocol; every `Sync` (end of an
//!   extended-query exchange, the pool's ping included) and every simple
//!   `Query` (BEGIN) is one round trip the server waits for.
//!
//! Each step runs `flows` times and its count is the mode over them, which
//! ignores background work (the signing-key refresh every second, expiry
//! housekeeping) that lands in some windows. Audit events are written by a
//! background task in batches; they are counted apart.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::scenarios::{Ctx, authorize, exchange, sign_in, userinfo};
use crate::server::{Environment, Fixture};

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StepTrips {
    pub name: String,
    /// Statements sqlx executed (no BEGIN/COMMIT/ping).
    pub statements: u32,
    /// Of which INSERT, UPDATE or DELETE.
    pub writes: u32,
    /// Round trips on the PostgreSQL wire, everything included.
    pub wire: Option<u32>,
    /// The statements, abbreviated, in order.
    pub listing: Vec<String>,
    /// The wire exchanges, in order (`ping` for a bare Sync).
    pub wire_listing: Vec<String>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RoundTrips {
    pub flows: usize,
    pub steps: Vec<StepTrips>,
    /// Audit-event statements per flow, written by the background writer.
    pub audit_statements_per_flow: f64,
    pub audit_wire_per_flow: Option<f64>,
}

impl RoundTrips {
    pub fn statements(&self) -> u32 {
        self.steps.iter().map(|step| step.statements).sum()
    }

    pub fn writes(&self) -> u32 {
        self.steps.iter().map(|step| step.writes).sum()
    }

    pub fn wire(&self) -> Option<u32> {
        self.steps.iter().map(|step| step.wire).sum()
    }
}

pub async fn count(env: &Environment, bin: &Path, fixture: &Fixture, flows: usize) -> anyhow::Result<RoundTrips> {
    let wire = if env.is_postgres() { Some(WireCounter::start(&env.database_url).await?) } else { None };
    let proxied = wire.as_ref().map(|wire| wire.database_url.clone());
    let log_name = "round-trips.log";
    let mut server = env.spawn(
        bin,
        log_name,
        proxied.as_deref(),
        &[("RUST_LOG", "warn,sqlx::query=debug"), ("LATCH_LOG_FORMAT", "json")],
    )?;
    server.wait_ready(Duration::from_secs(60)).await?;
    let result = count_flows(env, &env.dir.join(log_name), wire.as_ref(), fixture, flows).await;
    server.stop().await?;
    result
}

/// What one step's window held.
struct Window {
    statements: Vec<String>,
    audit_statements: usize,
    wire: Vec<String>,
    audit_wire: usize,
}

async fn count_flows(
    env: &Environment,
    log_path: &Path,
    wire: Option<&WireCounter>,
    fixture: &Fixture,
    flows: usize,
) -> anyhow::Result<RoundTrips> {
    let ctx = Ctx::new(env.addr, fixture.clone());
    let mut client = ctx.client();
    let session = sign_in(&mut client, &ctx, 0).await?;
    // Warm-up: statements get prepared on the connections in use.
    for n in 0..3 {
        let code = authorize(&mut client, &ctx, &session, "openid profile email", &format!("w{n}")).await?;
        let tokens = exchange(&mut client, &ctx, &code).await?;
        userinfo(&mut client, &tokens.access_token).await?;
    }
    // Long enough for the audit writer and a key refresh to be done.
    let settle = Duration::from_millis(60);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut log = LogTail::at_end(log_path)?;
    let mut wire_seen = wire.map_or(0, WireCounter::len);
    let mut windows: Vec<[Window; 3]> = Vec::with_capacity(flows);
    let take = |log: &mut LogTail, wire_seen: &mut usize| -> anyhow::Result<Window> {
        let (statements, audit_statements) = classify_statements(log.new_statements()?);
        let (wire_list, audit_wire) = match wire {
            Some(wire) => {
                let exchanges = wire.since(*wire_seen);
                *wire_seen += exchanges.len();
                classify_wire(exchanges)
            }
            None => (Vec::new(), 0),
        };
        Ok(Window { statements, audit_statements, wire: wire_list, audit_wire })
    };
    for n in 0..flows {
        let code = authorize(&mut client, &ctx, &session, "openid profile email", &format!("c{n}")).await?;
        tokio::time::sleep(settle).await;
        let authorize_window = take(&mut log, &mut wire_seen)?;
        let tokens = exchange(&mut client, &ctx, &code).await?;
        tokio::time::sleep(settle).await;
        let token_window = take(&mut log, &mut wire_seen)?;
        userinfo(&mut client, &tokens.access_token).await?;
        tokio::time::sleep(settle).await;
        let userinfo_window = take(&mut log, &mut wire_seen)?;
        windows.push([authorize_window, token_window, userinfo_window]);
    }
    let mut steps = Vec::new();
    for (index, name) in ["authorize", "token", "userinfo"].into_iter().enumerate() {
        let statement_counts: Vec<usize> = windows.iter().map(|flow| flow[index].statements.len()).collect();
        let wire_counts: Vec<usize> = windows.iter().map(|flow| flow[index].wire.len()).collect();
        let (statements, wire_mode) = (mode(&statement_counts), mode(&wire_counts));
        let typical = windows
            .iter()
            .map(|flow| &flow[index])
            .find(|window| window.statements.len() == statements && window.wire.len() == wire_mode)
            .or_else(|| windows.first().map(|flow| &flow[index]))
            .context("no flows counted")?;
        let writes = typical.statements.iter().filter(|statement| is_write(statement)).count();
        steps.push(StepTrips {
            name: name.to_owned(),
            statements: u32::try_from(statements)?,
            writes: u32::try_from(writes)?,
            wire: wire.map(|_| u32::try_from(wire_mode)).transpose()?,
            listing: typical.statements.clone(),
            wire_listing: typical.wire.clone(),
        });
    }
    let flows_f = flows.max(1) as f64;
    let audit_statements: usize = windows.iter().flatten().map(|window| window.audit_statements).sum();
    let audit_wire: usize = windows.iter().flatten().map(|window| window.audit_wire).sum();
    Ok(RoundTrips {
        flows,
        steps,
        audit_statements_per_flow: audit_statements as f64 / flows_f,
        audit_wire_per_flow: wire.map(|_| audit_wire as f64 / flows_f),
    })
}

/// The most frequent value (the smallest of equally frequent ones).
fn mode(values: &[usize]) -> usize {
    let mut counts: HashMap<usize, usize> = HashMap::new();
    for value in values {
        *counts.entry(*value).or_default() += 1;
    }
    counts.into_iter().max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0))).map_or(0, |(value, _)| value)
}

fn is_write(statement: &str) -> bool {
    ["INSERT", "UPDATE", "DELETE"].iter().any(|verb| statement.starts_with(verb))
}

fn is_transaction_control(statement: &str) -> bool {
    ["BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"].iter().any(|verb| statement.starts_with(verb))
}

/// Work that is not the request's: the audit writer and the key refresher.
fn is_audit(statement: &str) -> bool {
    statement.contains("audit_events")
}

fn is_background(statement: &str) -> bool {
    statement.contains("signing_keys") || statement.contains("expires_at <") && statement.starts_with("DELETE")
}

/// Statements of the request (in order), and how many audit ones there were.
fn classify_statements(statements: Vec<String>) -> (Vec<String>, usize) {
    let audit = statements.iter().filter(|statement| is_audit(statement)).count();
    let own = statements
        .into_iter()
        .filter(|statement| !is_transaction_control(statement) && !is_audit(statement) && !is_background(statement))
        .collect();
    (own, audit)
}

/// Wire exchanges of the request, and how many belonged to audit writes.
/// Per connection, a transaction that writes audit events (with the ping
/// that acquired its connection) is the audit writer's; so is a lone
/// background statement with its ping.
fn classify_wire(exchanges: Vec<Exchange>) -> (Vec<String>, usize) {
    let mut by_connection: Vec<(u32, Vec<String>)> = Vec::new();
    for exchange in exchanges {
        let text = exchange.text();
        match by_connection.iter_mut().find(|(connection, _)| *connection == exchange.connection) {
            Some((_, list)) => list.push(text),
            None => by_connection.push((exchange.connection, vec![text])),
        }
    }
    let (mut own, mut audit) = (Vec::new(), 0);
    for (_, list) in by_connection {
        // Split into units: [ping] BEGIN … COMMIT, or [ping] statement.
        let mut unit: Vec<String> = Vec::new();
        let mut in_transaction = false;
        let mut flush = |unit: &mut Vec<String>| {
            if unit.iter().any(|text| is_audit(text)) {
                audit += unit.len();
            } else if !unit.iter().any(|text| is_background(text)) {
                own.append(unit);
            }
            unit.clear();
        };
        for text in list {
            let is_ping = text == "ping";
            if text.starts_with("BEGIN") {
                in_transaction = true;
            }
            let ends = text.starts_with("COMMIT") || text.starts_with("ROLLBACK");
            unit.push(text);
            if is_ping || in_transaction && !ends {
                continue;
            }
            in_transaction = false;
            flush(&mut unit);
        }
        flush(&mut unit);
    }
    (own, audit)
}

/// Reads the server's JSON log from where it was last read.
struct LogTail {
    path: PathBuf,
    offset: u64,
}

impl LogTail {
    fn at_end(path: &Path) -> anyhow::Result<Self> {
        Ok(Self { path: path.to_owned(), offset: std::fs::metadata(path)?.len() })
    }

    /// The statements logged since the last call, abbreviated.
    fn new_statements(&mut self) -> anyhow::Result<Vec<String>> {
        let bytes = std::fs::read(&self.path)?;
        let start = usize::try_from(self.offset)?.min(bytes.len());
        let fresh = &bytes[start..];
        // Only whole lines; a partial last line waits for the next call.
        let end = fresh.iter().rposition(|byte| *byte == b'\n').map_or(0, |at| at + 1);
        self.offset += end as u64;
        let mut statements = Vec::new();
        for line in fresh[..end].split(|byte| *byte == b'\n') {
            let Ok(event) = serde_json::from_slice::<serde_json::Value>(line) else { continue };
            if event["target"] != "sqlx::query" {
                continue;
            }
            let full = event["db.statement"].as_str().filter(|text| !text.trim().is_empty());
            let text = full.or_else(|| event["summary"].as_str()).unwrap_or_default();
            statements.push(abbreviate(text));
        }
        Ok(statements)
    }
}

fn abbreviate(sql: &str) -> String {
    let words: Vec<&str> = sql.split_whitespace().collect();
    let mut text = words.join(" ");
    if text.len() > 72 {
        let cut = (0..=72).rev().find(|at| text.is_char_boundary(*at)).unwrap_or(0);
        text.truncate(cut);
        text.push('…');
    }
    text
}

// ------------------------------------------------ PostgreSQL wire counter

/// One round trip: the statements sent before a `Sync` (or a simple query).
#[derive(Debug, Clone)]
struct Exchange {
    connection: u32,
    /// Empty for a bare `Sync`: sqlx's ping before handing out a connection.
    statements: Vec<String>,
}

impl Exchange {
    fn text(&self) -> String {
        if self.statements.is_empty() { "ping".to_owned() } else { self.statements.join(" + ") }
    }
}

struct WireCounter {
    database_url: String,
    exchanges: Arc<Mutex<Vec<Exchange>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for WireCounter {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl WireCounter {
    /// Listens on a free port and forwards to the server of `database_url`;
    /// `self.database_url` is the same database through the counter.
    async fn start(database_url: &str) -> anyhow::Result<Self> {
        let mut url = url::Url::parse(database_url)?;
        let upstream: SocketAddr =
            url.socket_addrs(|| Some(5432))?.into_iter().next().context("the PostgreSQL host does not resolve")?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let local = listener.local_addr()?;
        url.set_host(Some("127.0.0.1"))?;
        url.set_port(Some(local.port())).map_err(|()| anyhow::anyhow!("cannot set the port"))?;
        // The counter reads the protocol: no TLS.
        url.query_pairs_mut().append_pair("sslmode", "disable");
        let exchanges = Arc::new(Mutex::new(Vec::new()));
        let shared = exchanges.clone();
        let accept = tokio::spawn(async move {
            let mut next_id = 0u32;
            while let Ok((client, _)) = listener.accept().await {
                next_id += 1;
                let shared = shared.clone();
                tokio::spawn(forward(client, upstream, next_id, shared));
            }
        });
        Ok(Self { database_url: url.to_string(), exchanges, accept })
    }

    fn len(&self) -> usize {
        self.exchanges.lock().map_or(0, |list| list.len())
    }

    fn since(&self, start: usize) -> Vec<Exchange> {
        self.exchanges.lock().map(|list| list.get(start..).unwrap_or_default().to_vec()).unwrap_or_default()
    }
}

async fn forward(mut client: TcpStream, upstream: SocketAddr, id: u32, exchanges: Arc<Mutex<Vec<Exchange>>>) {
    let Ok(server) = TcpStream::connect(upstream).await else { return };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.split();
    let (mut server_read, mut server_write) = server.into_split();
    let to_client = async {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
    };
    let to_server = async {
        let mut parser = FrontendParser::new(id);
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let read = match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            };
            // Count before forwarding: the answer cannot come before the question.
            let found = parser.feed(&buffer[..read]);
            if !found.is_empty()
                && let Ok(mut list) = exchanges.lock()
            {
                list.extend(found);
            }
            if server_write.write_all(&buffer[..read]).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
    };
    tokio::join!(to_client, to_server);
}

/// Splits the frontend byte stream into messages (after the untyped
/// startup packets) and groups them into exchanges.
struct FrontendParser {
    connection: u32,
    buffer: Vec<u8>,
    started: bool,
    /// Prepared statement name → SQL.
    names: HashMap<String, String>,
    pending: Vec<String>,
}

impl FrontendParser {
    fn new(connection: u32) -> Self {
        Self { connection, buffer: Vec::new(), started: false, names: HashMap::new(), pending: Vec::new() }
    }

    fn feed(&mut self, bytes: &[u8]) -> Vec<Exchange> {
        self.buffer.extend_from_slice(bytes);
        let mut found = Vec::new();
        loop {
            if !self.started {
                // Untyped: length (4) + code (4). 196608 is protocol 3.0's StartupMessage.
                if self.buffer.len() < 8 {
                    break;
                }
                let length = be32(&self.buffer[0..4]);
                if self.buffer.len() < length {
                    break;
                }
                if be32(&self.buffer[4..8]) == 196_608 {
                    self.started = true;
                }
                self.buffer.drain(..length.max(8));
                continue;
            }
            if self.buffer.len() < 5 {
                break;
            }
            let kind = self.buffer[0];
            let length = be32(&self.buffer[1..5]);
            if self.buffer.len() < 1 + length {
                break;
            }
            let body = self.buffer[5..1 + length.max(4)].to_vec();
            self.buffer.drain(..1 + length.max(4));
            let mut strings = body.split(|byte| *byte == 0).map(|part| String::from_utf8_lossy(part).into_owned());
            match kind {
                b'P' => {
                    let (name, sql) =
                        (strings.next().unwrap_or_default(), abbreviate(&strings.next().unwrap_or_default()));
                    self.pending.push(format!("prepare {sql}"));
                    self.names.insert(name, sql);
                }
                b'B' => {
                    let _portal = strings.next();
                    let statement = strings.next().unwrap_or_default();
                    let sql = self.names.get(&statement).cloned().unwrap_or(statement);
                    self.pending.push(sql);
                }
                b'Q' => {
                    let sql = abbreviate(&strings.next().unwrap_or_default());
                    self.pending.push(sql);
                    found.push(Exchange { connection: self.connection, statements: std::mem::take(&mut self.pending) });
                }
                b'S' => {
                    found.push(Exchange { connection: self.connection, statements: std::mem::take(&mut self.pending) })
                }
                _ => {}
            }
        }
        found
    }
}

fn be32(bytes: &[u8]) -> usize {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut message = vec![kind];
        message.extend_from_slice(&u32::try_from(body.len() + 4).unwrap().to_be_bytes());
        message.extend_from_slice(body);
        message
    }

    #[test]
    fn syncs_and_simple_queries_are_round_trips() {
        let mut parser = FrontendParser::new(1);
        let mut startup = Vec::new();
        startup.extend_from_slice(&16u32.to_be_bytes());
        startup.extend_from_slice(&196_608u32.to_be_bytes());
        startup.extend_from_slice(b"user\0x\0");
        startup.push(0);
        assert!(parser.feed(&startup).is_empty());
        let mut stream = message(b'P', b"s1\0SELECT 1\0\0\0");
        stream.extend(message(b'D', b"Ss1\0"));
        stream.extend(message(b'S', b""));
        stream.extend(message(b'B', b"\0s1\0\0\0\0\0\0\0"));
        stream.extend(message(b'E', b"\0\0\0\0\0"));
        stream.extend(message(b'S', b""));
        stream.extend(message(b'S', b""));
        stream.extend(message(b'Q', b"BEGIN\0"));
        // Fed in two pieces, split inside a message.
        let (first, second) = stream.split_at(7);
        let mut found = parser.feed(first);
        found.extend(parser.feed(second));
        let texts: Vec<String> = found.iter().map(Exchange::text).collect();
        assert_eq!(texts, ["prepare SELECT 1", "SELECT 1", "ping", "BEGIN"]);
    }

    #[test]
    fn audit_transactions_are_set_apart() {
        let exchange = |connection, text: &str| Exchange {
            connection,
            statements: if text == "ping" { vec![] } else { vec![text.to_owned()] },
        };
        let (own, audit) = classify_wire(vec![
            exchange(1, "ping"),
            exchange(1, "SELECT a"),
            exchange(2, "ping"),
            exchange(2, "BEGIN"),
            exchange(2, "INSERT INTO audit_events …"),
            exchange(2, "COMMIT"),
            exchange(1, "ping"),
            exchange(1, "BEGIN"),
            exchange(1, "UPDATE b"),
            exchange(1, "COMMIT"),
        ]);
        assert_eq!(own, ["ping", "SELECT a", "ping", "BEGIN", "UPDATE b", "COMMIT"]);
        assert_eq!(audit, 4);
        assert_eq!(mode(&[3, 4, 3, 5]), 3);
    }
}
