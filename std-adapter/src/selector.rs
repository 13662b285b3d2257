//! [`Selector`]: the core's state machine over an OS backend, with std
//! types at the edges.

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use selectors2_core as core_;

use crate::sys::{self, OsBackend};
use crate::{
    BackendKind, DEFAULT_CAPACITY, Error, Events, KeyMap, RawFd, Ready, Selectable, SelectorKey,
};

/// Python's `selectors` selector over an OS readiness mechanism `B`, with
/// user data `D` and a fixed capacity of `N` keys (any number in
/// `1..=65536`: a Python user's 100 is fine).
///
/// Name it through an alias: [`DefaultSelector`] (the best mechanism that
/// works here), `EpollSelector` (Linux), `KqueueSelector` (BSD, Apple), [`PollSelector`] or
/// [`SelectSelector`]. The key table is boxed once by `new`, built in place
/// (it never passes through the stack, so even a 65,536-key table is safe
/// to create on a small thread stack); after that, no method allocates
/// (given data whose `Clone` does not).
///
/// Level-triggered, like Python's: an fd that stays ready is reported by
/// every `select`.
///
/// ```
/// use selectors2::{DefaultSelector, EVENT_READ, EVENT_WRITE, Ready};
/// use std::io::Write;
/// use std::os::unix::net::UnixStream;
/// use std::time::Duration;
///
/// let (mut a, b) = UnixStream::pair()?;
/// let mut sel: DefaultSelector<&str> = DefaultSelector::new()?;
/// sel.register(&b, EVENT_READ, "b")?;
///
/// let mut ready: Ready<&str, 64> = Ready::new();
/// assert_eq!(sel.select(&mut ready, Some(Duration::ZERO))?, 0);
///
/// a.write_all(b"ping")?;
/// assert_eq!(sel.select(&mut ready, Some(Duration::from_secs(5)))?, 1);
/// let (key, events) = ready.iter().next().unwrap();
/// assert_eq!((key.data, events), ("b", EVENT_READ));
///
/// sel.modify(&b, EVENT_READ | EVENT_WRITE, "b")?;
/// sel.unregister(&b)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Selector<B: OsBackend, D = usize, const N: usize = DEFAULT_CAPACITY> {
    inner: core_::Selector<B, D, N, Box<[core_::Slot<D>; N]>>,
}

/// A selector on epoll (Linux, Android).
#[cfg(has_epoll)]
#[cfg_attr(docsrs, doc(cfg(any(target_os = "linux", target_os = "android"))))]
pub type EpollSelector<D = usize, const N: usize = DEFAULT_CAPACITY> = Selector<sys::Epoll, D, N>;

/// A selector on kqueue (macOS, iOS, FreeBSD, NetBSD, OpenBSD, DragonFly).
#[cfg(has_kqueue)]
#[cfg_attr(
    docsrs,
    doc(cfg(any(
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly"
    )))
)]
pub type KqueueSelector<D = usize, const N: usize = DEFAULT_CAPACITY> = Selector<sys::Kqueue, D, N>;

/// A selector on `poll` (every unix), or `WSAPoll` on Windows.
pub type PollSelector<D = usize, const N: usize = DEFAULT_CAPACITY> = Selector<sys::Poll, D, N>;

/// A selector on `select` (every unix): fds must be below
/// [`FD_SETSIZE`](sys::FD_SETSIZE). On Windows, Winsock's `select`: at most
/// `FD_SETSIZE` (512) sockets at once, the next refused with `Full`.
pub type SelectSelector<D = usize, const N: usize = DEFAULT_CAPACITY> = Selector<sys::Select, D, N>;

/// The best selector that works here, chosen at run time: kqueue or epoll,
/// else poll, else select; on Windows WSAPoll, else select (see
/// [`sys::Auto`]).
pub type DefaultSelector<D = usize, const N: usize = DEFAULT_CAPACITY> = Selector<sys::Auto, D, N>;

