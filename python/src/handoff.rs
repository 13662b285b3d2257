//! Taking turns across threads: a call that finds the selector held by a
//! `select` waiting in another thread wakes it and waits for its turn
//! (the [`Handoff`]); and what `fork()` leaves behind (a holder in a
//! thread the child does not have).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use pyo3::intern;
use pyo3::prelude::*;
use selectors2::{BackendKind, Waker};

use crate::errors::busy;
use crate::gil;
use crate::green::wake_green;
use crate::selector::NativeSelector;

/// `m` locked, whether or not a thread panicked holding it (nothing here
/// leaves the state half-changed).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How many times this process is a child of `fork()` (counted by a
/// `pthread_atfork` hook, [`install_fork_hook`], which C's `fork()` runs
/// even when Python's at-fork hooks do not, and by an
/// `os.register_at_fork` hook, [`forked`], where there is no
/// `pthread_atfork`): which process a `select` holding a selector runs
/// in, without a `getpid` system call per `select`.
pub(crate) static FORKS: AtomicU64 = AtomicU64::new(0);

/// `os.register_at_fork(after_in_child=...)`: see [`FORKS`].
#[pyfunction]
pub(crate) fn forked() {
    FORKS.fetch_add(1, Ordering::Relaxed);
}

/// Counts every `fork()` in [`FORKS`], from the child, Python's or not
/// (a C library's, `ctypes`): once per process.
#[cfg(unix)]
pub(crate) fn install_fork_hook() {
    #![allow(unsafe_code)]
    extern "C" fn child() {
        // Async-signal-safe: one atomic add.
        FORKS.fetch_add(1, Ordering::Relaxed);
    }
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: `child` is a plain function that lives as long as the
        // process (this module is never unloaded: CPython does not unload
        // extension modules) and only does an atomic add.
        // Failure (ENOMEM) leaves Python's own hook, `forked`.
        let _ = unsafe { libc::pthread_atfork(None, None, Some(child)) };
    });
}

#[cfg(not(unix))]
pub(crate) fn install_fork_hook() {}

/// Every open selector's [`Handoff`], by the address of its Python
/// object: what a caller that finds the selector held (so cannot read its
/// fields) looks up. Touched at `_open`, at deallocation, and on the
/// rare call that meets a waiting `select`.
pub(crate) static HANDOFFS: Mutex<BTreeMap<usize, Arc<Handoff>>> = Mutex::new(BTreeMap::new());

/// How a `select` that waits with the selector held lets other threads
/// in. A caller that finds the selector held by such a `select` asks for
/// a turn ([`Handoff::wait_turn`]): it counts itself in `requests`, wakes
/// the wait through the selector's wake-up fd, and waits (GIL released)
/// until the `select` lets go. That `select` ([`Handoff::let_go`]) gives
/// the selector up, waits until every caller counted has taken its turn,
/// then takes the selector again and waits on for the time left: the
/// call from the other thread happens during the `select`, and a file it
/// registers is watched by the rest of that wait, as with the standard
/// library's `EpollSelector`.
pub(crate) struct Handoff {
    pub(crate) state: Mutex<HandoffState>,
    /// Notified when a `select` lets go (`released`) and when `requests`
    /// falls to zero.
    pub(crate) turn: Condvar,
    /// The mechanism, read by `select` before it can hold the selector.
    pub(crate) kind: BackendKind,
}

pub(crate) struct HandoffState {
    /// The `select` holding the selector while it waits, if any.
    pub(crate) waiting: Option<Holder>,
    /// Callers counted in by [`Handoff::wait_turn`] that have not had
    /// their turn yet.
    pub(crate) requests: usize,
    /// How many times a `select` let go: a caller waits for this to move.
    pub(crate) released: u64,
    /// Threads waiting on `turn` (no notification, a system call, without).
    pub(crate) sleepers: usize,
    /// The selector's wake-up fd (the one in its table).
    pub(crate) waker: Option<Arc<Waker>>,
    /// The mechanism's own fd where a forked child has a copy of it
    /// (epoll's; a child gets no kqueue), for [`close_in_child`].
    pub(crate) table_fd: Option<i32>,
    /// [`close_in_child`] closed the fds of the selector in this forked
    /// process by number: whatever still owns them (the `Table` and the
    /// `Waker` the parent's `select` holds) must never close them again.
    pub(crate) closed_in_child: bool,
}

