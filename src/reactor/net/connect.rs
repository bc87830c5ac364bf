//! Outbound connections: name resolution off the loop, non-blocking connect.
//!
//! `connect(host, port)` returns a `ConnId` at once, in state `Connecting`.
//! An IP literal is connected straight away. A host name is resolved on the
//! resolver thread (libuv runs `getaddrinfo` on its thread pool), which posts
//! the result back through the loop's waker; `on_lookup` reports it.
//!
//! A non-blocking connect is complete when the socket reports writable with
//! no error: connect(2) on Linux gives that contract (tcp_poll reports no
//! write readiness during the handshake and sets EPOLLERR when it fails),
//! and tokio's `TcpStream::connect` relies on it. So a clean writable edge
//! costs no system call. Any other readiness is checked: `take_error()` for
//! the failure, then `peer_addr()` (mio #1942; stale or early events gave
//! false successes in netty PR #7738): without a peer address the event was
//! spurious and we keep waiting. Failures
//! reach the app as `error` with Node's codes (ECONNREFUSED, ENOTFOUND,
//! ETIMEDOUT, ECONNRESET), then `close(true)`.

use crate::reactor::config::ConnectOptions;
use crate::reactor::conn::state::State;
use crate::reactor::conn::Conn;
use crate::reactor::net::error::{ErrorCode, NetError};
use crate::reactor::remote::Inbox;
use crate::reactor::timers::TimerEntry;
use crate::reactor::token::{ConnId, Key, Kind};
use crate::reactor::Reactor;
use mio::Interest;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::mpsc;

/// A lookup for the resolver thread.
pub(crate) struct LookupJob {
    key: Key,
    host: String,
    port: u16,
    local: Option<IpAddr>,
    remote: crate::reactor::remote::LoopWaker,
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, NetError> {
    let not_found = |detail: String| NetError::new(ErrorCode::NotFound, "getaddrinfo", detail);
    let mut addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| not_found(format!("{host}: {e}")))?;
    addrs.next().ok_or_else(|| not_found(host.to_string()))
}

