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
/// user data `D`, its capacity chosen at run time.
///
/// Name it through an alias: [`DefaultSelector`] (the best mechanism that
/// works here), `EpollSelector` (Linux), `KqueueSelector` (BSD, Apple), [`PollSelector`] or
/// [`SelectSelector`]. No trait import is needed to make one.
///
/// **Capacity.** [`new`](Self::new) reserves room for [`DEFAULT_CAPACITY`]
/// keys and [`with_capacity`](Self::with_capacity) for as many as you say;
/// a [`register`](Self::register) beyond that grows the table (doubling:
/// a new table, and bigger buffers for the mechanism that sizes them from
/// it, epoll's events or poll's arrays; no system call: `fileno()`, every
/// key and every OS registration stay), as Python's selectors, mio and
/// polling never refuse a registration for want of room. Nothing allocates while
/// [`len`](Self::len) is below [`capacity`](Self::capacity) (given data
/// whose `Clone` does not). [`with_fixed_capacity`](Self::with_fixed_capacity)
/// never grows: the register past it fails with [`Error::Full`], changing
/// nothing. The table is allocated zeroed, so its memory becomes resident
/// only as keys are stored in it; the largest holds 2^31 keys.
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
pub struct Selector<B: OsBackend, D = usize> {
    inner: core_::SelectorInner<B, D, Box<KeyMap<D>>>,
    /// Made by `with_fixed_capacity`: never grows.
    fixed: bool,
}

/// A selector on epoll (Linux, Android).
#[cfg(has_epoll)]
#[cfg_attr(docsrs, doc(cfg(any(target_os = "linux", target_os = "android"))))]
pub type EpollSelector<D = usize> = Selector<sys::Epoll, D>;

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
pub type KqueueSelector<D = usize> = Selector<sys::Kqueue, D>;

/// A selector on `poll` (every unix), or `WSAPoll` on Windows.
pub type PollSelector<D = usize> = Selector<sys::Poll, D>;

/// A selector on `select` (every unix): fds must be below
/// [`FD_SETSIZE`](sys::FD_SETSIZE). On Windows, Winsock's `select`: at most
/// `FD_SETSIZE` (512) sockets at once, the next refused with `Full`.
pub type SelectSelector<D = usize> = Selector<sys::Select, D>;

/// The best selector that works here, chosen at run time: kqueue or epoll,
/// else poll, else select; on Windows WSAPoll, else select (see
/// [`sys::Auto`]).
pub type DefaultSelector<D = usize> = Selector<sys::Auto, D>;

impl<B: OsBackend, D> Selector<B, D> {
    /// Opens the mechanism with room for [`DEFAULT_CAPACITY`] keys, growing
    /// past it as keys are registered: Python's `DefaultSelector()`.
    ///
    /// The data type is inferred from what you register, or named:
    /// `DefaultSelector::<Token>::new()`.
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
    #[inline]
    pub fn new() -> io::Result<Self> {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// Opens the mechanism with room for at least `keys` keys (rounded up
    /// to a power of two: [`capacity`](Self::capacity) says how many),
    /// growing past it as keys are registered. `keys` of 0 reserves one.
    /// Fails with `InvalidInput` for more than 2^31 keys, and with the OS's
    /// error when the mechanism cannot be opened (`EMFILE`...).
    ///
    /// ```
    /// use selectors2::PollSelector;
    ///
    /// let sel = PollSelector::<u32>::with_capacity(100)?;
    /// assert_eq!(sel.capacity(), 128);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with_capacity(keys: usize) -> io::Result<Self> {
        let slots = sys::slots_for(keys.max(1)).ok_or_else(|| bad_capacity(keys))?;
        Self::open(B::open(slots)?, slots, false)
    }