#[derive(Clone, Copy)]
pub(crate) struct Holder {
    /// The process it runs in, as [`FORKS`] counts them: after `fork()`
    /// the child has the state but not the thread.
    pub(crate) process: u64,
    /// The thread it runs in ([`this_thread`]): a call from that same
    /// thread (a finalizer run by the garbage collector, say) cannot wait
    /// for it.
    pub(crate) thread: usize,
    /// Whether a caller can end its wait: it polls (ends by itself), or
    /// watches the wake-up fd.
    pub(crate) wakeable: bool,
}

/// How a caller waits for its turn.
#[derive(Clone, Copy)]
pub(crate) enum Ask {
    /// A short call (register, get_key...): wake the `select`.
    Wake,
    /// Another `select`: wait without waking it (two waits that woke each
    /// other would never wait), until it lets go or `until` passes.
    Quietly(Option<Instant>),
}

/// One caller counted in `requests`, until it is dropped (once it holds
/// the selector, or gives up).
pub(crate) struct Request(Arc<Handoff>);

impl Drop for Request {
    fn drop(&mut self) {
        let mut s = lock(&self.0.state);
        s.requests -= 1;
        if s.requests == 0 && s.sleepers > 0 {
            self.0.turn.notify_all();
        }
    }
}

impl Handoff {
    pub(crate) fn new(kind: BackendKind) -> Arc<Handoff> {
        Arc::new(Handoff {
            state: Mutex::new(HandoffState {
                waiting: None,
                requests: 0,
                released: 0,
                sleepers: 0,
                waker: None,
                table_fd: None,
                closed_in_child: false,
            }),
            turn: Condvar::new(),
            kind,
        })
    }

    /// `select` is about to wait holding the selector.
    pub(crate) fn hold(&self, wakeable: bool) {
        lock(&self.state).waiting = Some(Holder {
            process: FORKS.load(Ordering::Relaxed),
            thread: this_thread(),
            wakeable,
        });
    }

    /// `select` has given the selector up (its borrow is dropped): lets
    /// the callers waiting for a turn in, and waits (GIL released) until
    /// the ones counted have had their turn, for one [`SLICE`] at most
    /// (more keep coming when threads hammer the selector; each wakes the
    /// wait again). Also when the `select` is about to return: its thread
    /// keeps the GIL on returning, and a loop that calls `select` again
    /// at once (a busy server: something is always ready) would take the
    /// selector back before a woken caller gets the GIL, every time, and
    /// starve it.
    pub(crate) fn let_go(&self, py: Python<'_>) {
        let mut s = lock(&self.state);
        s.waiting = None;
        s.released = s.released.wrapping_add(1);
        if s.sleepers > 0 {
            self.turn.notify_all();
        }
        if s.requests == 0 {
            return;
        }
        drop(s);
        gil::detach(py, || {
            let end = Instant::now() + SLICE;
            self.wait_while(lock(&self.state), end, |s| s.requests > 0)
        });
    }

