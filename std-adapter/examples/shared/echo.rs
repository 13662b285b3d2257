//! The echo server shared by `echo_server.rs` and `loopback.rs`: Python's
//! `selectors` quickstart, grown up. What a server users copy must do:
//!
//! * echo every byte: partial writes wait for `EVENT_WRITE`, and a peer that
//!   half-closes (EOF) gets its pending echo before the close;
//! * treat one client's errors (a reset, a failed write) as that client's
//!   end only;
//! * survive accept errors: `ECONNABORTED` and friends concern one
//!   connection; running out of fds (`EMFILE`, `ENFILE`) sheds the waiting
//!   client with a spare fd kept for the purpose, or pauses the listener
//!   until a connection closes, instead of spinning on a listener that
//!   stays readable;
//! * refuse a client cleanly when the key table is full (`Full`), without
//!   leaking its slot;
//! * stop from another thread through a [`Waker`].

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;

use selectors2::sys::OsBackend;
use selectors2::{EVENT_READ, EVENT_WRITE, Ready, Selector, Waker};

const LISTENER: usize = usize::MAX;
const WAKER: usize = usize::MAX - 1;
/// Connections accepted per listener report, so that a flood of new
/// clients cannot starve the established ones.
const ACCEPT_BURST: usize = 64;

/// One client connection: the socket, the bytes read but not yet echoed,
/// and whether the peer has finished sending (EOF).
struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    pending: VecDeque<u8>,
    eof: bool,
}

/// Counters of what the server did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub accepted: usize,
    pub closed: usize,
    pub bytes: usize,
    pub partial_writes: usize,
    /// Clients turned away: table full, or out of fds.
    pub refused: usize,
    /// Clients that ended with an error (a reset, a failed write).
    pub errors: usize,
    /// `accept` failures that were survived.
    pub accept_errors: usize,
    /// Connection slots ever allocated (never more than the table holds).
    pub slots: usize,
    /// Slots neither in use nor free at shutdown: lost (must be 0).
    pub lost_slots: usize,
}

/// A non-blocking echo server on one selector. `CAP` bounds its memory: a
/// selector of that fixed capacity holds the listener, the waker and up
/// to `CAP - 2` clients, and the next client is turned away (`Full`).
pub struct EchoServer<B: OsBackend, const CAP: usize> {
    sel: Selector<B, usize>,
    listener: TcpListener,
    waker: Arc<Waker>,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    /// An fd held in reserve: freed to accept-and-close one client when the
    /// process runs out of fds, so that the listener does not stay readable.
    spare: Option<File>,
    /// Whether the listener is unregistered until a connection closes (out
    /// of fds with no spare left).
    paused: bool,
    verbose: bool,
    pub stats: Stats,
}