/// A non-blocking socket with `connect(addr)` started; bound first to
/// `local` (port 0: the kernel picks) when given.
fn open_socket(addr: SocketAddr, local: Option<IpAddr>) -> io::Result<mio::net::TcpStream> {
    let Some(local) = local else {
        return mio::net::TcpStream::connect(addr);
    };
    // Non-blocking from creation (SOCK_NONBLOCK; socket2 adds SOCK_CLOEXEC):
    // no fcntl round trip per connection.
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM.nonblocking(),
        Some(socket2::Protocol::TCP),
    )?;
    // Bind the address only: with IP_BIND_ADDRESS_NO_PORT the kernel picks
    // the port in connect(), where a port needs to be unique per 4-tuple
    // only, instead of searching the bind table in bind() for a port no
    // other socket on that address holds (a search that grows with the
    // TIME_WAIT sockets a connect-heavy client leaves behind). HAProxy and
    // Envoy bind source addresses the same way. SO_REUSEADDR is not needed:
    // no port is reserved at bind time.
    if addr.is_ipv4() {
        nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::IpBindAddressNoPort, &true)
            .map_err(io::Error::from)?;
    } else {
        sock.set_reuse_address(true)?;
    }
    sock.bind(&SocketAddr::new(local, 0).into())?;
    match sock.connect(&addr.into()) {
        Ok(()) => {}
        // Non-blocking: completion is reported by a writable event.
        Err(e) if rustix::io::Errno::from_io_error(&e) == Some(rustix::io::Errno::INPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(mio::net::TcpStream::from_std(sock.into()))
}

/// The resolver thread: one, started on first use, serving lookups in order.
/// It ends when the loop (the only sender) is dropped.
fn spawn_resolver() -> io::Result<mpsc::Sender<LookupJob>> {
    let (tx, rx) = mpsc::channel::<LookupJob>();
    std::thread::Builder::new()
        .name("netloop-resolver".into())
        .spawn(move || {
            for job in rx {
                let result = resolve(&job.host, job.port);
                job.remote.send(Inbox::Lookup {
                    key: job.key,
                    result,
                    local: job.local,
                });
            }
        })?;
    Ok(tx)
}

impl Reactor {
    /// `net.connect({host, port})` without a service yet: the caller
    /// ([`crate::Cx::connect`], [`Reactor::connect_with`]) attaches one
    /// before its callback returns. Events follow: `lookup` (host names
    /// only), then `connect`, or `error` and `close(true)`.
    pub(crate) fn connect_unowned(
        &mut self,
        host: &str,
        port: u16,
        opts: ConnectOptions,
    ) -> ConnId {
        let timeout = opts.timeout;
        let local = opts.local_address;
        let tls = opts.tls;
        let conn = Conn::new(
            None,
            State::Connecting,
            None,
            None,
            opts.socket,
            self.now_tick,
        );
        let key = self.conns.insert(&mut self.gens, conn);
        let timer = self.arm(timeout, TimerEntry::Connect(key));
        if let Some(c) = self.conns.get_mut(key) {
            c.connect_timer = Some(timer);
        }
        if let Some(tls) = &tls {
            self.tls_attach_client(key, tls);
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = host.parse::<IpAddr>() {
            self.start_connect(key, SocketAddr::new(ip, port), local);
        } else {
            self.start_lookup(key, host, port, local);
        }
        ConnId(key)
    }

    fn start_lookup(&mut self, key: Key, host: &str, port: u16, local: Option<IpAddr>) {
        if self.resolver.is_none() {
            match spawn_resolver() {
                Ok(tx) => self.resolver = Some(tx),
                Err(e) => {
                    self.close_conn(key, Some(NetError::from_io("getaddrinfo", &e)));
                    return;
                }
            }
        }
        let job = LookupJob {
            key,
            host: host.to_string(),
            port,
            local,
            remote: self.loop_waker(),
        };
        match self.resolver.as_ref().map(|tx| tx.send(job)) {
            Some(Ok(())) => self.pending_lookups += 1,
            _ => {
                let err = NetError::new(ErrorCode::NotFound, "getaddrinfo", "resolver unavailable");
                self.close_conn(key, Some(err));
            }
        }
    }

    pub(crate) fn lookup_done(
        &mut self,
        key: Key,
        result: Result<SocketAddr, NetError>,
        local: Option<IpAddr>,
    ) {
        self.pending_lookups = self.pending_lookups.saturating_sub(1);
        if !self
            .conns
            .get(key)
            .is_some_and(|c| c.state == State::Connecting)
        {
            return; // destroyed or timed out meanwhile
        }
        self.emit_conn(
            key,
            crate::reactor::service::ConnEvent::Lookup(result.as_ref().map(|a| *a)),
        );
        if !self
            .conns
            .get(key)
            .is_some_and(|c| c.state == State::Connecting)
        {
            return; // destroyed by the lookup callback
        }
        match result {
            Ok(addr) => self.start_connect(key, addr, local),
            Err(e) => self.close_conn(key, Some(e)),
        }
    }

    fn start_connect(&mut self, key: Key, addr: SocketAddr, local: Option<IpAddr>) {
        let mut stream = match open_socket(addr, local) {
            Ok(s) => s,
            Err(e) => {
                self.close_conn(
                    key,
                    Some(NetError::new(
                        ErrorCode::from_io(&e),
                        "connect",
                        format!("{addr}: {e}"),
                    )),
                );
                return;
            }
        };
        let token = Reactor::token_of(Kind::Conn, key);
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            token,
            Interest::READABLE | Interest::WRITABLE,
        ) {
            self.close_conn(key, Some(NetError::from_io("connect", &e)));
            return;
        }
        match self.conns.get_mut(key) {
            Some(c) if c.state == State::Connecting => {
                c.stream = Some(stream);
                c.peer = Some(addr);
            }
            _ => {
                let _ = self.poll.registry().deregister(&mut stream);
            }
        }
    }

    /// A readiness event on a `Connecting` socket: did the connect finish?
    /// `clean_write`: the event reported write readiness without an error
    /// or hang-up flag, which is completion (connect(2)); otherwise
    /// `SO_ERROR` and `getpeername` decide. `readable`: the event also
    /// reported read readiness (the peer wrote first, or hung up).
    pub(crate) fn finish_connect(&mut self, key: Key, clean_write: bool, readable: bool) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let Some(stream) = c.stream.as_ref() else {
            return;
        };
        // A clean writable edge is a finished connect (module docs): no
        // system call. Anything else: `SO_ERROR`, then `getpeername`.
        if !clean_write {
            let failed = match stream.take_error() {
                Ok(Some(e)) | Err(e) => Some(e),
                Ok(None) => None,
            };
            if let Some(e) = failed {
                let detail = match c.peer {
                    Some(a) => format!("{a}: {e}"),
                    None => e.to_string(),
                };
                self.close_conn(
                    key,
                    Some(NetError::new(ErrorCode::from_io(&e), "connect", detail)),
                );
                return;
            }
            match stream.peer_addr() {
                Ok(addr) => c.peer = Some(addr),
                // Spurious wakeup: not connected yet (mio #1942).
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => {
                    self.close_conn(key, Some(NetError::from_io("connect", &e)));
                    return;
                }
            }
        }
        if c.opts.no_delay {
            let _ = stream.set_nodelay(true);
        }
        c.state = State::Open;
        c.writable = true;
        // Data that came with the connect rode on this edge, which is
        // consumed: read it (from the ready list, after the `connect`
        // callback). Data that comes later raises an edge of its own
        // (epoll(7), edge-triggered: a new wake-up re-queues the socket),
        // so without it a read could only say WouldBlock: one wasted system
        // call per connect, 7 % of the reads of `netloop bench connect`.
        c.readable = readable;
        if let Some(t) = c.connect_timer.take() {
            self.wheel.cancel(t);
        }
        let idle = c.opts.idle_timeout;
        let end_after = std::mem::take(&mut c.end_after_connect);
        let id = ConnId(key);
        if idle.is_some() {
            self.set_idle_timeout(id, idle);
        }
        if self.conns.get(key).is_some_and(|c| c.tls.is_some()) {
            // `connect` waits for the handshake (Node's `secureConnect`):
            // a certificate the client refuses is a failed connect.
            self.tls_arm_handshake(key);
        } else {
            self.emit_conn(key, crate::reactor::service::ConnEvent::Connect);
        }
        if self.conns.get(key).is_some_and(|c| !c.wq.is_empty()) {
            self.flush(key);
        }
        if end_after {
            let _ = self.end_conn(key);
        }
        if readable {
            self.park(Kind::Conn, key);
        }
    }
}
