//! Budgets, limits and defaults of the loop, each with the reason for its value.

use std::time::Duration;

/// Bytes asked for per `read()`. libuv suggests 64 KiB to its `alloc_cb`,
/// but a loopback segment is up to 64 KiB and a busy socket holds several:
/// asking for 256 KiB takes them in one call. Measured on the stream 64 KiB
/// × 50 cell (BENCHMARKS.md, "Read size"): with 64 KiB the echo server was
/// the full core at ~430 µs/MB (tokio ~410); with 256 KiB ~380 µs/MB, and
/// as generator it raised the ceiling of every peer by ~10 %. The buffer is
/// one per loop, not per connection; what a partial write leaves of it is
/// bounded by the kernel's own send buffer, which is larger.
pub const READ_CHUNK: usize = 256 * 1024;

/// Largest emptied read buffer the loop keeps for the next read of any
/// connection (one spare per loop, not per connection): small echoes then
/// cost no allocation, and a buffer that grew for one big message is freed.
/// Never below [`READ_CHUNK`], or the loop's own buffer would not come back.
pub const SPARE_READ_BUFFER_MAX: usize = READ_CHUNK;

/// A connection keeps what the application left unread in the loop's read
/// buffer only if it fills at least a quarter of it; a smaller rest is
/// copied out and the big buffer goes back to the loop. Otherwise a few
/// bytes of a partial message would pin 64 KiB per slow peer (slowloris).
pub const KEEP_READ_BUFFER_MIN_FILL: usize = 4;

/// `write_from()` copies an unsent remainder up to this size into its own
/// buffer, so the read buffer stays reusable; a larger one is handed over
/// without a copy (a copy would cost more than the allocation it saves).
pub const WRITE_COPY_MAX: usize = 4 * 1024;

/// Reads per connection per wakeup before it is parked on the ready list
/// (Netty reads 16 messages per loop, libuv 32): fairness under edge triggers.
pub const READ_BUDGET_CALLS: usize = 16;

/// Bytes read per connection per wakeup before it is parked: one busy peer
/// cannot starve the others (mio #45). One full [`READ_CHUNK`]: raising it
/// to 1 MiB measured no gain (BENCHMARKS.md, "Read size").
pub const READ_BUDGET_BYTES: usize = READ_CHUNK;

/// Bytes written per connection per wakeup before it is parked. Redis uses
/// 64 KiB; loopback buffers take more, so we match the read budget.
pub const WRITE_BUDGET_BYTES: usize = READ_BUDGET_BYTES;

/// Accepts per listener per wakeup before the listener is parked on the ready
/// list (envoy PR #27773: a capped accept loop must be re-visited, or the
/// backlog sits there with no further edge).
pub const ACCEPT_BUDGET: usize = 64;

/// At shutdown, rounds of [`ACCEPT_BUDGET`] accepts taken from a listener's
/// queue before it is closed: 64 × 64 = 4096, the kernel's default
/// `somaxconn`, so a full default backlog is taken in; a flood that keeps
/// refilling it cannot hold the shutdown.
pub const SHUTDOWN_ACCEPT_ROUNDS: usize = 64;

/// Capacity of the `Events` array handed to `epoll_wait`.
pub const EVENTS_CAPACITY: usize = 1024;

/// First pause of the accept loop after EMFILE/ENFILE (then doubled).
pub const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(50);

/// Longest pause of the accept loop under descriptor exhaustion (Netty: 1 s).
pub const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Queued connections shed per EMFILE episode: bounds the work of the
/// reserve-descriptor trick when a flood keeps the backlog full.
pub const EMFILE_SHED_MAX: usize = 1024;

/// Default high-water mark of a write queue: `write()` returns false at or
/// above it (Node's default since v22, nodejs/node PR #52037).
pub const DEFAULT_HIGH_WATER_MARK: usize = 64 * 1024;

/// Default hard cap of a write queue: a peer whose queue would pass it is
/// destroyed as a slow consumer (Redis client-output-buffer-limit).
pub const DEFAULT_MAX_WRITE_BUFFER: usize = 8 * 1024 * 1024;