impl<B: OsBackend, D> Selector<B, D, DEFAULT_CAPACITY> {
    /// Opens the mechanism and an empty key table of the default capacity,
    /// [`DEFAULT_CAPACITY`] keys: Python's `DefaultSelector()`.
    ///
    /// Needs no annotation: the capacity is fixed here, and the data type
    /// is inferred from what you register (or named: `DefaultSelector::<Token>::new()`).
    ///
    /// ```
    /// use selectors2::{DefaultSelector, EVENT_READ};
    /// use std::os::unix::net::UnixStream;
    ///
    /// let (sock, _peer) = UnixStream::pair()?;
    /// let mut sel = DefaultSelector::new()?;
    /// sel.register(&sock, EVENT_READ, 0)?;
    /// assert_eq!(sel.capacity(), selectors2::DEFAULT_CAPACITY);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// For another capacity `N`, name it in the path and bring
    /// [`AnyCapacity`] into scope: `EpollSelector::<Token, 1024>::new()`.
    /// (Rust does not fall back to an alias's default capacity in
    /// `DefaultSelector::new()`, so the default one is this inherent `new`,
    /// and the others are the trait's. For the same reason a capacity given
    /// only by a `let` annotation does not reach `new`: `let s:
    /// PollSelector<u32, 64> = PollSelector::new()?` finds this `new` and
    /// reports "expected `64`, found `4096`"; write
    /// `PollSelector::<u32, 64>::new()?`.)
    #[inline]
    pub fn new() -> io::Result<Self> {
        Self::open()
    }
}

/// `new()` for a selector of any capacity `N`:
/// `EpollSelector::<Token, 1024>::new()`, `PollSelector::<u32, 64>::new()`.
///
/// The default capacity needs no import (`DefaultSelector::new()` is
/// inherent); this trait gives every other capacity the same `new`, once
/// it is in scope.
///
/// ```
/// use selectors2::{AnyCapacity, DefaultSelector, PollSelector};
///
/// let small = PollSelector::<u32, 64>::new()?;
/// assert_eq!(small.capacity(), 64);
/// let big = DefaultSelector::<(), 16384>::new()?;
/// assert_eq!(big.capacity(), 16384);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// Any capacity from 1 to 65,536 keys works (a power of two is not
/// needed); 0 or more than 65,536 does not build, and the error says so
/// ("a selector's capacity N must be in 1..=65536 keys"):
///
/// ```compile_fail
/// use selectors2::AnyCapacity;
/// let sel = selectors2::PollSelector::<usize, 0>::new();
/// ```
pub trait AnyCapacity: Sized + sys::Sealed {
    /// Opens the mechanism and an empty key table of capacity `N`.
    fn new() -> io::Result<Self>;
}

impl<B: OsBackend, D, const N: usize> sys::Sealed for Selector<B, D, N> {}

impl<B: OsBackend, D, const N: usize> AnyCapacity for Selector<B, D, N> {
    #[inline]
    fn new() -> io::Result<Self> {
        Self::open()
    }
}

impl<B: OsBackend, D, const N: usize> Selector<B, D, N> {
    /// The one constructor behind both `new`s.
    fn open() -> io::Result<Self> {
        Ok(Self::from_backend(B::open(N, sys::Token)?))
    }

    fn from_backend(backend: B) -> Self {
        Selector {
            inner: core_::Selector::with_storage(backend, sys::boxed_slots()),
        }
    }

