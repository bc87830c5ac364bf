//! Access control shared by the servers (the seed let anyone connect): the shared-secret
//! [`Token`], a constant-time comparison, and the sans-IO per-connection
//! [`AuthGate`].
//!
//! Algorithm: a server started with `--token FILE` (or `NETLOOP_TOKEN` in the
//! environment) holds one [`Token`]. Each connection starts
//! [`AuthState::Pending`]; the client presents a token in its first message
//! (`/auth TOKEN`, an `auth` frame or JSON line, a `Token:` header line).
//! [`AuthGate::check`] compares it with [`constant_time_eq`] and returns a
//! [`Verdict`]: accepted (the gate is `authenticated` for good), rejected, or
//! rejected for the last time after [`MAX_AUTH_FAILURES`]. The caller answers
//! a rejection only after [`AUTH_FAILURE_DELAY`], reading nothing from the
//! connection meanwhile; after the last failure it closes the connection.
//! That delay alone bounds one connection, not a guesser who reconnects for
//! every guess, so every attempt first asks the server's [`AuthLimiter`]:
//! failures are token buckets per source address and in total, charged when
//! the token is compared (before any answer), and over the limit an attempt
//! is refused without being compared at all.
//!
//! Contract: the token is never logged and never echoed; its `Debug` form is
//! redacted. The seed had no authentication at all (protocols.md §1; its
//! tutorial only sketches a "send credentials, get a result" step after the
//! welcome), so every text here is new.

use std::fmt;
use std::path::Path;
use std::time::Duration;

/// Failed attempts on one connection before it is closed: enough for a typo
/// or two, few enough that a guesser must reconnect (and wait) constantly.
pub const MAX_AUTH_FAILURES: u32 = 3;

/// A wrong token is answered only after this long, with reading paused:
/// bounds guessing to about two attempts a second per connection.
pub const AUTH_FAILURE_DELAY: Duration = Duration::from_millis(500);

/// Largest token file accepted: a token is a short secret, and a large file
/// is a mistake (the wrong path) rather than a key.
pub const MAX_TOKEN_FILE: u64 = 4096;

/// The environment variable read when `--token` is not given.
pub const TOKEN_ENV: &str = "NETLOOP_TOKEN";

/// A connection that has not authenticated within this long is closed:
/// an unauthenticated peer must not hold a slot for ever (a server without
/// an idle timeout, like the heartbeat server, would otherwise keep it).
pub const AUTH_DEADLINE: Duration = Duration::from_secs(30);

/// Failed attempts on every connection since the process started (for the
/// log line; the token itself is never logged).
static FAILURES_TOTAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Count one failed attempt of `who` (`failures` on its connection) and log
/// it, without the token.
pub fn log_failure(who: &str, failures: u32) {
    let total = FAILURES_TOTAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    log::warn!(
        "{who}: authentication failed ({failures}/{MAX_AUTH_FAILURES} on this connection, {total} in all)"
    );
}

/// Failed attempts one source address may make in a burst: a user's typos
/// and a client retrying a few times, no more.
pub const ADDRESS_BURST: u32 = 5;

/// Failed attempts one source address regains per second once its burst is
/// spent: guessing from one address runs at this rate at most, however fast
/// it reconnects (the per-connection delay alone did not bound that).
pub const ADDRESS_REFILL_PER_SEC: f64 = 1.0;

/// Failed attempts all addresses together may make in a burst.
pub const GLOBAL_BURST: u32 = 30;

/// Failed attempts all addresses together regain per second: bounds an
/// attacker with many addresses (RELIABILITY.md has the arithmetic).
pub const GLOBAL_REFILL_PER_SEC: f64 = 10.0;

/// Source addresses tracked at once; the least recently seen is evicted
/// first. 4,096 entries of about 64 bytes: a quarter MiB at most, whatever
/// the number of addresses an attacker uses (the global bucket still
/// limits those whose entries were evicted).
pub const MAX_TRACKED_ADDRESSES: usize = 4096;

/// The key of a source address: IPv4 as it is; IPv6 by its /64 prefix, since
/// one host commonly holds a whole /64 and could otherwise rotate through it.
fn address_key(ip: std::net::IpAddr) -> u128 {
    match ip {
        std::net::IpAddr::V4(a) => u128::from(u32::from(a)),
        std::net::IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => u128::from(u32::from(v4)),
            None => (u128::from(a) & !u128::from(u64::MAX)) | (1 << 32),
        },
    }
}

