//! Listening sockets: `listen`, the accept loop, `maxConnections`, EMFILE.
//!
//! The accept loop takes up to [`ACCEPT_BUDGET`] connections per wakeup and
//! parks the listener on the ready list if the budget ran out (edge triggers:
//! no second event comes for a backlog that is still full, envoy PR #27773).
//!
//! Descriptor exhaustion (EMFILE/ENFILE, and ENOBUFS/ENOMEM) must neither spin
//! nor stall (libuv #690, tokio #3529/#4782, bun PR #32705). We close our
//! reserve descriptor, accept and close what is queued so those peers get a
//! clean close instead of hanging (libuv's `uv__emfile_trick`), reopen the
//! reserve, and pause accepting for a backoff (50 ms doubling to 1 s, Netty
//! #1328) while existing connections go on being served. Per-connection
//! failures such as ECONNABORTED start no backoff (swindon-rs/tk-http #25).

use crate::reactor::config::{
    ListenOptions, ACCEPT_BACKOFF_MAX, ACCEPT_BACKOFF_MIN, ACCEPT_BUDGET, EMFILE_SHED_MAX,
    SHUTDOWN_ACCEPT_ROUNDS,
};
use crate::reactor::conn::state::State;
use crate::reactor::conn::Conn;
use crate::reactor::loopstats::{Callback, Site};
use crate::reactor::net::error::{ErrorCode, NetError};
use crate::reactor::service::{ServerEvent, NO_STATE};
use crate::reactor::timers::TimerEntry;
use crate::reactor::token::{ConnId, Key, Kind, ServerId};
use crate::reactor::Reactor;
use mio::net::TcpListener;
use mio::Interest;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// A listening server as the reactor stores it.
#[derive(Debug)]
pub struct Server {
    /// The listener; `None` once `close()` was called.
    pub listener: Option<TcpListener>,
    /// Bound address (with the real port when 0 was asked for).
    pub addr: SocketAddr,
    /// Options, including those given to accepted sockets.
    pub opts: ListenOptions,
    /// Live connections accepted by this server.
    pub conns: usize,
    /// On the ready list.
    pub in_ready: bool,
    /// Accepting is paused after descriptor exhaustion.
    pub accept_paused: bool,
    /// Next accept pause.
    pub backoff: Duration,
    /// The service its connections and events go to.
    pub(crate) owner: Key,
}

fn is_resource_exhaustion(e: &io::Error) -> bool {
    // EMFILE 24, ENFILE 23, ENOBUFS 105, ENOMEM 12 on Linux.
    matches!(e.raw_os_error(), Some(23) | Some(24) | Some(105) | Some(12))
}

fn bind_listener(addr: SocketAddr, backlog: i32, reuse_port: bool) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // Node sets SO_REUSEADDR on every server socket: restart without waiting
    // out TIME_WAIT.
    sock.set_reuse_address(true)?;
    if reuse_port {
        // One listener per worker on the same port; the kernel hashes each
        // new connection's addresses and ports to one of them (LWN 542629).
        sock.set_reuse_port(true)?;
    }
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(backlog)?;
    Ok(TcpListener::from_std(sock.into()))
}

/// Drop every new SYN that reaches `l` from now on, so no new handshake
/// starts; the last ACK of a handshake already in flight still passes and
/// completes it into the queue, which is then taken in. A classic BPF
/// program run on the TCP header (what a socket filter on a TCP socket
/// sees): load the flags byte, keep SYN and ACK, drop (return 0) when only
/// SYN is set, accept the packet whole (return `u32::MAX`) otherwise.
#[cfg(target_os = "linux")]
fn refuse_new_handshakes(l: &TcpListener) -> io::Result<()> {
    use socket2::SockFilter;
    const LD_B_ABS: u16 = 0x30; // BPF_LD | BPF_B | BPF_ABS
    const ALU_AND_K: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K
    const JMP_JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const TCP_FLAGS_OFFSET: u32 = 13;
    const SYN: u32 = 0x02;
    const ACK: u32 = 0x10;
    let program = [
        SockFilter::new(LD_B_ABS, 0, 0, TCP_FLAGS_OFFSET),
        SockFilter::new(ALU_AND_K, 0, 0, SYN | ACK),
        // Only SYN: fall through to the drop; otherwise skip it.
        SockFilter::new(JMP_JEQ_K, 0, 1, SYN),
        SockFilter::new(RET_K, 0, 0, 0),
        SockFilter::new(RET_K, 0, 0, u32::MAX),
    ];
    socket2::SockRef::from(l).attach_filter(&program)
}

