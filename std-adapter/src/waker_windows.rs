//! [`Waker`] on Windows: wakes a selector blocked in `select` from another
//! thread.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::windows::io::{AsRawSocket, AsSocket, BorrowedSocket, RawSocket};

/// Wakes a thread blocked in [`Selector::select`](crate::Selector::select)
/// from any other thread: register the waker for `EVENT_READ`, call
/// [`wake`](Self::wake) elsewhere, and when the selecting thread sees the
/// waker ready it calls [`drain`](Self::drain).
///
/// On Windows (no eventfd, no pipe that WSAPoll or select can watch) it is
/// a connected pair of loopback TCP sockets, non-blocking and
/// non-inheritable, closed on drop. Wakes **coalesce**: any number of
/// `wake` calls before a `drain` make the waker readable once, and one
/// `drain` consumes them all. Neither call allocates or blocks.
///
/// ```no_run
/// use selectors2::{DefaultSelector, EVENT_READ, Ready, Waker};
/// use std::sync::Arc;
///
/// let waker = Arc::new(Waker::new()?);
/// let mut sel: DefaultSelector<&str> = DefaultSelector::new()?;
/// sel.register(&*waker, EVENT_READ, "waker")?;
///
/// let w = Arc::clone(&waker);
/// let t = std::thread::spawn(move || w.wake());
/// let mut ready: Ready<&str, 4> = Ready::new();
/// assert_eq!(sel.select(&mut ready, None)?, 1); // blocks until woken
/// waker.drain()?;
/// t.join().unwrap()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Waker {
    /// What the selector watches.
    read: TcpStream,
    /// Where `wake` writes.
    write: TcpStream,
}

impl Waker {
    /// A new waker, not yet woken.
    pub fn new() -> io::Result<Waker> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let write = TcpStream::connect(listener.local_addr()?)?;
        let ours = write.local_addr()?;
        // Another local process may connect to the port first: accept until
        // the connection is ours (it is queued already, so this ends).
        let read = loop {
            let (s, peer) = listener.accept()?;
            if peer == ours {
                break s;
            }
        };
        for s in [&read, &write] {
            s.set_nonblocking(true)?;
            crate::sys::set_no_inherit(s)?;
        }
        // One byte per wake, sent at once.
        write.set_nodelay(true)?;
        Ok(Waker { read, write })
    }

    /// Makes the waker readable, waking a `select` that watches it. Safe to
    /// call from any thread, any number of times.
    pub fn wake(&self) -> io::Result<()> {
        loop {
            match (&self.write).write(&[1]) {
                // WouldBlock: the pair's buffers are full of wakes, so the
                // waker is readable already: the wake is not lost.
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Consumes every pending wake, so the waker stops being readable.
    ///
    /// Drain first, then read whatever state the wakers announce (a queue,
    /// a flag): a wake that arrives between reading the state and draining
    /// would be consumed with its news unread, and nothing would wake the
    /// next `select` for it.
    pub fn drain(&self) -> io::Result<()> {
        let mut buf = [0u8; 64];
        loop {
            match (&self.read).read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl AsSocket for Waker {
    /// The socket to register for `EVENT_READ`.
    fn as_socket(&self) -> BorrowedSocket<'_> {
        self.read.as_socket()
    }
}

impl AsRawSocket for Waker {
    /// The socket to register for `EVENT_READ`.
    fn as_raw_socket(&self) -> RawSocket {
        self.read.as_raw_socket()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EVENT_READ, PollSelector, Ready};
    use std::time::Duration;

    fn readable(w: &Waker) -> bool {
        let mut sel = PollSelector::<()>::with_capacity(2).unwrap();
        sel.register(w, EVENT_READ, ()).unwrap();
        let mut ready: Ready<(), 2> = Ready::new();
        sel.select(&mut ready, Some(Duration::from_millis(50)))
            .unwrap()
            == 1
    }

    #[test]
    fn wakes_coalesce_and_drain_clears() {
        let w = Waker::new().unwrap();
        assert!(!readable(&w));
        for _ in 0..1000 {
            w.wake().unwrap();
        }
        assert!(readable(&w));
        w.drain().unwrap();
        assert!(!readable(&w));
        w.drain().unwrap();
    }

    #[test]
    fn is_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<Waker>();
    }
}