/// A token bucket: `tokens` up to `burst`, refilled continuously.
#[derive(Copy, Clone, Debug)]
struct Bucket {
    tokens: f64,
    at: std::time::Instant,
    /// A refusal has been logged since the bucket last allowed an attempt.
    refusing: bool,
}

impl Bucket {
    fn full(burst: u32, now: std::time::Instant) -> Bucket {
        Bucket {
            tokens: f64::from(burst),
            at: now,
            refusing: false,
        }
    }

    fn refill(&mut self, burst: u32, per_sec: f64, now: std::time::Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * per_sec).min(f64::from(burst));
        self.at = now;
    }
}

/// Why an attempt was refused before the token was even compared.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Limited {
    /// This source address spent its failures; `log`: first refusal of
    /// this burst (log it; later ones are not).
    Address {
        /// Log this one.
        log: bool,
    },
    /// All addresses together spent theirs.
    Total {
        /// Log this one.
        log: bool,
    },
}

/// Sans-IO limiter of failed authentication attempts per source address and
/// in total, shared by every connection of a server.
///
/// Contract: call [`AuthLimiter::admit`] before comparing a presented token;
/// if it refuses, refuse the attempt without comparing (a right token too,
/// or the answer would tell a guesser it guessed right). After a wrong
/// token, call [`AuthLimiter::failed`]. A right token costs nothing. The
/// charge is made when the attempt is checked, before any answer, so a
/// client that closes without waiting for the answer gains nothing.
#[derive(Debug)]
pub struct AuthLimiter {
    global: Option<Bucket>,
    addresses: std::collections::HashMap<u128, Bucket>,
}

impl Default for AuthLimiter {
    fn default() -> Self {
        AuthLimiter::new()
    }
}

impl AuthLimiter {
    /// A limiter with every bucket full.
    pub fn new() -> AuthLimiter {
        AuthLimiter {
            global: None,
            addresses: std::collections::HashMap::new(),
        }
    }

    /// Source addresses tracked now (at most [`MAX_TRACKED_ADDRESSES`]).
    pub fn tracked(&self) -> usize {
        self.addresses.len()
    }

    /// May `ip` make an attempt at `now`?
    pub fn admit(&mut self, ip: std::net::IpAddr, now: std::time::Instant) -> Result<(), Limited> {
        let g = self
            .global
            .get_or_insert_with(|| Bucket::full(GLOBAL_BURST, now));
        g.refill(GLOBAL_BURST, GLOBAL_REFILL_PER_SEC, now);
        let key = address_key(ip);
        let addr = match self.addresses.get_mut(&key) {
            Some(b) => {
                b.refill(ADDRESS_BURST, ADDRESS_REFILL_PER_SEC, now);
                b.tokens
            }
            None => f64::from(ADDRESS_BURST),
        };
        if addr < 1.0 {
            let b = self.addresses.get_mut(&key);
            let log = b.is_some_and(|b| !std::mem::replace(&mut b.refusing, true));
            return Err(Limited::Address { log });
        }
        if g.tokens < 1.0 {
            let log = !std::mem::replace(&mut g.refusing, true);
            return Err(Limited::Total { log });
        }
        g.refusing = false;
        if let Some(b) = self.addresses.get_mut(&key) {
            b.refusing = false;
        }
        Ok(())
    }

    /// Charge a wrong token from `ip` at `now`.
    pub fn failed(&mut self, ip: std::net::IpAddr, now: std::time::Instant) {
        let g = self
            .global
            .get_or_insert_with(|| Bucket::full(GLOBAL_BURST, now));
        g.refill(GLOBAL_BURST, GLOBAL_REFILL_PER_SEC, now);
        g.tokens = (g.tokens - 1.0).max(0.0);
        let key = address_key(ip);
        if !self.addresses.contains_key(&key) && self.addresses.len() >= MAX_TRACKED_ADDRESSES {
            self.evict_oldest();
        }
        let b = self
            .addresses
            .entry(key)
            .or_insert_with(|| Bucket::full(ADDRESS_BURST, now));
        b.refill(ADDRESS_BURST, ADDRESS_REFILL_PER_SEC, now);
        b.tokens = (b.tokens - 1.0).max(0.0);
    }