    /// Starts watching `f` for `events` (`EVENT_READ`, `EVENT_WRITE` or
    /// both), keeping `data` with it; returns the new key. The key borrows
    /// the selector: copy it out (`*key`, or `.clone()` when `D` is not
    /// `Copy`) to keep it while calling the selector again.
    ///
    /// Fails, changing nothing, with `InvalidEvents`, `InvalidFd` (negative,
    /// or `>= FD_SETSIZE` on select), `AlreadyRegistered`, `Full`, or `Io`
    /// when the OS refuses (epoll refuses regular files with `EPERM`).
    /// Register non-blocking sockets: a ready report says a call makes
    /// progress, not that a blocking call will not wait.
    ///
    /// ```
    /// use selectors2::{DefaultSelector, EVENT_READ, Error};
    /// use std::net::TcpListener;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// listener.set_nonblocking(true)?;
    /// let mut sel = DefaultSelector::new()?;
    /// let key = sel.register(&listener, EVENT_READ, 0)?;
    /// assert_eq!(key.events, EVENT_READ);
    /// assert!(matches!(sel.register(&listener, EVENT_READ, 1), Err(Error::AlreadyRegistered(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn register(
        &mut self,
        f: impl Selectable,
        events: Events,
        data: D,
    ) -> Result<&SelectorKey<D>, Error> {
        self.inner
            .register(f.raw_fd(), events, data)
            .map_err(Error::from)
    }

    /// Stops watching `f` and returns its key. Succeeds even when the fd
    /// was closed first (the OS already forgot it), as in Python; fails
    /// with `NotRegistered` for an fd that is not.
    ///
    /// ```
    /// use selectors2::{DefaultSelector, EVENT_READ, Error};
    /// use std::net::TcpListener;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let mut sel = DefaultSelector::new()?;
    /// sel.register(&listener, EVENT_READ, "listener")?;
    /// assert_eq!(sel.unregister(&listener)?.data, "listener");
    /// assert!(matches!(sel.unregister(&listener), Err(Error::NotRegistered(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn unregister(&mut self, f: impl Selectable) -> Result<SelectorKey<D>, Error> {
        self.inner.unregister(f.raw_fd()).map_err(Error::from)
    }

    /// Changes the events and data of a registered `f`; returns the new
    /// key. Validates first; with the same events it only replaces the data
    /// (no system call). On any failure the old key and the old OS
    /// registration stay (Python's loses the registration, bpo-30014).
    ///
    /// ```
    /// use selectors2::{DefaultSelector, EVENT_READ, EVENT_WRITE, Error, Events};
    /// use std::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let conn = TcpStream::connect(listener.local_addr()?)?;
    /// let mut sel = DefaultSelector::new()?;
    /// sel.register(&conn, EVENT_READ, 1)?;
    /// // Something to send: watch WRITE too, until it is sent.
    /// assert_eq!(sel.modify(&conn, EVENT_READ | EVENT_WRITE, 1)?.events, EVENT_READ | EVENT_WRITE);
    /// // An invalid mask changes nothing.
    /// assert!(matches!(sel.modify(&conn, Events::empty(), 2), Err(Error::InvalidEvents(0))));
    /// assert_eq!(sel.get_key(&conn).map(|k| k.data), Some(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn modify(
        &mut self,
        f: impl Selectable,
        events: Events,
        data: D,
    ) -> Result<&SelectorKey<D>, Error> {
        self.inner
            .modify(f.raw_fd(), events, data)
            .map_err(Error::from)
    }

    /// The key of `f`, if it is registered.
    #[inline]
    pub fn get_key(&self, f: impl Selectable) -> Option<&SelectorKey<D>> {
        self.inner.get_key(f.raw_fd())
    }

    /// The read-only key table (iteration order is not registration order
    /// once keys were removed; see [`KeyMap`]).
    #[inline]
    pub fn get_map(&self) -> &KeyMap<D, N> {
        self.inner.get_map()
    }

    /// How many keys are registered.
    #[inline]
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether no key is registered.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// The fixed capacity, `N`.
    #[inline]
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Waits until a registered fd is ready or `timeout` passes; fills
    /// `ready` with one `(key, events)` per ready fd and returns how many.
    ///
    /// `None` blocks; zero polls; a positive timeout shorter than the
    /// mechanism's resolution (1 ms for epoll and poll, 1 µs for select)
    /// rounds up, never to zero; one longer than it can express waits the
    /// longest it can. A signal (`EINTR`) is retried with the time left
    /// until one deadline, so this never returns `Interrupted` and signals
    /// never stretch the wait; if the time is up after a signal it returns
    /// 0. With nothing registered it sleeps for the timeout. It may return
    /// 0 early in one case: epoll woke only for a registration it kept
    /// after the fd was closed, and could not drop it (out of fds to
    /// rebuild with; see the README's epoll notes), as CPython's returns an
    /// empty list then.
    ///
    /// `events` is never empty and never more than the key asked for; an
    /// error or hang-up on the fd counts as both `READ` and `WRITE`. When
    /// more fds are ready than `ready` holds, later calls return the rest.
    /// Each entry holds a clone of its key's data (`D: Clone`).
    ///
    /// ```
    /// use selectors2::{DefaultSelector, EVENT_READ, Ready};
    /// use std::io::Write;
    /// use std::net::{TcpListener, TcpStream};
    /// use std::time::Duration;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let mut client = TcpStream::connect(listener.local_addr()?)?;
    /// let (conn, _) = listener.accept()?;
    /// let mut sel = DefaultSelector::new()?;
    /// sel.register(&conn, EVENT_READ, "conn")?;
    /// let mut ready: Ready<&str, 16> = Ready::new();
    /// assert_eq!(sel.select(&mut ready, Some(Duration::ZERO))?, 0); // poll: nothing yet
    /// client.write_all(b"hi")?;
    /// assert_eq!(sel.select(&mut ready, Some(Duration::from_secs(5)))?, 1);
    /// let (key, events) = ready.iter().next().unwrap();
    /// assert_eq!((key.data, events), ("conn", EVENT_READ));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn select<const M: usize>(
        &mut self,
        ready: &mut Ready<D, M>,
        timeout: Option<Duration>,
    ) -> Result<usize, Error>
    where
        D: Clone,
    {
        self.select_with_eintr(ready, timeout, || Ok(()))
    }

    /// [`select`](Self::select), calling `on_eintr` each time a signal
    /// interrupts the wait (`EINTR`): the hook for a host runtime that must
    /// act on signals while a wait is in progress, as CPython runs its
    /// signal handlers (`PyErr_CheckSignals`) there.
    ///
    /// If `on_eintr` returns `Ok(())`, the wait resumes with the time left
    /// until the one deadline computed before the first wait that may block
    /// (PEP 475), as `select` does. (A positive timeout first polls with a
    /// zero one, which reads no clock: see `timeout.rs`.) If it returns an error, `select_with_eintr` returns
    /// it as [`Error::Io`] at once, with `ready` empty. `select` is this
    /// with a hook that always resumes.
    ///
    /// ```
    /// use selectors2::{DefaultSelector, Error, Ready};
    /// use std::io;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::time::Duration;
    ///
    /// static STOP: AtomicBool = AtomicBool::new(false); // set by a signal handler
    ///
    /// let mut sel = DefaultSelector::<u32>::new()?;
    /// let mut ready: Ready<u32, 16> = Ready::new();
    /// let result = sel.select_with_eintr(&mut ready, Some(Duration::from_millis(10)), || {
    ///     if STOP.load(Ordering::Relaxed) {
    ///         Err(io::Error::from(io::ErrorKind::Interrupted))
    ///     } else {
    ///         Ok(()) // resume with the time left
    ///     }
    /// });
    /// assert_eq!(result?, 0); // no signal came: the timeout passed
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline(always)]
    pub fn select_with_eintr<const M: usize>(
        &mut self,
        ready: &mut Ready<D, M>,
        timeout: Option<Duration>,
        on_eintr: impl FnMut() -> io::Result<()>,
    ) -> Result<usize, Error>
    where
        D: Clone,
    {
        // Every error of a select is the OS's (or the hook's): the body
        // returns `io::Result<usize>`, which comes back in two registers,
        // where a `Result<usize, Error>` is written to memory and read back
        // around the call (6 to 9 instructions a select, cachegrind).
        self.select_io(ready, timeout, on_eintr).map_err(Error::Io)
    }

    /// The body of [`select_with_eintr`](Self::select_with_eintr).
    /// (`#[inline(always)]` here measured worse: 165 -> 172 instructions
    /// a ping-pong, the caller's frame taking the body's registers.)
    #[inline]
    fn select_io<const M: usize>(
        &mut self,
        ready: &mut Ready<D, M>,
        timeout: Option<Duration>,
        mut on_eintr: impl FnMut() -> io::Result<()>,
    ) -> io::Result<usize>
    where
        D: Clone,
    {
        // The fast path: one wait, no clock. A positive timeout polls first
        // (see `timeout::first_wait`): something ready is the answer.
        let first = crate::timeout::first_wait(timeout);
        match self.inner.select(ready, first) {
            Ok(n) if n > 0 => return Ok(n),
            Ok(_) if first == timeout && !self.inner.backend_mut().take_spurious_wakeup() => {
                return Ok(0);
            }
            // Nothing yet after a poll, or a wake-up for nothing: wait on.
            Ok(_) => {}
            Err(e) => interrupted(e, &mut on_eintr)?,
        }
        self.wait_on(ready, timeout, on_eintr)
    }

    /// The rest of a `select` whose first wait ended with nothing: a poll
    /// before a positive timeout, a signal, or a spurious wake-up. Waits
    /// against one deadline, computed now (PEP 475).
    #[cold]
    #[inline(never)]
    fn wait_on<const M: usize>(
        &mut self,
        ready: &mut Ready<D, M>,
        timeout: Option<Duration>,
        mut on_eintr: impl FnMut() -> io::Result<()>,
    ) -> io::Result<usize>
    where
        D: Clone,
    {
        let inner = &mut self.inner;
        let n = crate::timeout::retry(timeout, |t| wait_once(inner, ready, t, &mut on_eintr))?;
        Ok(n.unwrap_or(0))
    }

    /// [`select`](Self::select) with a deadline instead of a timeout: waits
    /// until a registered fd is ready or `deadline` passes (at once if it
    /// has), retrying signals with the time left until that instant, as
    /// polling's `wait_deadline`. For event loops that keep timers.
    ///
    /// ```
    /// use selectors2::{DefaultSelector, Ready};
    /// use std::time::{Duration, Instant};
    ///
    /// let mut sel = DefaultSelector::<u8>::new()?;
    /// let mut ready: Ready<u8, 8> = Ready::new();
    /// let next_timer = Instant::now() + Duration::from_millis(5);
    /// assert_eq!(sel.select_until(&mut ready, next_timer)?, 0);
    /// assert!(Instant::now() >= next_timer);
    /// # Ok::<(), selectors2::Error>(())
    /// ```
    #[inline]
    pub fn select_until<const M: usize>(
        &mut self,
        ready: &mut Ready<D, M>,
        deadline: Instant,
    ) -> Result<usize, Error>
    where
        D: Clone,
    {
        // As `select` with a positive timeout (see `timeout::first_wait`):
        // a poll first, and the clock only when nothing is ready yet.
        if let Some(n) = wait_once(&mut self.inner, ready, Some(Duration::ZERO), &mut || Ok(()))?
            && n > 0
        {
            return Ok(n);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            // Past the deadline: the poll was the answer (`ready` is empty).
            return Ok(0);
        }
        let inner = &mut self.inner;
        let n = crate::timeout::retry_until(Some(left), Some(deadline), |t| {
            wait_once(inner, ready, t, &mut || Ok(()))
        })?;
        Ok(n.unwrap_or(0))
    }

    /// Moves this selector's keys into a bigger table of capacity `N2`,
    /// over the same mechanism: a selector can start small (cheap to create,
    /// a few KiB) and grow when [`register`](Self::register) says
    /// [`Error::Full`].
    ///
    /// Nothing is registered again: the OS registrations, `fileno()`, every
    /// key (fd, events, data) and the order of [`get_map`](Self::get_map)
    /// stay as they were, and reports left from earlier registrations of an
    /// fd number are still dropped. The mechanism's buffers grow with the
    /// table (epoll's and kqueue's event buffers, poll's arrays), so a
    /// `select` with a `Ready` of `N2` entries returns every ready key.
    ///
    /// `N2 >= N` (and `N2` in `1..=65536`) is checked when the program is
    /// built (`cargo build`; `cargo check` does not evaluate it), with an
    /// error that says so. This allocates (the new table, built on the
    /// heap as `new` builds one, and the buffers), the one call besides
    /// construction that does; the old table is freed.
    ///
    /// ```
    /// use selectors2::{AnyCapacity, EVENT_READ, Error, PollSelector};
    /// use std::os::unix::net::UnixStream;
    ///
    /// let pairs: Vec<_> = (0..3).map(|_| UnixStream::pair()).collect::<Result<_, _>>()?;
    /// let mut sel = PollSelector::<usize, 2>::new()?;
    /// sel.register(&pairs[0].0, EVENT_READ, 0)?;
    /// sel.register(&pairs[1].0, EVENT_READ, 1)?;
    /// assert!(matches!(sel.register(&pairs[2].0, EVENT_READ, 2), Err(Error::Full { capacity: 2 })));
    ///
    /// let mut sel = sel.grow::<64>();
    /// sel.register(&pairs[2].0, EVENT_READ, 2)?;
    /// assert_eq!((sel.len(), sel.capacity()), (3, 64));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// A smaller table does not build ("a selector grows into a table at
    /// least as big as its own (N2 >= N)"):
    ///
    /// ```compile_fail
    /// use selectors2::{AnyCapacity, PollSelector};
    /// let sel = PollSelector::<usize, 16>::new().unwrap();
    /// let _smaller = sel.grow::<8>();
    /// ```
    #[cold]
    pub fn grow<const N2: usize>(self) -> Selector<B, D, N2> {
        let mut inner = self.inner;
        inner.backend_mut().reserve_keys(N2);
        Selector {
            inner: inner.grow(sys::boxed_slots()),
        }
    }

    /// Which mechanism this selector runs on.
    #[inline]
    pub fn backend_kind(&self) -> BackendKind {
        self.inner.backend().kind()
    }

    /// The mechanism's own fd: `Some` for epoll and kqueue, `None` for poll
    /// and select (as Python has `fileno()` only on the former).
    #[inline]
    pub fn fileno(&self) -> Option<RawFd> {
        self.inner.backend().fileno()
    }

    /// Closes the selector and its OS resources. Dropping it does the same;
    /// this spelling is Python's. Closing an epoll or kqueue fd cannot fail
    /// in a way the caller could act on, so this returns `Ok`.
    pub fn close(self) -> io::Result<()> {
        drop(self);
        Ok(())
    }
}