/// Elsewhere the queue is taken in as it is.
#[cfg(not(target_os = "linux"))]
fn refuse_new_handshakes(_: &TcpListener) -> io::Result<()> {
    Ok(())
}

impl Reactor {
    /// `server.listen(port, host, backlog)` for the service `owner`
    /// ([`Reactor::serve`], [`crate::Cx::listen`]). The address is known at
    /// once ([`Reactor::server_addr`]); `on_listening` follows from the loop.
    pub(crate) fn listen_owned(
        &mut self,
        opts: ListenOptions,
        owner: Key,
    ) -> Result<ServerId, NetError> {
        let addr = (opts.host.as_str(), opts.port)
            .to_socket_addrs()
            .map_err(|e| {
                NetError::new(
                    ErrorCode::NotFound,
                    "getaddrinfo",
                    format!("{}: {e}", opts.host),
                )
            })?
            .next()
            .ok_or_else(|| NetError::new(ErrorCode::NotFound, "getaddrinfo", opts.host.clone()))?;
        let mut listener = bind_listener(addr, opts.backlog, opts.reuse_port)
            .map_err(|e| NetError::new(ErrorCode::from_io(&e), "listen", format!("{addr}: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| NetError::from_io("listen", &e))?;
        if !addr.ip().is_loopback() && opts.tls.is_none() {
            log::warn!(
                "listening on {addr}, which is reachable from other hosts: this service has no encryption"
            );
        }
        // Registered before it is stored: a registration that fails leaves
        // no server entry without a listener, which nothing could remove and
        // which would keep the loop alive forever.
        let registry = self.poll.registry();
        let key = self.servers.try_insert_with(&mut self.gens, |key| {
            registry
                .register(
                    &mut listener,
                    Reactor::token_of(Kind::Listener, key),
                    Interest::READABLE,
                )
                .map_err(|e| NetError::from_io("listen", &e))?;
            Ok(Server {
                listener: Some(listener),
                addr,
                opts,
                conns: 0,
                in_ready: false,
                accept_paused: false,
                backoff: ACCEPT_BACKOFF_MIN,
                owner,
            })
        })?;
        let sid = ServerId(key);
        self.pending
            .push_back(crate::reactor::Pending::Listening(sid, addr));
        Ok(sid)
    }

    /// The address a server is bound to (`server.address()`).
    pub fn server_addr(&self, server: ServerId) -> Option<SocketAddr> {
        self.servers.get(server.0).map(|s| s.addr)
    }

    /// Connections a server currently has (`server.getConnections`).
    pub fn server_connections(&self, server: ServerId) -> usize {
        self.servers.get(server.0).map_or(0, |s| s.conns)
    }

    /// `server.close()`: stop accepting. Existing connections go on; the
    /// server's `close` fires once the last of them has closed.
    pub fn close_server(&mut self, server: ServerId) {
        let key = server.0;
        let Some(s) = self.servers.get_mut(key) else {
            return;
        };
        let Some(mut l) = s.listener.take() else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut l);
        drop(l);
        if s.conns == 0 {
            self.closing_servers.push(key);
        }
    }

    /// A connection of `key` went away: maybe deliver the server's `close`.
    pub(crate) fn server_conn_closed(&mut self, key: Key) {
        if let Some(s) = self.servers.get_mut(key) {
            s.conns = s.conns.saturating_sub(1);
            if s.conns == 0 && s.listener.is_none() {
                self.closing_servers.push(key);
            }
        }
    }

    /// The accept loop (see the module docs).
    pub(crate) fn accept(&mut self, key: Key) {
        if self.accept_some(key) {
            self.park(Kind::Listener, key);
        }
    }

    /// Accept what the kernel has already queued for `key`, before its
    /// listener is closed. Closing a listener resets every connection still
    /// in its accept queue, although those clients saw their handshake
    /// complete (LWN 542629; envoy #8031 for `SO_REUSEPORT` groups). Taken
    /// in, they are ended cleanly by the drain like every other connection.
    ///
    /// First a socket filter that drops every packet is attached to the
    /// listener, so no new handshake completes into the queue while it is
    /// taken in: a client whose SYN is dropped retries it a second later
    /// and is then refused by the closed port, never reset after its
    /// `connect()` succeeded. (Without it, a handshake completing between
    /// the last `accept` and the close was reset; the workers' SIGTERM test
    /// saw it on a loaded machine.)
    pub(crate) fn accept_queued(&mut self, key: Key) {
        if let Some(l) = self.servers.get(key).and_then(|s| s.listener.as_ref()) {
            if let Err(e) = refuse_new_handshakes(l) {
                log::debug!("{}: cannot stop new handshakes: {e}", ServerId(key));
            }
        }
        for _ in 0..SHUTDOWN_ACCEPT_ROUNDS {
            if !self.accept_some(key) {
                return;
            }
        }
    }

    /// Accept up to [`ACCEPT_BUDGET`] connections. True if the budget ran
    /// out (more may be queued), false once the queue is empty or the
    /// listener cannot accept now.
    fn accept_some(&mut self, key: Key) -> bool {
        for _ in 0..ACCEPT_BUDGET {
            let Some(s) = self.servers.get_mut(key) else {
                return false;
            };
            if s.accept_paused {
                return false;
            }
            let Some(listener) = s.listener.as_ref() else {
                return false;
            };
            match listener.accept() {
                Ok((stream, peer)) => {
                    s.backoff = ACCEPT_BACKOFF_MIN;
                    if s.opts.max_connections.is_some_and(|max| s.conns >= max) {
                        drop(stream);
                        self.stats.dropped += 1;
                        log::debug!("{}: over max_connections, dropped {peer}", ServerId(key));
                        let owner = s.owner;
                        self.server_event(owner, ServerId(key), ServerEvent::Drop(peer));
                        continue;
                    }
                    s.conns += 1;
                    let owner = s.owner;
                    let opts = s.opts.socket.clone();
                    let tls = s.opts.tls.clone();
                    self.stats.accepted += 1;
                    if opts.no_delay {
                        let _ = stream.set_nodelay(true);
                    }
                    let id =
                        self.add_conn(stream, State::Open, Some(ServerId(key)), Some(peer), opts);
                    let Some(id) = id else {
                        self.server_conn_closed(key);
                        continue;
                    };
                    if let Some(tls) = &tls {
                        // Closed on failure; `close` still reaches the service.
                        self.tls_attach_server(id.0, tls);
                    }
                    log::debug!("{id} accepted from {peer}");
                    let sid = ServerId(key);
                    let slot = self
                        .with_host_raw(owner, Site::conn(Callback::Connection, id), |host, r| {
                            host.accept(r, sid, id)
                        })
                        .unwrap_or(NO_STATE);
                    self.set_owner(id.0, owner, slot);
                    if slot == NO_STATE {
                        // Refused: its events reach nobody.
                        self.close_conn(id.0, None);
                    }
                    // The boundary of `connection`, once the connection
                    // knows its service (a `drain` it caused goes there).
                    self.deliver_pending();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_resource_exhaustion(&e) => {
                    self.fd_exhausted(key, &e);
                    return false;
                }
                Err(e) => {
                    // ECONNABORTED and friends: that peer is gone, go on.
                    log::debug!("{}: accept: {e}", ServerId(key));
                }
            }
        }
        true
    }

    fn fd_exhausted(&mut self, key: Key, e: &io::Error) {
        self.stats.fd_exhaustion += 1;
        // Free our reserve descriptor so accept() can succeed, then close what
        // is queued: those peers see a close instead of a hang.
        self.spare_fd = None;
        let mut shed = 0;
        if let Some(l) = self.servers.get(key).and_then(|s| s.listener.as_ref()) {
            while shed < EMFILE_SHED_MAX {
                match l.accept() {
                    Ok((stream, _)) => {
                        drop(stream);
                        shed += 1;
                    }
                    Err(_) => break,
                }
            }
        }
        self.stats.shed += shed as u64;
        self.spare_fd = std::fs::File::open("/dev/null").ok();
        let Some(s) = self.servers.get_mut(key) else {
            return;
        };
        let pause = s.backoff;
        s.backoff = (s.backoff * 2).min(ACCEPT_BACKOFF_MAX);
        s.accept_paused = true;
        if self.stats.fd_exhaustion.is_power_of_two() {
            // Logged at 1, 2, 4, 8, ... episodes: a flood cannot flood the log
            // (tokio #3529).
            log::warn!(
                "{}: {e}; shed {shed} queued connection(s), pausing accept for {pause:?} ({} episode(s))",
                ServerId(key),
                self.stats.fd_exhaustion
            );
        }
        self.arm(pause, TimerEntry::AcceptBackoff(key));
        let err = NetError::from_io("accept", e);
        if let Some(owner) = self.servers.get(key).map(|s| s.owner) {
            self.server_event(owner, ServerId(key), ServerEvent::Error(&err));
        }
    }

    /// Register a connected stream and store it. `None` if registration failed.
    pub(crate) fn add_conn(
        &mut self,
        stream: mio::net::TcpStream,
        state: State,
        server: Option<ServerId>,
        peer: Option<SocketAddr>,
        opts: crate::reactor::config::SocketOptions,
    ) -> Option<ConnId> {
        let idle = opts.idle_timeout;
        let mut conn = Conn::new(Some(stream), state, server, peer, opts, self.now_tick);
        // A fresh socket has room in its send buffer: let the first write go
        // straight out instead of waiting for the registration's edge.
        conn.writable = state == State::Open;
        let key = self.conns.insert(&mut self.gens, conn);
        let token = Reactor::token_of(Kind::Conn, key);
        let registered = match self.conns.get_mut(key).and_then(|c| c.stream.as_mut()) {
            Some(stream) => self.poll.registry().register(
                stream,
                token,
                Interest::READABLE | Interest::WRITABLE,
            ),
            None => Ok(()),
        };
        if let Err(e) = registered {
            log::warn!("register: {e}");
            self.conns.remove(key);
            return None;
        }
        let id = ConnId(key);
        if idle.is_some() {
            self.set_idle_timeout(id, idle);
        }
        Some(id)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::net::TcpStream;

    #[test]
    fn the_shutdown_filter_drops_new_handshakes_and_keeps_the_queue() {
        let l = bind_listener("127.0.0.1:0".parse().unwrap(), 16, false).unwrap();
        let addr = l.local_addr().unwrap();
        // Completed before the filter: stays in the queue and is accepted.
        let _before = TcpStream::connect(addr).unwrap();
        refuse_new_handshakes(&l).unwrap();
        // After it: the SYN is dropped, so the handshake never completes
        // (the client would retry, then be refused by the closed port).
        let after = TcpStream::connect_timeout(&addr, Duration::from_millis(300));
        let err = after.expect_err("a handshake completed through the filter");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        let mut accepted = 0;
        while l.accept().is_ok() {
            accepted += 1;
        }
        assert_eq!(accepted, 1);
    }
}