    /// Drop the entry touched least recently (O(n), only when the table is
    /// full; failures are charged only after the global bucket admitted
    /// them, so this runs at most [`GLOBAL_REFILL_PER_SEC`] times a second
    /// after a burst).
    fn evict_oldest(&mut self) {
        let oldest = self
            .addresses
            .iter()
            .min_by(|a, b| a.1.at.cmp(&b.1.at))
            .map(|(k, _)| *k);
        if let Some(k) = oldest {
            self.addresses.remove(&k);
        }
    }
}

/// Log a refusal by the limiter (once per burst: `l` says whether).
pub fn log_limited(who: &str, l: Limited) {
    match l {
        Limited::Address { log: true } => log::warn!(
            "{who}: too many failed authentications from this address; refusing its attempts \
             for now (further refusals of this burst are not logged)"
        ),
        Limited::Total { log: true } => log::warn!(
            "{who}: too many failed authentications in total; refusing all attempts for now \
             (further refusals of this burst are not logged)"
        ),
        _ => {}
    }
}

/// The shared secret a client must present.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Why a token could not be loaded.
#[derive(Debug)]
pub enum TokenError {
    /// The file could not be opened or read.
    Io(std::io::Error),
    /// The file is larger than [`MAX_TOKEN_FILE`].
    TooLarge(u64),
    /// The file (or variable) is empty once one trailing newline is removed.
    Empty,
    /// The token contains a character that no client could send in a line
    /// (a control character or whitespace other than inside), or is not UTF-8.
    Invalid,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::Io(e) => write!(f, "cannot read the token file: {e}"),
            TokenError::TooLarge(n) => write!(
                f,
                "the token file has {n} bytes; a token file may have at most {MAX_TOKEN_FILE}"
            ),
            TokenError::Empty => f.write_str("the token is empty"),
            TokenError::Invalid => {
                f.write_str("the token must be UTF-8 text without whitespace or control characters")
            }
        }
    }
}

impl std::error::Error for TokenError {}

impl Token {
    /// A token from its text: one trailing `\n` (or `\r\n`) is removed; the
    /// rest must be non-empty, without whitespace or control characters
    /// (so `/auth TOKEN` and `Token: TOKEN` can carry it).
    pub fn from_text(text: &str) -> Result<Token, TokenError> {
        let t = text.strip_suffix('\n').unwrap_or(text);
        let t = t.strip_suffix('\r').unwrap_or(t);
        if t.is_empty() {
            return Err(TokenError::Empty);
        }
        if t.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(TokenError::Invalid);
        }
        Ok(Token(t.to_owned()))
    }

    /// A token read from `path` (at most [`MAX_TOKEN_FILE`] bytes).
    pub fn from_file(path: &Path) -> Result<Token, TokenError> {
        let len = std::fs::metadata(path).map_err(TokenError::Io)?.len();
        if len > MAX_TOKEN_FILE {
            return Err(TokenError::TooLarge(len));
        }
        let bytes = std::fs::read(path).map_err(TokenError::Io)?;
        if bytes.len() as u64 > MAX_TOKEN_FILE {
            return Err(TokenError::TooLarge(bytes.len() as u64));
        }
        let text = String::from_utf8(bytes).map_err(|_| TokenError::Invalid)?;
        Token::from_text(&text)
    }

    /// `--token FILE` if given, else [`TOKEN_ENV`] if set, else no token
    /// (access control off).
    pub fn configured(file: Option<&Path>) -> Result<Option<Token>, TokenError> {
        if let Some(p) = file {
            return Token::from_file(p).map(Some);
        }
        match std::env::var(TOKEN_ENV) {
            Ok(v) => Token::from_text(&v).map(Some),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(TokenError::Invalid),
        }
    }

    /// The secret itself, for a client to send (`/auth`, an `auth` message,
    /// a `Token:` header). Never log or print it.
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is this token, in constant time.
    pub fn matches(&self, presented: &[u8]) -> bool {
        constant_time_eq(self.0.as_bytes(), presented)
    }
}

