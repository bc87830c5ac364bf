//! A tokio `current_thread` heartbeat server: the tokio peer of
//! `benches/compare/heartbeat.sh`, built as the example `tokio_heartbeat`.
//!
//! ```sh
//! cargo build --release --example tokio_heartbeat
//! target/release/examples/tokio_heartbeat PORT [INTERVAL_MS=1000] [TIMEOUT_MS=5000]
//! ```
//!
//! It binds 127.0.0.1:PORT, prints `listening on ADDR`, and speaks the wire
//! protocol of `netloop serve heartbeat` for the lines a heartbeat client
//! sends: a `welcome` {message, clientId, heartbeatInterval} on connect; a
//! `ping` {timestamp, urgent, message} every interval; a `pong`
//! {timestamp (the client's), serverTime} to each client `ping`; `pong` and
//! `heartbeat` count as heartbeats; any other object is echoed (`echo`
//! {original, timestamp}); a line that is not a JSON object with a string
//! `type` gets an `error`; after `timeout` of silence, three urgent pings one
//! interval apart, then the connection is closed (detection within
//! `timeout + 3 × interval`, as in netloop). `status` and `server_status` are
//! left out: the load generator uses neither.
//!
//! The design is the one the tokio documentation teaches: one task per
//! connection that waits on its `tokio::time::interval` (missed ticks
//! delayed, not burst) and on its socket, and `write_all`s each line as it is
//! made, so every line is one `write` system call. Lines are parsed into a
//! typed struct (serde derive) and the replies formatted directly, so the JSON
//! work is as cheap as netloop's and what differs is the loop design.

use serde::Deserialize;
use serde_json::{Number, Value};
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{interval_at, Instant, MissedTickBehavior};

/// Longest accepted line (netloop's default line limit).
const MAX_LINE: usize = 64 * 1024;
/// Read buffer per connection: heartbeat lines are ~100 bytes, so 4 KiB
/// holds dozens; it grows to at most `MAX_LINE` + 4 KiB for a long line.
const READ_CHUNK: usize = 4096;
/// Urgent pings before a silent client is closed (netloop's `MAX_URGENT_PINGS`).
const MAX_URGENT_PINGS: u32 = 3;

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(default)]
    timestamp: Option<Number>,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn arg(n: usize, default: u64) -> u64 {
    std::env::args()
        .nth(n)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

enum Event {
    Tick,
    Read(usize),
}

/// What one line asks for: a reply line, or nothing.
fn answer(text: &str) -> Option<String> {
    if text.trim().is_empty() {
        return None;
    }
    let wall = unix_ms();
    let Ok(line) = serde_json::from_str::<Line>(text) else {
        // Not the common shape: the full parse decides between echo and error.
        return Some(match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) if m.get("type").is_some_and(Value::is_string) => {
                let echo = serde_json::json!({"type": "echo", "original": m, "timestamp": wall});
                format!("{echo}\n")
            }
            _ => format!(
                "{{\"message\":\"not a JSON object with a string type\",\"timestamp\":{wall},\"type\":\"error\"}}\n"
            ),
        });
    };
    match &*line.kind {
        "ping" => {
            let ts = line.timestamp.unwrap_or_else(|| Number::from(wall));
            Some(format!(
                "{{\"serverTime\":{wall},\"timestamp\":{ts},\"type\":\"pong\"}}\n"
            ))
        }
        "pong" | "heartbeat" => None,
        _ => {
            let echo = serde_json::json!({"type": "echo", "original": serde_json::from_str::<Value>(text).ok(), "timestamp": wall});
            Some(format!("{echo}\n"))
        }
    }
}

async fn client(mut s: TcpStream, id: u64, every: Duration, timeout: Duration) -> io::Result<()> {
    let welcome = format!(
        "{{\"clientId\":\"client-{id}\",\"heartbeatInterval\":{},\"message\":\"Welcome to the heartbeat server\",\"type\":\"welcome\"}}\n",
        every.as_millis()
    );
    s.write_all(welcome.as_bytes()).await?;
    let mut tick = interval_at(Instant::now() + every, every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut buf = vec![0u8; READ_CHUNK];
    let mut filled = 0;
    let mut last_seen = Instant::now();
    let mut urgent = 0u32;
    loop {
        let ev = poll_fn(|cx| {
            if tick.poll_tick(cx).is_ready() {
                return Poll::Ready(Ok(Event::Tick));
            }
            let mut rb = ReadBuf::new(&mut buf[filled..]);
            match Pin::new(&mut s).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => Poll::Ready(Ok(Event::Read(rb.filled().len()))),
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        })
        .await?;
        match ev {
            Event::Tick => {
                let silent = last_seen.elapsed() >= timeout;
                if silent {
                    if urgent == MAX_URGENT_PINGS {
                        return Ok(());
                    }
                    urgent += 1;
                }
                let text = if silent {
                    "urgent heartbeat check"
                } else {
                    "heartbeat check"
                };
                let ping = format!(
                    "{{\"message\":\"{text}\",\"timestamp\":{},\"type\":\"ping\",\"urgent\":{silent}}}\n",
                    unix_ms()
                );
                s.write_all(ping.as_bytes()).await?;
            }
            Event::Read(0) => return Ok(()),
            Event::Read(n) => {
                last_seen = Instant::now();
                if urgent > 0 {
                    // Back to regular pings.
                    urgent = 0;
                    tick.reset();
                }
                filled += n;
                let mut start = 0;
                while let Some(nl) = buf[start..filled].iter().position(|&b| b == b'\n') {
                    let line = &buf[start..start + nl];
                    let reply = match std::str::from_utf8(line) {
                        Ok(text) => answer(text.trim_end_matches('\r')),
                        Err(_) => Some("{\"type\":\"error\",\"message\":\"not UTF-8\"}\n".into()),
                    };
                    if let Some(reply) = reply {
                        s.write_all(reply.as_bytes()).await?;
                    }
                    start += nl + 1;
                }
                buf.copy_within(start..filled, 0);
                filled -= start;
                if filled > MAX_LINE {
                    s.write_all(b"{\"type\":\"error\",\"message\":\"line too long\"}\n")
                        .await?;
                    return Ok(());
                }
                if filled == buf.len() {
                    buf.resize(buf.len() + READ_CHUNK, 0);
                }
            }
        }
    }
}

fn main() -> io::Result<()> {
    let port = u16::try_from(arg(1, 0)).unwrap_or(0);
    let every = Duration::from_millis(arg(2, 1000).max(1));
    let timeout = Duration::from_millis(arg(3, 5000).max(1));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        println!("tokio heartbeat listening on {}", listener.local_addr()?);
        let mut next_id = 1u64;
        loop {
            let (s, _) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("accept: {e}");
                    // EMFILE and the like: do not spin on the listener.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = s.set_nodelay(true);
            let id = next_id;
            next_id += 1;
            tokio::spawn(client(s, id, every, timeout));
        }
    })
}