/// A failed wait: `Ok` after `EINTR` when `on_eintr` says to resume
/// (`ready` is empty then), else the error to return.
#[cold]
fn interrupted(e: io::Error, on_eintr: &mut impl FnMut() -> io::Result<()>) -> io::Result<()> {
    if e.kind() == io::ErrorKind::Interrupted {
        on_eintr()
    } else {
        Err(e)
    }
}

/// One wait of a `select`: `Ok(None)` when it must be retried for the
/// time left (a signal the hook let through, or a wake-up only for a
/// registration the backend has since dropped).
#[inline]
fn wait_once<B: OsBackend, D: Clone, const N: usize, const M: usize>(
    inner: &mut core_::Selector<B, D, N, Box<[core_::Slot<D>; N]>>,
    ready: &mut Ready<D, M>,
    timeout: Option<Duration>,
    on_eintr: &mut impl FnMut() -> io::Result<()>,
) -> io::Result<Option<usize>> {
    match inner.select(ready, timeout) {
        Ok(0) if inner.backend_mut().take_spurious_wakeup() => Ok(None),
        Ok(n) => Ok(Some(n)),
        Err(e) => interrupted(e, on_eintr).map(|()| None),
    }
}

/// The epoll or kqueue fd, as [`fileno`](Selector::fileno): to nest the
/// selector in another event loop (the fd is readable when a key is
/// ready). Only the mechanisms that have an fd of their own are `AsFd`.
#[cfg(unix)]
impl<B: OsBackend + std::os::fd::AsFd, D, const N: usize> std::os::fd::AsFd for Selector<B, D, N> {
    #[inline]
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.inner.backend().as_fd()
    }
}