/// `a == b` in time that depends only on the lengths, never on where the
/// first difference is: every byte of the longer input is visited and the
/// differences are OR-ed together, with no early exit.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().max(b.len());
    // A length difference is folded in like a byte difference.
    let mut diff = (a.len() ^ b.len()) as u64;
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= u64::from(x ^ y);
    }
    std::hint::black_box(diff) == 0
}

/// `line` for a log: an `/auth` command loses its argument, so a token sent
/// again (or by a client of a server without `--token`) is never logged.
pub fn redact_auth(line: &str) -> std::borrow::Cow<'_, str> {
    let first = line.split_whitespace().next().unwrap_or("");
    if first.eq_ignore_ascii_case("/auth") {
        std::borrow::Cow::Borrowed("/auth <redacted>")
    } else {
        std::borrow::Cow::Borrowed(line)
    }
}

/// Where a connection is in authentication.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum AuthState {
    /// No valid token yet; `failures` wrong ones so far.
    Pending {
        /// Rejected attempts on this connection.
        failures: u32,
    },
    /// A valid token was presented.
    Authenticated,
}

impl fmt::Display for AuthState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthState::Pending { .. } => "pending",
            AuthState::Authenticated => "authenticated",
        })
    }
}

/// The outcome of one attempt.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The token is right: serve the connection.
    Accepted,
    /// Wrong: answer after [`AUTH_FAILURE_DELAY`]; `failures` so far.
    Rejected {
        /// Rejected attempts on this connection, this one included.
        failures: u32,
    },
    /// Wrong for the [`MAX_AUTH_FAILURES`]th time: answer after the delay,
    /// then close.
    Closed,
}

/// Sans-IO authentication state of one connection.
#[derive(Clone, Debug)]
pub struct AuthGate {
    state: AuthState,
}

impl Default for AuthGate {
    fn default() -> Self {
        AuthGate::new()
    }
}

impl AuthGate {
    /// A gate with no attempt yet.
    pub fn new() -> AuthGate {
        AuthGate {
            state: AuthState::Pending { failures: 0 },
        }
    }

    /// The current state.
    pub fn state(&self) -> AuthState {
        self.state
    }

    /// Whether a valid token was presented.
    pub fn is_authenticated(&self) -> bool {
        self.state == AuthState::Authenticated
    }

    /// Check `presented` against `token`.
    pub fn check(&mut self, token: &Token, presented: &[u8]) -> Verdict {
        if self.is_authenticated() {
            return Verdict::Accepted;
        }
        if token.matches(presented) {
            self.state = AuthState::Authenticated;
            Verdict::Accepted
        } else {
            self.fail()
        }
    }