/// Default listen backlog, Node's.
pub const DEFAULT_BACKLOG: i32 = 511;

/// Longest idle timeout (`set_idle_timeout`), in ms: longer ones are
/// clamped to it (49.7 days). A connection keeps it in 32 bits, one of the
/// fields every read and write touches (see `conn::Conn`); Node refuses
/// anything above 2^31 − 1 ms for its timers.
pub const MAX_IDLE_TIMEOUT_MS: u32 = u32::MAX;

/// Default connect timeout for outbound connections.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Default grace period of a graceful shutdown before the remaining
/// connections are destroyed.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// Per-socket options: what `net.Socket` takes as constructor options.
#[derive(Clone, Debug)]
pub struct SocketOptions {
    /// Keep our write side open after the peer's FIN (Node's `allowHalfOpen`).
    pub allow_half_open: bool,
    /// `TCP_NODELAY`: on by default (Nagle + delayed ACK stalls small
    /// request/response traffic by ~40 ms, seastar #968).
    pub no_delay: bool,
    /// `write()` returns false at or above this many queued bytes.
    pub high_water_mark: usize,
    /// Destroy the connection as a slow consumer past this queue footprint.
    pub max_write_buffer: usize,
    /// Inactivity timeout (`socket.setTimeout`); `None` = off.
    pub idle_timeout: Option<Duration>,
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            allow_half_open: false,
            no_delay: true,
            high_water_mark: DEFAULT_HIGH_WATER_MARK,
            max_write_buffer: DEFAULT_MAX_WRITE_BUFFER,
            idle_timeout: None,
        }
    }
}

impl SocketOptions {
    /// The low-water mark: `drain` fires when the queue falls below it.
    /// Half the high-water mark, as Netty's 32/64 KiB pair, for hysteresis.
    pub fn low_water_mark(&self) -> usize {
        self.high_water_mark / 2
    }
}

/// Options of `listen()`.
#[derive(Clone, Debug)]
pub struct ListenOptions {
    /// Host or IP to bind; `127.0.0.1` by default.
    pub host: String,
    /// Port; 0 picks a free one (see `Reactor::server_addr`).
    pub port: u16,
    /// Listen backlog.
    pub backlog: i32,
    /// Connections over this count are accepted, closed and reported as
    /// `drop` (Node's `server.maxConnections`). `None` = unlimited.
    pub max_connections: Option<usize>,
    /// Options given to every accepted socket.
    pub socket: SocketOptions,
    /// Set `SO_REUSEPORT`, so several listeners (one per worker thread or
    /// process) can bind the same address and the kernel spreads new
    /// connections among them. Linux only lets sockets of the same
    /// effective user join such a group.
    pub reuse_port: bool,
    /// TLS on every accepted connection (see `reactor::tls`); `None`:
    /// plain TCP.
    pub tls: Option<crate::reactor::tls::ServerTls>,
}

impl ListenOptions {
    /// The defaults (127.0.0.1, backlog, no connection limit) on `port`.
    pub fn port(port: u16) -> ListenOptions {
        ListenOptions {
            port,
            ..Default::default()
        }
    }
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions {
            host: "127.0.0.1".into(),
            port: 0,
            backlog: DEFAULT_BACKLOG,
            max_connections: None,
            socket: SocketOptions::default(),
            reuse_port: false,
            tls: None,
        }
    }
}

/// Options of `connect()`.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// Give up (ETIMEDOUT) if not connected within this time.
    pub timeout: Duration,
    /// Options of the socket once connected.
    pub socket: SocketOptions,
    /// Bind to this local address (port chosen by the kernel) before
    /// connecting: Node's `localAddress`. `None`: the kernel picks both.
    pub local_address: Option<std::net::IpAddr>,
    /// TLS over the connection (see `reactor::tls`); `None`: plain TCP.
    pub tls: Option<crate::reactor::tls::ClientTls>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            timeout: DEFAULT_CONNECT_TIMEOUT,
            socket: SocketOptions::default(),
            local_address: None,
            tls: None,
        }
    }
}
