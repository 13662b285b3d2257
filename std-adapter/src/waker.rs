//! [`Waker`]: wakes a selector blocked in `select` from another thread.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use rustix::io::Errno;

/// Wakes a thread blocked in [`Selector::select`](crate::Selector::select)
/// from any other thread: register the waker for `EVENT_READ`, call
/// [`wake`](Self::wake) elsewhere, and when the selecting thread sees the
/// waker ready it calls [`drain`](Self::drain).
///
/// An `eventfd` on Linux and Android, a non-blocking pipe elsewhere; either
/// way close-on-exec and closed on drop. Wakes **coalesce**: any number of
/// `wake` calls before a `drain` make the waker readable once, and one
/// `drain` consumes them all. Neither call allocates or blocks.
///
/// ```
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
/// assert_eq!(ready.iter().next().unwrap().0.data, "waker");
/// waker.drain()?;
/// t.join().unwrap()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Waker {
    /// What the selector watches: the eventfd, or the pipe's read end.
    read: OwnedFd,
    /// The pipe's write end (the eventfd is both ends).
    #[cfg(not(has_epoll))]
    write: OwnedFd,
}

impl Waker {
    /// A new waker, not yet woken.
    #[cfg(has_epoll)]
    pub fn new() -> io::Result<Waker> {
        use rustix::event::{EventfdFlags, eventfd};
        let read = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        Ok(Waker { read })
    }

    /// A new waker, not yet woken.
    #[cfg(not(has_epoll))]
    pub fn new() -> io::Result<Waker> {
        let (read, write) = pipe()?;
        Ok(Waker { read, write })
    }

    #[inline]
    fn write_end(&self) -> BorrowedFd<'_> {
        #[cfg(has_epoll)]
        return self.read.as_fd();
        #[cfg(not(has_epoll))]
        return self.write.as_fd();
    }

    /// Makes the waker readable, waking a `select` that watches it. Safe to
    /// call from any thread, any number of times.
    pub fn wake(&self) -> io::Result<()> {
        let one = 1u64.to_ne_bytes();
        // A pipe takes one byte; an eventfd takes an 8-byte count.
        #[cfg(has_epoll)]
        let msg = &one[..];
        #[cfg(not(has_epoll))]
        let msg = &one[..1];
        loop {
            match rustix::io::write(self.write_end(), msg) {
                // EAGAIN: the pipe is full or the counter saturated, so the
                // waker is readable already: the wake is not lost.
                Ok(_) | Err(Errno::AGAIN) => return Ok(()),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
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
            match rustix::io::read(&self.read, &mut buf) {
                Ok(0) | Err(Errno::AGAIN) => return Ok(()),
                Ok(_) | Err(Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// A close-on-exec, non-blocking pipe.
#[cfg(not(any(has_epoll, apple)))]
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    use rustix::pipe::{PipeFlags, pipe_with};
    Ok(pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?)
}

/// A close-on-exec, non-blocking pipe. Apple has no `pipe2`, so the flags
/// are set right after creation.
#[cfg(apple)]
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
    use rustix::io::{FdFlags, fcntl_setfd};
    let (r, w) = rustix::pipe::pipe()?;
    for fd in [&r, &w] {
        fcntl_setfd(fd, FdFlags::CLOEXEC)?;
        fcntl_setfl(fd, fcntl_getfl(fd)? | OFlags::NONBLOCK)?;
    }
    Ok((r, w))
}

impl AsFd for Waker {
    /// The fd to register for `EVENT_READ`.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }
}

impl AsRawFd for Waker {
    /// The fd to register for `EVENT_READ`.
    fn as_raw_fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(w: &Waker) -> bool {
        let mut fds = [libc::pollfd {
            fd: w.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        #[allow(unsafe_code)]
        // SAFETY: one valid pollfd, borrowed for the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 1, 0) };
        n == 1
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
    fn is_send_sync_and_cloexec() {
        fn check<T: Send + Sync>() {}
        check::<Waker>();
        let w = Waker::new().unwrap();
        let flags = rustix::io::fcntl_getfd(&w).unwrap();
        assert!(flags.contains(rustix::io::FdFlags::CLOEXEC));
        let fl = rustix::fs::fcntl_getfl(&w).unwrap();
        assert!(fl.contains(rustix::fs::OFlags::NONBLOCK));
    }
}