    /// Count a failed attempt that presented no token at all (a first
    /// message of the wrong kind).
    pub fn fail(&mut self) -> Verdict {
        let failures = match self.state {
            AuthState::Pending { failures } => failures.saturating_add(1),
            AuthState::Authenticated => return Verdict::Accepted,
        };
        self.state = AuthState::Pending { failures };
        if failures >= MAX_AUTH_FAILURES {
            Verdict::Closed
        } else {
            Verdict::Rejected { failures }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_is_eq() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"secret", b""));
        assert!(!constant_time_eq(b"", b"x"));
        // Same bytes, shifted by a length difference of 256: still unequal.
        let long = vec![0u8; 256];
        assert!(!constant_time_eq(&long, b""));
    }

    #[test]
    fn token_text_rules() {
        assert_eq!(
            Token::from_text("abc\n").map(|t| t.0).ok(),
            Some("abc".into())
        );
        assert_eq!(
            Token::from_text("abc\r\n").map(|t| t.0).ok(),
            Some("abc".into())
        );
        assert!(matches!(Token::from_text("\n"), Err(TokenError::Empty)));
        assert!(matches!(Token::from_text(""), Err(TokenError::Empty)));
        assert!(matches!(Token::from_text("a b"), Err(TokenError::Invalid)));
        assert!(matches!(
            Token::from_text("abc\n\n"),
            Err(TokenError::Invalid)
        ));
        assert_eq!(
            format!("{:?}", Token::from_text("s3cret")),
            "Ok(Token(<redacted>))"
        );
    }

    #[test]
    fn token_file_limits() {
        let dir = std::env::temp_dir().join(format!("netloop-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let big = dir.join("big");
        std::fs::write(&big, vec![b'a'; MAX_TOKEN_FILE as usize + 1]).unwrap();
        assert!(matches!(
            Token::from_file(&big),
            Err(TokenError::TooLarge(_))
        ));
        let ok = dir.join("ok");
        std::fs::write(&ok, "tok\n").unwrap();
        assert!(Token::from_file(&ok).unwrap().matches(b"tok"));
        assert!(matches!(
            Token::from_file(&dir.join("missing")),
            Err(TokenError::Io(_))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn auth_lines_are_redacted() {
        assert_eq!(redact_auth("/AUTH secret"), "/auth <redacted>");
        assert_eq!(redact_auth("/info"), "/info");
    }

    #[test]
    fn limiter_bounds_failures_per_address_and_refills() {
        let t0 = std::time::Instant::now();
        let a: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let b: std::net::IpAddr = "127.0.0.2".parse().unwrap();
        let mut l = AuthLimiter::new();
        for _ in 0..ADDRESS_BURST {
            assert_eq!(l.admit(a, t0), Ok(()));
            l.failed(a, t0);
        }
        // Spent: refused, logged once per burst.
        assert_eq!(l.admit(a, t0), Err(Limited::Address { log: true }));
        assert_eq!(l.admit(a, t0), Err(Limited::Address { log: false }));
        // Another address is not affected.
        assert_eq!(l.admit(b, t0), Ok(()));
        // One attempt back after 1 / rate seconds, then refused again.
        let t1 = t0 + std::time::Duration::from_secs_f64(1.0 / ADDRESS_REFILL_PER_SEC);
        assert_eq!(l.admit(a, t1), Ok(()));
        l.failed(a, t1);
        assert_eq!(l.admit(a, t1), Err(Limited::Address { log: true }));
    }

    #[test]
    fn limiter_bounds_failures_in_total() {
        let t0 = std::time::Instant::now();
        let mut l = AuthLimiter::new();
        let mut admitted = 0;
        for i in 0..1000u32 {
            let ip = std::net::IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            if l.admit(ip, t0).is_ok() {
                admitted += 1;
                l.failed(ip, t0);
            }
        }
        assert_eq!(admitted, GLOBAL_BURST);
        let ip = std::net::IpAddr::from([10, 9, 9, 9]);
        assert_eq!(l.admit(ip, t0), Err(Limited::Total { log: false }));
    }

    #[test]
    fn limiter_table_is_capped_and_ipv6_counts_per_64() {
        let mut now = std::time::Instant::now();
        let mut l = AuthLimiter::new();
        // Spread over time so the global bucket never runs dry.
        for i in 0..(MAX_TRACKED_ADDRESSES as u32 + 100) {
            now += std::time::Duration::from_secs(1);
            let ip = std::net::IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            assert!(l.admit(ip, now).is_ok());
            l.failed(ip, now);
            assert!(l.tracked() <= MAX_TRACKED_ADDRESSES);
        }
        // Two addresses of one /64 share a bucket.
        let mut l = AuthLimiter::new();
        let t0 = std::time::Instant::now();
        for i in 0..ADDRESS_BURST {
            let ip: std::net::IpAddr = format!("2001:db8::{i:x}").parse().unwrap();
            assert!(l.admit(ip, t0).is_ok());
            l.failed(ip, t0);
        }
        let other: std::net::IpAddr = "2001:db8::ffff:1".parse().unwrap();
        assert!(l.admit(other, t0).is_err());
        let next_net: std::net::IpAddr = "2001:db8:0:1::1".parse().unwrap();
        assert!(l.admit(next_net, t0).is_ok());
    }

    #[test]
    fn gate_counts_failures_and_closes() {
        let t = Token::from_text("tok").unwrap();
        let mut g = AuthGate::new();
        assert_eq!(g.check(&t, b"bad"), Verdict::Rejected { failures: 1 });
        assert_eq!(g.fail(), Verdict::Rejected { failures: 2 });
        assert_eq!(g.check(&t, b"tok2"), Verdict::Closed);
        let mut g = AuthGate::new();
        assert_eq!(g.check(&t, b"x"), Verdict::Rejected { failures: 1 });
        assert_eq!(g.check(&t, b"tok"), Verdict::Accepted);
        assert!(g.is_authenticated());
        assert_eq!(g.state().to_string(), "authenticated");
    }
}