    /// Opens the mechanism with room for exactly `keys` keys, and never
    /// grows: the [`register`](Self::register) past them fails with
    /// [`Error::Full`] and changes nothing. A memory bound under load, or
    /// the guarantee that no call after this one allocates. Fails with
    /// `InvalidInput` for 0 or more than 2^31 keys.
    ///
    /// ```
    /// use selectors2::{EVENT_READ, Error, PollSelector};
    /// use std::os::unix::net::UnixStream;
    ///
    /// let pairs: Vec<_> = (0..3).map(|_| UnixStream::pair()).collect::<Result<_, _>>()?;
    /// let mut sel = PollSelector::<usize>::with_fixed_capacity(2)?;
    /// sel.register(&pairs[0].0, EVENT_READ, 0)?;
    /// sel.register(&pairs[1].0, EVENT_READ, 1)?;
    /// assert!(matches!(sel.register(&pairs[2].0, EVENT_READ, 2), Err(Error::Full { capacity: 2 })));
    /// assert_eq!((sel.len(), sel.capacity()), (2, 2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_fixed_capacity(keys: usize) -> io::Result<Self> {
        if keys == 0 || sys::slots_for(keys).is_none() {
            return Err(bad_capacity(keys));
        }
        Self::open(B::open(keys)?, keys, true)
    }

    /// A selector over `backend` (opened for `keys` keys) with an empty
    /// table for them.
    fn open(backend: B, keys: usize, fixed: bool) -> io::Result<Self> {
        let table = sys::zeroed_table(keys, fixed)?;
        Ok(Selector {
            inner: core_::SelectorInner::with_table(backend, table),
            fixed,
        })
    }

    /// Makes room for `additional` more keys than are registered, so that
    /// registering them allocates nothing. Does nothing when there is room;
    /// else grows the table (and the mechanism's buffers) to the next power
    /// of two that holds them, keeping every key and OS registration. A
    /// selector of fixed capacity fails with [`Error::Full`] instead; an
    /// allocation that fails is [`Error::Io`] (`OutOfMemory`), and more
    /// than 2^31 keys in all is [`Error::Io`] (`InvalidInput`), as
    /// [`with_capacity`](Self::with_capacity) says.
    ///
    /// ```
    /// use selectors2::DefaultSelector;
    ///
    /// let mut sel = DefaultSelector::<u32>::with_capacity(16)?;
    /// sel.reserve(1000)?;
    /// assert!(sel.capacity() >= 1000);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reserve(&mut self, additional: usize) -> Result<(), Error> {
        let capacity = self.capacity();
        let needed = self.len().saturating_add(additional);
        if needed <= capacity {
            return Ok(());
        }
        if self.fixed {
            return Err(Error::Full { capacity });
        }
        self.grow_to(needed).map(drop)
    }

    /// Moves the keys into a table for `keys` keys (more than now), after
    /// growing the mechanism's buffers to match, and returns the old table
    /// (empty). On failure nothing has changed but, perhaps, bigger
    /// buffers. More than the largest table is `InvalidInput`.
    #[cold]
    #[inline(never)]
    fn grow_to(&mut self, keys: usize) -> Result<Box<KeyMap<D>>, Error> {
        let Some(slots) = sys::slots_for(keys) else {
            return Err(Error::Io(bad_capacity(keys)));
        };
        let table = sys::zeroed_table(slots, false)?;
        self.inner.backend_mut().reserve_keys(slots)?;
        // Cannot fail: the new table is empty and bigger than the old.
        self.inner.replace_table(table).map_err(|_| Error::Full {
            capacity: self.capacity(),
        })
    }

    /// `register` on a full table: grows it when the register would
    /// otherwise succeed up to the room check (anything else the register
    /// reports itself, in Python's order, a fixed selector's `Full` among
    /// them), registers, and if the OS refuses the fd, moves the keys back
    /// into the table they came from: a failed register changes nothing.
    #[cold]
    #[inline(never)]
    fn register_growing(
        &mut self,
        fd: RawFd,
        events: Events,
        data: D,
    ) -> Result<&SelectorKey<D>, Error> {
        let mut old = None;
        if !self.fixed {
            match self.inner.check_register(fd, events) {
                // The table's own limit, not the mechanism's (Windows select).
                Err(core_::Error::Full { capacity }) if capacity == self.capacity() => {
                    old = Some(self.grow_to(capacity.saturating_mul(2))?);
                }
                _ => {}
            }
        }
        if let Err(e) = self.inner.register(fd, events, data) {
            if let Some(old) = old {
                // Cannot fail: the old table is empty and held these keys.
                let _ = self.inner.replace_table(old);
            }
            return Err(Error::from(e));
        }
        // Cannot miss: the key was just registered.
        self.inner.get_key(fd).ok_or(Error::NotRegistered(fd))
    }

    /// Starts watching `f` for `events` (`EVENT_READ`, `EVENT_WRITE` or
    /// both), keeping `data` with it; returns the new key. The key borrows
    /// the selector: copy it out (`*key`, or `.clone()` when `D` is not
    /// `Copy`) to keep it while calling the selector again.
    ///
    /// Grows the table when it is full (see the type's docs), unless it was
    /// made by [`with_fixed_capacity`](Self::with_fixed_capacity). Fails,
    /// changing nothing, with `InvalidEvents`, `InvalidFd` (negative, or
    /// `>= FD_SETSIZE` on select), `AlreadyRegistered`, `Full` (a fixed
    /// capacity, or Windows select's 512 sockets), or `Io` when the OS
    /// refuses (epoll refuses regular files with `EPERM`) or the table
    /// cannot grow (`OutOfMemory`).
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
    #[inline(always)]
    pub fn register(
        &mut self,
        f: impl Selectable,
        events: Events,
        data: D,
    ) -> Result<&SelectorKey<D>, Error> {
        let fd = f.raw_fd();
        if self.inner.len() >= self.inner.capacity() {
            return self.register_growing(fd, events, data);
        }
        self.inner.register(fd, events, data).map_err(Error::from)
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
    #[inline(always)]
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
    #[inline(always)]
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
    pub fn get_map(&self) -> &KeyMap<D> {
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

    /// How many keys the selector holds without allocating: what it
    /// reserved (at least), or the fixed capacity.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.inner.capacity()
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
    /// rebuild with; see docs/backends.md, "epoll"), as CPython's returns an
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
    #[inline(always)]
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
    /// zero one, which reads no clock.) If it returns an error,
    /// `select_with_eintr` returns it as [`Error::Io`] at once, with
    /// `ready` empty. `select` is this with a hook that always resumes.
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
        // Every error of a select is the OS's (or the hook's).
        self.select_io(ready, timeout, on_eintr).map_err(Error::Io)
    }

    /// The body of [`select_with_eintr`](Self::select_with_eintr), inline
    /// so that the wait's system call is issued in the caller's frame (see
    /// the core's `register`); the retries after a first wait that found
    /// nothing are out of line (`wait_on`).
    #[inline(always)]
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

    /// Which mechanism this selector runs on.
    #[inline]
    pub fn backend_kind(&self) -> BackendKind {
        self.inner.backend().kind()
    }

    /// The mechanism's own fd: `Some` for epoll and kqueue, `None` for poll
    /// and select (as Python has `fileno()` only on the former). `None` too
    /// for a kqueue in a child after `fork`, which does not inherit it (see
    /// the kqueue backend's docs, "After `fork`").
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

#[cold]
fn bad_capacity(keys: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("a selector holds from 1 to 2^31 keys, not {keys}"),
    )
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
fn wait_once<B: OsBackend, D: Clone, const M: usize>(
    inner: &mut core_::SelectorInner<B, D, Box<KeyMap<D>>>,
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
impl<B: OsBackend + std::os::fd::AsFd, D> std::os::fd::AsFd for Selector<B, D> {
    #[inline]
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.inner.backend().as_fd()
    }
}

#[cfg(unix)]
impl<B: OsBackend + std::os::fd::AsFd, D> std::os::fd::AsRawFd for Selector<B, D> {
    #[inline]
    fn as_raw_fd(&self) -> RawFd {
        std::os::fd::AsFd::as_fd(self.inner.backend()).as_raw_fd()
    }
}

impl<D> Selector<sys::Auto, D> {
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
    /// let sel = DefaultSelector::<usize>::with_backends(&[BackendKind::Kqueue, BackendKind::Poll])?;
    /// assert!(matches!(sel.backend_kind(), BackendKind::Kqueue | BackendKind::Poll));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with_backends(order: &[BackendKind]) -> io::Result<Self> {
        Self::with_backends_and_capacity(order, DEFAULT_CAPACITY)
    }

    /// [`with_backends`](Self::with_backends) with room for at least
    /// `keys` keys, as [`with_capacity`](Self::with_capacity) reserves.
    ///
    /// ```
    /// use selectors2::{BackendKind, DefaultSelector};
    ///
    /// let sel = DefaultSelector::<u32>::with_backends_and_capacity(&[BackendKind::Poll], 64)?;
    /// assert_eq!((sel.backend_kind(), sel.capacity()), (BackendKind::Poll, 64));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with_backends_and_capacity(order: &[BackendKind], keys: usize) -> io::Result<Self> {
        let slots = sys::slots_for(keys.max(1)).ok_or_else(|| bad_capacity(keys))?;
        Self::open(sys::Auto::open_first(order, slots)?, slots, false)
    }
}

