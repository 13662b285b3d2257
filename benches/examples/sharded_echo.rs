//! A sharded TCP echo server: one selector per thread, each thread with its
//! own `SO_REUSEPORT` listener on the same port, so the kernel spreads new
//! connections over the threads and they share nothing (no lock, no
//! channel). Each shard is Python's `selectors` quickstart grown up:
//! level-triggered, one `read` per ready socket, partial writes kept and
//! finished when the socket is writable again, a [`Waker`] to stop it.
//!
//! The same server written the idiomatic mio way (edge-triggered: accept
//! and read until `WouldBlock`) lives here too, so that the load driver,
//! `examples/scale_out.rs`, can compare the two in one run.
//!
//! ```text
//! cargo run --release -p selectors2-bench --example sharded_echo -- [--mio] [--threads N] [--port P] [--secs S]
//! ```
//!
//! then, say, `nc 127.0.0.1 P`. It stops after `S` seconds (default 60).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use selectors2::{DefaultSelector, EVENT_READ, EVENT_WRITE, Ready, Waker};

/// Key-table capacity of each shard: the listener, the waker and up to
/// 16,382 connections (a shard refuses, by closing, any beyond that).
pub const SHARD_CAPACITY: usize = 16384;
/// Ready keys (or mio events) handled per select.
const BATCH: usize = 256;
/// Connections accepted per listener event before serving the others.
const ACCEPT_BURST: usize = 64;
const LISTENER: usize = usize::MAX;
const WAKER: usize = usize::MAX - 1;

/// Which server a [`Shards`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// selectors2's `DefaultSelector` (epoll on Linux), level-triggered.
    Selectors2,
    /// mio 1.x, edge-triggered.
    Mio,
}

impl Flavor {
    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Selectors2 => "selectors2",
            Flavor::Mio => "mio",
        }
    }
}

/// What one shard did.
#[derive(Debug, Default, Clone, Copy)]
pub struct ShardStats {
    /// Connections accepted.
    pub accepted: usize,
    /// Bytes echoed.
    pub bytes: usize,
    /// Writes that were partial (finished later, when writable).
    pub partial_writes: usize,
}

#[derive(Debug)]
enum Stopper {
    Selectors2(Arc<Waker>),
    Mio(Arc<mio::Waker>),
}

/// A running sharded server.
#[derive(Debug)]
pub struct Shards {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    stoppers: Vec<Stopper>,
    threads: Vec<JoinHandle<io::Result<ShardStats>>>,
}

/// A non-blocking listener on `addr` with `SO_REUSEPORT`, so that every
/// shard can bind the same port.
pub fn reuseport_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.bind(&addr.into())?;
    s.listen(4096)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

impl Shards {
    /// Starts `threads` shards listening on `addr` (port 0: a free port,
    /// shared by all shards; see [`addr`](Self::addr)).
    pub fn start(flavor: Flavor, threads: usize, addr: SocketAddr) -> io::Result<Shards> {
        let first = reuseport_listener(addr)?;
        let addr = first.local_addr()?;
        let mut listeners = vec![first];
        for _ in 1..threads.max(1) {
            listeners.push(reuseport_listener(addr)?);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let mut shards = Shards {
            addr,
            stop,
            accepted,
            stoppers: Vec::new(),
            threads: Vec::new(),
        };
        for (i, listener) in listeners.into_iter().enumerate() {
            let (stop, accepted) = (shards.stop.clone(), shards.accepted.clone());
            let name = format!("{}-shard-{i}", flavor.name());
            let thread = std::thread::Builder::new().name(name);
            let handle = match flavor {
                Flavor::Selectors2 => {
                    let waker = Arc::new(Waker::new()?);
                    shards.stoppers.push(Stopper::Selectors2(waker.clone()));
                    thread.spawn(move || serve_selectors2(listener, &waker, &stop, &accepted))?
                }
                Flavor::Mio => {
                    let poll = mio::Poll::new()?;
                    let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(WAKER))?);
                    shards.stoppers.push(Stopper::Mio(waker));
                    thread.spawn(move || serve_mio(listener, poll, &stop, &accepted))?
                }
            };
            shards.threads.push(handle);
        }
        Ok(shards)
    }

    /// The address every shard listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far, over all shards.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Stops every shard, closes its connections, and returns what each did.
    pub fn stop(self) -> io::Result<Vec<ShardStats>> {
        self.stop.store(true, Ordering::SeqCst);
        for s in &self.stoppers {
            match s {
                Stopper::Selectors2(w) => w.wake()?,
                Stopper::Mio(w) => w.wake()?,
            }
        }
        let mut stats = Vec::new();
        for t in self.threads {
            stats.push(
                t.join()
                    .map_err(|_| io::Error::other("a shard panicked"))??,
            );
        }
        Ok(stats)
    }
}