    /// Waits on `turn` while `pending` holds, until `end` at the latest;
    /// `true` when it stopped for `end`.
    pub(crate) fn wait_while(
        &self,
        mut s: MutexGuard<'_, HandoffState>,
        end: Instant,
        pending: impl Fn(&HandoffState) -> bool,
    ) -> bool {
        s.sleepers += 1;
        let mut timed_out = false;
        while pending(&s) {
            let now = Instant::now();
            if now >= end {
                timed_out = true;
                break;
            }
            s = self
                .turn
                .wait_timeout(s, end - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        s.sleepers -= 1;
        timed_out
    }

    /// The caller found the selector held: waits for a `select` holding
    /// it to let go (see [`Ask`]), for one [`SLICE`] at most. `busy()`
    /// when nothing would ever let go: no `select` waits in this process,
    /// the one waiting is this thread's, or it cannot be woken.
    pub(crate) fn wait_turn(
        self: &Arc<Self>,
        py: Python<'_>,
        ask: Ask,
        request: &mut Option<Request>,
    ) -> PyResult<Turn> {
        let mut s = lock(&self.state);
        let holder = match s.waiting {
            Some(h) if h.process == FORKS.load(Ordering::Relaxed) && h.thread != this_thread() => h,
            Some(_) => return Err(busy()),
            None => {
                // No `select` waits: another thread's call holds the
                // selector for a moment (and gave the GIL up meanwhile),
                // or a `select` has just let go. Let it run, then look
                // again.
                drop(s);
                gil::detach(py, || std::thread::sleep(BRIEF));
                return Ok(Turn::Brief);
            }
        };
        let until = match ask {
            Ask::Wake if !holder.wakeable => return Err(busy()),
            Ask::Wake => {
                if request.is_none() {
                    s.requests += 1;
                    *request = Some(Request(Arc::clone(self)));
                }
                if let Some(waker) = &s.waker {
                    // Cannot fail but for a closed fd: then the wait was
                    // a poll, or has been woken already.
                    let _ = waker.wake();
                }
                None
            }
            Ask::Quietly(until) => until,
        };
        let seen = s.released;
        drop(s);
        Ok(gil::detach(py, || {
            let slice = Instant::now() + SLICE;
            let end = until.map_or(slice, |u| u.min(slice));
            if !self.wait_while(lock(&self.state), end, |s| s.released == seen) {
                Turn::Released
            } else if until.is_some_and(|u| Instant::now() >= u) {
                Turn::TimedOut
            } else {
                Turn::Slice
            }
        }))
    }
}

/// How long a caller waits for its turn, or a `select` for its callers,
/// before it looks up again: for signals (Ctrl-C in a thread that waits
/// for a turn is a `KeyboardInterrupt` within this), and for the
/// interpreter's exit (where a `select` in a daemon thread never gets the
/// GIL back to let go).
pub(crate) const SLICE: Duration = Duration::from_millis(20);

/// How long a caller lets another thread's short hold on the selector
/// run before it looks again ([`Turn::Brief`]).
const BRIEF: Duration = Duration::from_micros(50);

/// How long a caller looks again for a selector held by short calls (no
/// `select` waiting) before it gives up with `busy()`: a hold that lasts
/// is this very thread's (Python code run inside a method, which never
/// gives it up while the caller waits).
const BRIEF_TOTAL: Duration = Duration::from_millis(100);

/// How a wait for a turn ended.
pub(crate) enum Turn {
    /// No `select` held the selector: a short call of another thread
    /// did, or a `select` had just let go; try again.
    Brief,
    /// The `select` let go: try again.
    Released,
    /// A [`SLICE`] passed: handle signals, then wait again.
    Slice,
    /// The caller's own deadline passed.
    TimedOut,
}

/// This thread, as a number (the address of a thread-local: no system
/// call, unlike `gettid`).
pub(crate) fn this_thread() -> usize {
    thread_local! {
        static MARK: u8 = const { 0 };
    }
    MARK.with(|m| m as *const u8 as usize)
}

/// Whether the interpreter is shutting down (`sys.is_finalizing()`; an
/// interpreter too far gone to say counts as shutting down).
#[cold]
pub(crate) fn finalizing(py: Python<'_>) -> bool {
    py.import(intern!(py, "sys"))
        .and_then(|sys| sys.getattr(intern!(py, "is_finalizing"))?.call0())
        .and_then(|v| v.is_truthy())
        .unwrap_or(true)
}

/// The handoff of the selector `slf`, found without holding it.
#[cold]
pub(crate) fn handoff_of(slf: &Bound<'_, NativeSelector>) -> Option<Arc<Handoff>> {
    lock(&HANDOFFS).get(&(slf.as_ptr() as usize)).cloned()
}

/// Whether the selector `slf` is held by a `select` of the parent of
/// this forked process (so never let go here).
#[cold]
pub(crate) fn held_in_parent(slf: &Bound<'_, NativeSelector>) -> bool {
    handoff_of(slf).is_some_and(|h| {
        lock(&h.state)
            .waiting
            .is_some_and(|w| w.process != FORKS.load(Ordering::Relaxed))
    })
}

/// `close()` in a forked child of a selector that a `select` of the
/// parent holds (see [`held_in_parent`]): the selector's fields cannot be
/// reached (the thread that holds them does not exist here), so the fds
/// this process has copies of (epoll's, and the wake-up fd's readable end:
/// an `eventfd` on Linux, a pipe's read end elsewhere, whose write end
/// stays until exit or `exec`) are closed by number, once, as the
/// standard library's `close()` closes its copy in a child. The selector's
/// destructor then forgets what held them ([`HandoffState::closed_in_child`]).
#[cold]
pub(crate) fn close_in_child(slf: &Bound<'_, NativeSelector>) {
    let Some(handoff) = handoff_of(slf) else {
        return;
    };
    let mut s = lock(&handoff.state);
    if s.closed_in_child {
        return;
    }
    s.closed_in_child = true;
    let waker = s.waker.as_deref().and_then(waker_fd);
    for fd in [s.table_fd, waker].into_iter().flatten() {
        close_number(fd);
    }
}

/// Closes fd `fd` of this process, ignoring errors.
#[cfg(unix)]
fn close_number(fd: i32) {
    #![allow(unsafe_code)]
    // SAFETY: `fd` is this forked process's copy of an fd that the
    // selector's unreachable `Table` or `Waker` owns; those owners are
    // never dropped here without being forgotten (`closed_in_child`), so
    // no one else closes or uses this number's old file again.
    let _ = unsafe { libc::close(fd) };
}

#[cfg(not(unix))]
fn close_number(_: i32) {}

/// `take()`'s result once it succeeds, waiting for a turn while a
/// `select` of another thread holds the selector (see [`Handoff`]);
/// `None` when `ask`'s deadline passes first. Between slices of the wait
/// it runs the signal handlers (an exception from one propagates), and it
/// gives up with `busy()` once the interpreter is shutting down.
pub(crate) fn acquire<T>(
    slf: &Bound<'_, NativeSelector>,
    ask: impl FnOnce() -> Ask,
    mut take: impl FnMut() -> Option<T>,
) -> PyResult<Option<T>> {
    if let Some(held) = take() {
        return Ok(Some(held));
    }
    let Some(handoff) = handoff_of(slf) else {
        return Err(busy());
    };
    let py = slf.py();
    let ask = ask();
    let mut request = None;
    let mut brief_since: Option<Instant> = None;
    loop {
        match handoff.wait_turn(py, ask, &mut request)? {
            Turn::TimedOut => return Ok(None),
            Turn::Brief => {
                let since = *brief_since.get_or_insert_with(Instant::now);
                if since.elapsed() > BRIEF_TOTAL {
                    return Err(busy());
                }
            }
            Turn::Released => brief_since = None,
            Turn::Slice => {
                brief_since = None;
                py.check_signals()?;
                if finalizing(py) {
                    return Err(busy());
                }
            }
        }
        if let Some(held) = take() {
            return Ok(Some(held));
        }
    }
}

#[inline]
pub(crate) fn borrow_mut<'py>(
    slf: &Bound<'py, NativeSelector>,
) -> PyResult<PyRefMut<'py, NativeSelector>> {
    let this = acquire(slf, || Ask::Wake, || slf.try_borrow_mut().ok())?.ok_or_else(busy)?;
    if this.green_waits > 0 {
        wake_green(&this);
    }
    Ok(this)
}

#[inline]
pub(crate) fn borrow<'py>(
    slf: &Bound<'py, NativeSelector>,
) -> PyResult<PyRef<'py, NativeSelector>> {
    acquire(slf, || Ask::Wake, || slf.try_borrow().ok())?.ok_or_else(busy)
}

/// The number the table knows the waker's readable end by: its fd, or
/// on Windows its socket (if it fits, as `register` requires of any).
#[cfg(unix)]
pub(crate) fn waker_fd(waker: &Waker) -> Option<i32> {
    use std::os::fd::AsRawFd;
    Some(waker.as_raw_fd())
}

#[cfg(windows)]
pub(crate) fn waker_fd(waker: &Waker) -> Option<i32> {
    use std::os::windows::io::AsRawSocket;
    i32::try_from(waker.as_raw_socket()).ok()
}