#[cfg(unix)]
impl<B: OsBackend + std::os::fd::AsFd, D, const N: usize> std::os::fd::AsRawFd
    for Selector<B, D, N>
{
    #[inline]
    fn as_raw_fd(&self) -> RawFd {
        std::os::fd::AsFd::as_fd(self.inner.backend()).as_raw_fd()
    }
}

impl<D, const N: usize> Selector<sys::Auto, D, N> {
    /// Like [`new`](Self::new), but tries only the mechanisms of `order`, in
    /// that order, falling back to the next when one is missing or
    /// forbidden here. Kinds this platform lacks are skipped (when nothing
    /// else is left, the error names one: "kqueue is not available on this
    /// platform"); the error of a mechanism that failed wins; a shortage
    /// (`EMFILE`, `ENFILE`, `ENOMEM`, `ENOBUFS`) is returned at once, as
    /// [`sys::Auto`] explains.
    ///
    /// ```
    /// use selectors2::{BackendKind, DefaultSelector};
    ///
    /// let sel = DefaultSelector::<usize, 64>::with_backends(&[BackendKind::Kqueue, BackendKind::Poll])?;
    /// assert!(matches!(sel.backend_kind(), BackendKind::Kqueue | BackendKind::Poll));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with_backends(order: &[BackendKind]) -> io::Result<Self> {
        Ok(Self::from_backend(sys::Auto::open_first(order, N)?))
    }
}