impl<B: OsBackend, const CAP: usize> EchoServer<B, CAP> {
    /// Binds `addr` and registers the listener and a waker.
    pub fn bind(addr: &str, verbose: bool) -> io::Result<Self> {
        let listener = listen(addr)?;
        listener.set_nonblocking(true)?;
        let waker = Arc::new(Waker::new()?);
        let mut sel = Selector::<B, usize>::with_fixed_capacity(CAP)?;
        sel.register(&listener, EVENT_READ, LISTENER)?;
        sel.register(&*waker, EVENT_READ, WAKER)?;
        Ok(EchoServer {
            sel,
            listener,
            waker,
            conns: Vec::new(),
            free: Vec::new(),
            spare: File::open("/dev/null").ok(),
            paused: false,
            verbose,
            stats: Stats::default(),
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The listening socket (to tune options its connections inherit).
    #[allow(dead_code)] // used by the test harness only
    pub fn listener(&self) -> &TcpListener {
        &self.listener
    }

    /// A handle that stops `run` from another thread.
    pub fn stopper(&self) -> Arc<Waker> {
        Arc::clone(&self.waker)
    }

    pub fn backend_name(&self) -> String {
        self.sel.backend_kind().to_string()
    }

    /// Serves until the waker is woken. Fails only if `select` itself
    /// fails; every client's trouble stays that client's.
    pub fn run(&mut self) -> io::Result<Stats> {
        let mut ready: Ready<usize, 256> = Ready::new();
        loop {
            self.sel.select(&mut ready, None)?;
            for (key, events) in &ready {
                match key.data {
                    WAKER => {
                        self.waker.drain()?;
                        self.close_all();
                        self.stats.slots = self.conns.len();
                        self.stats.lost_slots = self.conns.len() - self.free.len();
                        return Ok(self.stats);
                    }
                    LISTENER => self.accept(),
                    id => {
                        if events.contains(EVENT_READ) {
                            self.read(id);
                        }
                        if events.contains(EVENT_WRITE) {
                            self.flush(id);
                        }
                    }
                }
            }
        }
    }

    fn accept(&mut self) {
        for _ in 0..ACCEPT_BURST {
            match self.listener.accept() {
                Ok((stream, peer)) => self.admit(stream, peer),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // About one connection that is gone already: next.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    self.stats.accept_errors += 1;
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    self.stats.accept_errors += 1;
                    self.out_of_fds(&e);
                    return;
                }
                // ENOBUFS, ENOMEM, EPERM (a firewall)...: the listener is
                // still readable, and the next select tries again.
                Err(e) => {
                    self.stats.accept_errors += 1;
                    self.log(format_args!("accept: {e}"));
                    return;
                }
            }
        }
    }

    /// Registers a new client, or turns it away (closing it) if the table
    /// is full: the slot it was offered goes back to the free list.
    fn admit(&mut self, stream: TcpStream, peer: SocketAddr) {
        if let Err(e) = stream.set_nonblocking(true) {
            self.log(format_args!("refused {peer}: {e}"));
            self.stats.refused += 1;
            return;
        }
        // Latency matters more than packet count for an echo.
        let _ = stream.set_nodelay(true);
        let id = self.free.pop().unwrap_or(self.conns.len());
        if let Err(e) = self.sel.register(&stream, EVENT_READ, id) {
            self.log(format_args!("refused {peer}: {e}"));
            if id < self.conns.len() {
                self.free.push(id);
            }
            self.stats.refused += 1;
            return;
        }
        self.log(format_args!("accepted {peer} as #{id}"));
        let conn = Conn {
            stream,
            peer,
            pending: VecDeque::new(),
            eof: false,
        };
        if id == self.conns.len() {
            self.conns.push(Some(conn));
        } else {
            self.conns[id] = Some(conn);
        }
        self.stats.accepted += 1;
    }

    /// `EMFILE`/`ENFILE`: the waiting client keeps the listener readable,
    /// so a level-triggered loop would spin. Free the spare fd, accept the
    /// client and close it at once (it sees its connection closed), and
    /// take the spare back; with no spare, stop watching the listener until
    /// a connection closes and frees an fd.
    #[cold]
    fn out_of_fds(&mut self, e: &io::Error) {
        self.log(format_args!("accept: {e}"));
        if self.spare.take().is_some() {
            if let Ok((stream, peer)) = self.listener.accept() {
                drop(stream);
                self.log(format_args!("refused {peer}: out of fds"));
                self.stats.refused += 1;
            }
            self.spare = File::open("/dev/null").ok();
            if self.spare.is_some() {
                return;
            }
        }
        if self.sel.unregister(&self.listener).is_ok() {
            self.paused = true;
        }
    }

    fn read(&mut self, id: usize) {
        let Some(conn) = self.conns.get_mut(id).and_then(Option::as_mut) else {
            return;
        };
        if conn.eof {
            return;
        }
        let mut buf = [0u8; 4096];
        loop {
            match conn.stream.read(&mut buf) {
                Ok(0) => {
                    // Half-closed (or closed): the peer sends no more, but
                    // may still read. Echo what is pending, then close.
                    conn.eof = true;
                    break;
                }
                Ok(n) => {
                    conn.pending.extend(&buf[..n]);
                    self.stats.bytes += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return self.fail(id, &e),
            }
        }
        self.flush(id);
    }

    /// Writes what is pending; watches WRITE while the socket cannot take
    /// it all and READ once it has; closes once the peer's EOF came and
    /// everything was echoed.
    fn flush(&mut self, id: usize) {
        let Some(conn) = self.conns.get_mut(id).and_then(Option::as_mut) else {
            return;
        };
        while !conn.pending.is_empty() {
            let (front, _) = conn.pending.as_slices();
            match conn.stream.write(front) {
                Ok(0) => return self.fail(id, &io::ErrorKind::WriteZero.into()),
                Ok(n) => drop(conn.pending.drain(..n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return self.fail(id, &e),
            }
        }
        if conn.pending.is_empty() && conn.eof {
            return self.close(id, "closed by peer");
        }
        let want = if conn.pending.is_empty() {
            EVENT_READ
        } else {
            EVENT_WRITE
        };
        let key = self.sel.get_key(&conn.stream).map(|k| k.events);
        if key != Some(want) {
            if want == EVENT_WRITE {
                self.stats.partial_writes += 1;
            }
            if let Err(e) = self.sel.modify(&conn.stream, want, id) {
                self.fail(id, &e.into());
            }
        }
    }

    /// One client's error ends that client only.
    fn fail(&mut self, id: usize, e: &io::Error) {
        self.stats.errors += 1;
        self.close(id, &format!("ended: {e}"));
    }

    fn close(&mut self, id: usize, why: &str) {
        let Some(conn) = self.conns.get_mut(id).and_then(Option::take) else {
            return;
        };
        // Unregister cannot fail for a key the selector holds on an open
        // fd; if it did, the fd is closed below anyway and the kernel
        // forgets it.
        if let Err(e) = self.sel.unregister(&conn.stream) {
            self.log(format_args!("#{id} unregister: {e}"));
        }
        self.log(format_args!("#{id} {} {why}", conn.peer));
        drop(conn);
        self.free.push(id);
        self.stats.closed += 1;
        if self.paused
            && self
                .sel
                .register(&self.listener, EVENT_READ, LISTENER)
                .is_ok()
        {
            self.paused = false;
        }
    }

    fn close_all(&mut self) {
        for id in 0..self.conns.len() {
            self.close(id, "closed at shutdown");
        }
    }

    fn log(&self, line: std::fmt::Arguments<'_>) {
        if self.verbose {
            println!("[{}] {line}", self.sel.backend_kind());
        }
    }
}

/// A listener on `addr` with a backlog of 1024 connections. `std`'s
/// `TcpListener::bind` asks for 128: a burst of a few hundred clients then
/// overflows the accept queue, and Linux drops handshakes, which clients see
/// as stalls or resets.
fn listen(addr: &str) -> io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let addr: SocketAddr = addr
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    // Restart without waiting for the old port's TIME_WAIT to expire.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}