impl<B: OsBackend, D: fmt::Debug> fmt::Debug for Selector<B, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Selector")
            .field("backend", &self.backend_kind())
            .field("fileno", &self.fileno())
            .field("capacity", &self.capacity())
            .field("keys", &self.get_map())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh user's finding: an error reporter walking `source()` said
    /// the OS's message twice (the wrapper printed it and returned it as
    /// its source). Both wrappers are transparent now.
    #[test]
    fn an_error_chain_says_the_os_message_once() {
        use std::error::Error as _;
        fn chain(e: &dyn std::error::Error) -> Vec<String> {
            let mut out = vec![e.to_string()];
            let mut next = e.source();
            while let Some(s) = next {
                out.push(s.to_string());
                next = s.source();
            }
            out
        }
        let os = || io::Error::other("the OS said no");
        assert_eq!(chain(&Error::Io(os())), ["the OS said no"]);
        let core: core_::Error<io::Error> = core_::Error::Backend(os());
        assert_eq!(chain(&core), ["the OS said no"]);
        assert!(Error::from(core).source().is_none());
    }

    /// A fresh user's finding: `reserve` past the largest table said
    /// `Full` with the current capacity, which only a fixed selector may.
    #[test]
    fn reserve_past_the_largest_table_is_invalid_input() {
        let mut sel = crate::PollSelector::<u32>::with_capacity(4).unwrap();
        for n in [usize::MAX, (1 << 31) + 1] {
            match sel.reserve(n) {
                Err(Error::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}"),
                other => panic!("reserve({n}): {other:?}"),
            }
        }
        assert_eq!(sel.capacity(), 4);
        let mut fixed = crate::PollSelector::<u32>::with_fixed_capacity(4).unwrap();
        assert!(matches!(
            fixed.reserve(usize::MAX),
            Err(Error::Full { capacity: 4 })
        ));
    }

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
                let mut sel = DefaultSelector::<[u64; 8]>::with_capacity(65536).unwrap();
                sel.register(&a, crate::EVENT_READ, [7; 8]).unwrap();
                assert_eq!(sel.get_key(&a).unwrap().data, [7; 8]);
                sel.capacity()
            })
            .unwrap();
        assert_eq!(t.join().unwrap(), 65536);
    }
}