/// One client connection and the bytes it still has to get back.
struct Conn<S> {
    stream: S,
    pending: Vec<u8>,
}

/// Connections by token, reusing freed tokens.
struct Slab<S> {
    conns: Vec<Option<Conn<S>>>,
    free: Vec<usize>,
}

impl<S> Slab<S> {
    fn new() -> Self {
        Slab {
            conns: Vec::new(),
            free: Vec::new(),
        }
    }

    fn insert(&mut self, stream: S) -> usize {
        let conn = Some(Conn {
            stream,
            pending: Vec::new(),
        });
        match self.free.pop() {
            Some(t) => {
                self.conns[t] = conn;
                t
            }
            None => {
                self.conns.push(conn);
                self.conns.len() - 1
            }
        }
    }

    fn get(&mut self, token: usize) -> Option<&mut Conn<S>> {
        self.conns.get_mut(token).and_then(Option::as_mut)
    }

    fn remove(&mut self, token: usize) -> Option<Conn<S>> {
        let conn = self.conns.get_mut(token)?.take();
        if conn.is_some() {
            self.free.push(token);
        }
        conn
    }
}

/// Writes `data` (or as much as the socket takes); returns what is left.
fn write_some<S: Write>(stream: &mut S, mut data: &[u8]) -> io::Result<usize> {
    while !data.is_empty() {
        match stream.write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(data.len())
}

/// One selectors2 shard: level-triggered, so one `read` per ready socket
/// is enough (what is left is reported again).
fn serve_selectors2(
    listener: TcpListener,
    waker: &Waker,
    stop: &AtomicBool,
    accepted: &AtomicUsize,
) -> io::Result<ShardStats> {
    let mut sel = DefaultSelector::<usize>::with_capacity(SHARD_CAPACITY)?;
    sel.register(&listener, EVENT_READ, LISTENER)?;
    sel.register(waker, EVENT_READ, WAKER)?;
    let mut ready: Ready<usize, BATCH> = Ready::new();
    let mut conns: Slab<TcpStream> = Slab::new();
    let mut stats = ShardStats::default();
    let mut buf = [0u8; 4096];
    loop {
        sel.select(&mut ready, Some(Duration::from_secs(1)))?;
        for (key, events) in &ready {
            match key.data {
                LISTENER => {
                    for _ in 0..ACCEPT_BURST {
                        let stream = match listener.accept() {
                            Ok((s, _)) => s,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) if is_transient_accept_error(&e) => continue,
                            // Out of fds (EMFILE), ENOBUFS...: the next
                            // select tries again; `examples/shared/echo.rs`
                            // shows how to shed the waiting client instead.
                            Err(_) => break,
                        };
                        if stream.set_nonblocking(true).is_err() {
                            continue;
                        }
                        let _ = stream.set_nodelay(true);
                        let token = conns.insert(stream);
                        let stream = &conns.get(token).expect("just inserted").stream;
                        if sel.register(stream, EVENT_READ, token).is_err() {
                            // Full: refuse the client by closing.
                            conns.remove(token);
                            continue;
                        }
                        stats.accepted += 1;
                        accepted.fetch_add(1, Ordering::Relaxed);
                    }
                }
                WAKER => {
                    waker.drain()?;
                    if stop.load(Ordering::SeqCst) {
                        return Ok(stats);
                    }
                }
                token => {
                    let Some(conn) = conns.get(token) else {
                        continue;
                    };
                    let mut close = false;
                    if events.contains(EVENT_WRITE) {
                        match write_some(&mut conn.stream, &conn.pending) {
                            Ok(left) => {
                                let done = conn.pending.len() - left;
                                conn.pending.drain(..done);
                                if conn.pending.is_empty()
                                    && sel.modify(&conn.stream, EVENT_READ, token).is_err()
                                {
                                    close = true;
                                }
                            }
                            // One client's error ends that client only.
                            Err(_) => close = true,
                        }
                    }
                    if events.contains(EVENT_READ) && conn.pending.is_empty() && !close {
                        match conn.stream.read(&mut buf) {
                            Ok(0) => close = true,
                            Ok(n) => {
                                stats.bytes += n;
                                match write_some(&mut conn.stream, &buf[..n]) {
                                    Ok(0) => {}
                                    Ok(left) => {
                                        stats.partial_writes += 1;
                                        conn.pending.extend_from_slice(&buf[n - left..n]);
                                        close = sel
                                            .modify(&conn.stream, EVENT_READ | EVENT_WRITE, token)
                                            .is_err();
                                    }
                                    Err(_) => close = true,
                                }
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(_) => close = true,
                        }
                    }
                    if close && let Some(conn) = conns.remove(token) {
                        // Closed right after: the kernel forgets it anyway.
                        let _ = sel.unregister(&conn.stream);
                    }
                }
            }
        }
    }
}

/// One mio shard, written the way mio's users write it: edge-triggered, so
/// every event is followed by accepting or reading until `WouldBlock`.
fn serve_mio(
    listener: TcpListener,
    mut poll: mio::Poll,
    stop: &AtomicBool,
    accepted: &AtomicUsize,
) -> io::Result<ShardStats> {
    use mio::net::{TcpListener, TcpStream};
    use mio::{Events, Interest, Token};

    let mut listener = TcpListener::from_std(listener);
    poll.registry()
        .register(&mut listener, Token(LISTENER), Interest::READABLE)?;
    let mut events = Events::with_capacity(BATCH);
    let mut conns: Slab<TcpStream> = Slab::new();
    let mut stats = ShardStats::default();
    let mut buf = [0u8; 4096];
    loop {
        match poll.poll(&mut events, Some(Duration::from_secs(1))) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => r?,
        }
        for ev in events.iter() {
            match ev.token() {
                Token(LISTENER) => loop {
                    let mut stream = match listener.accept() {
                        Ok((s, _)) => s,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if is_transient_accept_error(&e) => continue,
                        Err(e) => return Err(e),
                    };
                    stream.set_nodelay(true)?;
                    let token = conns.free.last().copied().unwrap_or(conns.conns.len());
                    poll.registry()
                        .register(&mut stream, Token(token), Interest::READABLE)?;
                    conns.insert(stream);
                    stats.accepted += 1;
                    accepted.fetch_add(1, Ordering::Relaxed);
                },
                Token(WAKER) => {
                    if stop.load(Ordering::SeqCst) {
                        return Ok(stats);
                    }
                }
                Token(token) => {
                    let Some(conn) = conns.get(token) else {
                        continue;
                    };
                    let mut close = false;
                    if ev.is_writable() && !conn.pending.is_empty() {
                        let left = write_some(&mut conn.stream, &conn.pending)?;
                        let done = conn.pending.len() - left;
                        conn.pending.drain(..done);
                        if conn.pending.is_empty() {
                            poll.registry().reregister(
                                &mut conn.stream,
                                Token(token),
                                Interest::READABLE,
                            )?;
                        }
                    }
                    if ev.is_readable() {
                        loop {
                            match conn.stream.read(&mut buf) {
                                Ok(0) => {
                                    close = true;
                                    break;
                                }
                                Ok(n) => {
                                    stats.bytes += n;
                                    let was_pending = !conn.pending.is_empty();
                                    let left = if was_pending {
                                        n
                                    } else {
                                        write_some(&mut conn.stream, &buf[..n])?
                                    };
                                    if left > 0 {
                                        stats.partial_writes += 1;
                                        conn.pending.extend_from_slice(&buf[n - left..n]);
                                        if !was_pending {
                                            let both = Interest::READABLE | Interest::WRITABLE;
                                            poll.registry().reregister(
                                                &mut conn.stream,
                                                Token(token),
                                                both,
                                            )?;
                                        }
                                    }
                                }
                                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                                Err(_) => {
                                    close = true;
                                    break;
                                }
                            }
                        }
                    }
                    if close && let Some(mut conn) = conns.remove(token) {
                        poll.registry().deregister(&mut conn.stream)?;
                    }
                }
            }
        }
    }
}

/// Accept errors that concern one connection, not the listener.
fn is_transient_accept_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

#[allow(dead_code)] // not when scale_out.rs includes this file
fn main() -> io::Result<()> {
    let mut flavor = Flavor::Selectors2;
    let mut threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut port = 0u16;
    let mut secs = 60u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |what: &str| {
            args.next()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("{a} needs a number ({what})"),
                    )
                })
        };
        match a.as_str() {
            "--mio" => flavor = Flavor::Mio,
            "--threads" => threads = value("threads")? as usize,
            "--port" => port = value("port")? as u16,
            "--secs" => secs = value("seconds")?,
            _ => {
                eprintln!("usage: sharded_echo [--mio] [--threads N] [--port P] [--secs S]");
                return Ok(());
            }
        }
    }
    let shards = Shards::start(flavor, threads, SocketAddr::from(([127, 0, 0, 1], port)))?;
    println!(
        "{} echo server, {threads} shards, on {} for {secs} s",
        flavor.name(),
        shards.addr()
    );
    std::thread::sleep(Duration::from_secs(secs));
    for (i, s) in shards.stop()?.iter().enumerate() {
        println!("shard {i}: {s:?}");
    }
    Ok(())
}