impl<B: OsBackend, D: fmt::Debug, const N: usize> fmt::Debug for Selector<B, D, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Selector")
            .field("backend", &self.backend_kind())
            .field("fileno", &self.fileno())
            .field("keys", self.get_map())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A failed wait: `EINTR` goes to the hook (whose error becomes the
    /// select's), any other OS error passes through unchanged.
    #[test]
    fn a_failed_wait_maps_to_the_os_error_or_the_hook() {
        let mut calls = 0;
        let mut hook = || {
            calls += 1;
            Err(io::Error::other("stop"))
        };
        let eintr = io::Error::from(io::ErrorKind::Interrupted);
        let e = interrupted(eintr, &mut hook).unwrap_err();
        assert_eq!(e.to_string(), "stop");
        let e = interrupted(io::Error::from_raw_os_error(9), &mut hook).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(9), "the OS error, unchanged");
        assert_eq!(calls, 1, "the hook runs for EINTR only");
        // A hook that resumes: the wait is retried (`Ok`).
        let eintr = io::Error::from(io::ErrorKind::Interrupted);
        assert!(interrupted(eintr, &mut || Ok(())).is_ok());
    }

    #[test]
    fn selectors_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<DefaultSelector>();
        check::<PollSelector<String>>();
        check::<SelectSelector>();
        #[cfg(has_epoll)]
        check::<EpollSelector>();
    }

    #[cfg(has_epoll)]
    #[test]
    fn epoll_selector_is_as_fd_with_its_fileno() {
        use std::os::fd::{AsFd, AsRawFd};
        let sel = EpollSelector::<u8>::new().unwrap();
        assert_eq!(Some(sel.as_fd().as_raw_fd()), sel.fileno());
        assert_eq!(Some(sel.as_raw_fd()), sel.fileno());
    }

    #[cfg(unix)]
    #[test]
    fn a_large_table_is_built_off_the_stack() {
        // 65,536 keys of 64-byte data is several MiB: more than this thread's
        // 256 KiB stack, in debug builds too.
        let t = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
                let mut sel = DefaultSelector::<[u64; 8], 65536>::new().unwrap();
                sel.register(&a, crate::EVENT_READ, [7; 8]).unwrap();
                assert_eq!(sel.get_key(&a).unwrap().data, [7; 8]);
                sel.capacity()
            })
            .unwrap();
        assert_eq!(t.join().unwrap(), 65536);
    }
}
