//! The echo server shared by `echo_server.rs` and `loopback.rs`: Python's
//! `selectors` quickstart, grown up (partial writes, clean closes, a waker
//! to stop it).

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;

use selectors2::sys::OsBackend;
use selectors2::{AnyCapacity, EVENT_READ, EVENT_WRITE, Ready, Selector, Waker};

const LISTENER: usize = usize::MAX;
const WAKER: usize = usize::MAX - 1;

/// One client connection: the socket and the bytes read but not yet echoed.
struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    pending: VecDeque<u8>,
}

/// Counters of what the server did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub accepted: usize,
    pub closed: usize,
    pub bytes: usize,
    pub partial_writes: usize,
}

/// A non-blocking echo server on one selector. `CAP` is the key-table
/// capacity: the listener, the waker and up to `CAP - 2` clients.
pub struct EchoServer<B: OsBackend, const CAP: usize> {
    sel: Selector<B, usize, CAP>,
    listener: TcpListener,
    waker: Arc<Waker>,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    verbose: bool,
    pub stats: Stats,
}

impl<B: OsBackend, const CAP: usize> EchoServer<B, CAP> {
    /// Binds `addr` and registers the listener and a waker.
    pub fn bind(addr: &str, verbose: bool) -> io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let waker = Arc::new(Waker::new()?);
        let mut sel = Selector::<B, usize, CAP>::new()?;
        sel.register(&listener, EVENT_READ, LISTENER)?;
        sel.register(&*waker, EVENT_READ, WAKER)?;
        Ok(EchoServer {
            sel,
            listener,
            waker,
            conns: Vec::new(),
            free: Vec::new(),
            verbose,
            stats: Stats::default(),
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// A handle that stops `run` from another thread.
    pub fn stopper(&self) -> Arc<Waker> {
        Arc::clone(&self.waker)
    }

    pub fn backend_name(&self) -> String {
        self.sel.backend_kind().to_string()
    }

    /// Serves until the waker is woken.
    pub fn run(&mut self) -> io::Result<Stats> {
        let mut ready: Ready<usize, 256> = Ready::new();
        loop {
            self.sel.select(&mut ready, None)?;
            for (key, events) in &ready {
                match key.data {
                    WAKER => {
                        self.waker.drain()?;
                        self.close_all()?;
                        return Ok(self.stats);
                    }
                    LISTENER => self.accept()?,
                    id => {
                        if events.contains(EVENT_READ) {
                            self.read(id)?;
                        }
                        if events.contains(EVENT_WRITE) {
                            self.flush(id)?;
                        }
                    }
                }
            }
        }
    }

    fn accept(&mut self) -> io::Result<()> {
        loop {
            let (stream, peer) = match self.listener.accept() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            };
            stream.set_nonblocking(true)?;
            stream.set_nodelay(true)?;
            let id = self.free.pop().unwrap_or(self.conns.len());
            if let Err(e) = self.sel.register(&stream, EVENT_READ, id) {
                // Table full: refuse this client rather than fail the server.
                self.log(format_args!("refused {peer}: {e}"));
                continue;
            }
            self.log(format_args!("accepted {peer} as #{id}"));
            let conn = Conn {
                stream,
                peer,
                pending: VecDeque::new(),
            };
            if id == self.conns.len() {
                self.conns.push(Some(conn));
            } else {
                self.conns[id] = Some(conn);
            }
            self.stats.accepted += 1;
        }
    }

    fn read(&mut self, id: usize) -> io::Result<()> {
        let Some(conn) = self.conns[id].as_mut() else {
            return Ok(());
        };
        let mut buf = [0u8; 4096];
        loop {
            match conn.stream.read(&mut buf) {
                Ok(0) => return self.close(id, "closed by peer"),
                Ok(n) => {
                    conn.pending.extend(&buf[..n]);
                    self.stats.bytes += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return self.close(id, "reset"),
            }
        }
        self.flush(id)
    }

    /// Writes what is pending; switches the interest to WRITE while the
    /// socket cannot take it all, and back to READ once it has.
    fn flush(&mut self, id: usize) -> io::Result<()> {
        let Some(conn) = self.conns[id].as_mut() else {
            return Ok(());
        };
        while !conn.pending.is_empty() {
            let (front, _) = conn.pending.as_slices();
            match conn.stream.write(front) {
                Ok(n) => drop(conn.pending.drain(..n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return self.close(id, "write failed"),
            }
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
            self.sel.modify(&conn.stream, want, id)?;
        }
        Ok(())
    }

    fn close(&mut self, id: usize, why: &str) -> io::Result<()> {
        if let Some(conn) = self.conns[id].take() {
            self.sel.unregister(&conn.stream)?;
            self.log(format_args!("#{id} {} {why}", conn.peer));
            self.free.push(id);
            self.stats.closed += 1;
        }
        Ok(())
    }

    fn close_all(&mut self) -> io::Result<()> {
        for id in 0..self.conns.len() {
            self.close(id, "closed at shutdown")?;
        }
        Ok(())
    }

    fn log(&self, line: std::fmt::Arguments<'_>) {
        if self.verbose {
            println!("[{}] {line}", self.sel.backend_kind());
        }
    }
}
