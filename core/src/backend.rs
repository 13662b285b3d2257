//! The [`Backend`] trait: the readiness mechanism a [`Selector`](crate::Selector)
//! drives, with its contract.

use core::time::Duration;

use crate::{Events, RawFd, Readiness};

/// A readiness mechanism: epoll, kqueue, poll, select, a simulation, or a
/// source of your own (interrupt flags on a microcontroller, a ring of
/// completion events...).
///
/// # Contract
///
/// [`Selector`](crate::Selector) owns the key table and does all validation,
/// so a backend may assume:
///
/// * `fd >= 0` and, when [`fd_limit`](Backend::fd_limit) is `Some(limit)`,
///   `fd < limit`;
/// * `register` is never called while the selector holds
///   [`key_limit`](Backend::key_limit) keys already;
/// * `interest` (and `old`/`new` in `modify`) is `READ`, `WRITE` or both;
/// * `register` is only called for an fd the selector does not hold, and
///   `modify`/`unregister` only for one it does, with the `slot` that
///   `register` returned and the interest it last accepted;
/// * `modify` is only called when the interest actually changes.
///
/// In return a backend must:
///
/// * **be atomic**: when `register` or `modify` returns an error, its
///   registrations are exactly as they were before the call (roll back any
///   half-done change);
/// * **forget on unregister**: after `unregister`, even one that fails with
///   an error for which [`is_gone`](Backend::is_gone) is true, it holds
///   nothing for that fd;
/// * **tag reports**: `wait` passes each report's `tag` back exactly as the
///   registration (or last `modify`) gave it. The selector drops reports
///   whose tag is not the current key's, which is how a report left over
///   from an earlier registration of a reused fd number is dropped;
/// * **be level-triggered**: an fd that stays ready is reported again by
///   every `wait`;
/// * **honour the timeout**: `None` blocks until something is ready,
///   `Some(Duration::ZERO)` does not block, and a positive timeout waits at
///   least that long when nothing is ready (rounded up to the mechanism's
///   resolution, never down to zero), even with no fd registered. A wait
///   that a signal cuts short (EINTR) may either retry with the time left
///   or fail with its error and no reports, for the host to retry: the std
///   adapter's backends do the latter, and its `Selector::select` retries
///   against one deadline (and lets a host runtime act on each signal).
///
/// `wait` may report an fd several times (kqueue reports read and write
/// separately; the selector merges them into one entry), may report fds or
/// tags the selector does not know (they are dropped, and the selector then
/// calls [`rebuild`](Backend::rebuild)) and may report readiness the
/// interest did not ask for (it is masked away by
/// [`Readiness::to_events`]).
///
/// **Bounded output.** A mechanism that bounds its output (epoll's
/// `maxevents`, kqueue's `nevents`) and rotates what it returned to the back
/// of its ready list must ask for no more than `max` reports, so that a
/// wait yields at most `max` distinct fds and the kernel's rotation alone
/// reaches every fd. Otherwise it reports every ready fd and the selector
/// picks `max` of them fairly. Mixing the two (a rotating kernel asked for
/// more than `max`) starves fds: the kernel and the selector's choice then
/// cycle over the same few.
///
/// **Blocking.** A `wait` that blocks must wake only for readiness a key
/// can use: readiness that [`Readiness::to_events`] turns into a non-empty
/// set for the registration's interest (a `READ`-only registration that is
/// writable must not end the wait), or the selector returns no entry while
/// the wait ended early, over and over.
///
/// # Example
///
/// A backend for a board whose interrupt handlers set one flag per channel
/// (the `channel` plays the part of the fd):
///
/// ```
/// use core::time::Duration;
/// use selectors2_core::{Backend, Events, RawFd, Readiness, Ready, Selector};
///
/// struct Flags {
///     pending: [bool; 8],
///     tags: [u32; 8],
/// }
///
/// impl Backend for Flags {
///     type Error = core::convert::Infallible;
///     fn fd_limit(&self) -> Option<RawFd> {
///         Some(8)
///     }
///     fn register(&mut self, fd: RawFd, _: Events, tag: u32) -> Result<u32, Self::Error> {
///         self.tags[fd as usize] = tag;
///         Ok(0)
///     }
///     fn modify(&mut self, fd: RawFd, _: u32, _: Events, _: Events, tag: u32) -> Result<(), Self::Error> {
///         self.tags[fd as usize] = tag;
///         Ok(())
///     }
///     fn unregister(&mut self, _: RawFd, _: u32, _: Events) -> Result<(), Self::Error> {
///         Ok(())
///     }
///     fn wait<F: FnMut(RawFd, u32, Readiness)>(
///         &mut self,
///         _max: usize,
///         _timeout: Option<Duration>,
///         mut report: F,
///     ) -> Result<(), Self::Error> {
///         for (ch, pending) in self.pending.iter_mut().enumerate() {
///             if core::mem::take(pending) {
///                 report(ch as RawFd, self.tags[ch], Readiness::READABLE);
///             }
///         }
///         Ok(())
///     }
/// }
///
/// let mut sel: Selector<Flags, &str, 8> = Selector::new(Flags { pending: [false; 8], tags: [0; 8] });
/// sel.register(2, Events::READ, "uart").unwrap();
/// sel.backend_mut().pending[2] = true;
/// let mut ready: Ready<&str, 4> = Ready::new();
/// assert_eq!(sel.select(&mut ready, Some(Duration::ZERO)).unwrap(), 1);
/// let (key, events) = ready.iter().next().unwrap();
/// assert_eq!((key.data, events), ("uart", Events::READ));
/// ```
pub trait Backend {
    /// What the mechanism fails with (`std::io::Error` for the OS backends).
    type Error;

    /// The exclusive upper bound on the fds this backend can watch, if any
    /// (`FD_SETSIZE` for select). [`Selector::register`](crate::Selector::register)
    /// rejects an fd at or above it with [`Error::InvalidFd`](crate::Error::InvalidFd).
    #[inline]
    fn fd_limit(&self) -> Option<RawFd> {
        None
    }

    /// The most keys this backend can watch at once, if it is fewer than
    /// the table's capacity (Windows `select`, whose `fd_set` is an array of
    /// `FD_SETSIZE` sockets). [`Selector::register`](crate::Selector::register)
    /// refuses more with [`Error::Full`](crate::Error::Full) carrying this
    /// limit, before the backend is asked.
    #[inline]
    fn key_limit(&self) -> Option<usize> {
        None
    }

    /// Starts watching `fd` for `interest`, tagging its reports with `tag`.
    ///
    /// Returns a `slot`: any value the backend wants handed back to
    /// `modify` and `unregister` for this registration (a poll backend's
    /// index into its `pollfd` array, say); return 0 when there is none.
    fn register(&mut self, fd: RawFd, interest: Events, tag: u32) -> Result<u32, Self::Error>;

    /// Changes the interest of a registered `fd` from `old` to `new`
    /// (never equal), keeping `tag`.
    fn modify(
        &mut self,
        fd: RawFd,
        slot: u32,
        old: Events,
        new: Events,
        tag: u32,
    ) -> Result<(), Self::Error>;

    /// Stops watching `fd`, registered with `interest`.
    fn unregister(&mut self, fd: RawFd, slot: u32, interest: Events) -> Result<(), Self::Error>;

    /// Whether `error`, returned by `unregister`, means the fd was already
    /// gone (closed: `EBADF`, `ENOENT`). The selector then removes the key
    /// and reports success, as Python does.
    #[inline]
    fn is_gone(&self, error: &Self::Error) -> bool {
        let _ = error;
        false
    }

    /// Waits for readiness and calls `report(fd, tag, readiness)` for what
    /// it saw, at most for about `max` fds (see the trait docs).
    fn wait<F: FnMut(RawFd, u32, Readiness)>(
        &mut self,
        max: usize,
        timeout: Option<Duration>,
        report: F,
    ) -> Result<(), Self::Error>;

    /// Called by [`Selector::select`](crate::Selector::select) right after a
    /// `wait` that reported something no key owns (an fd the table does not
    /// hold, or the tag of an earlier registration of the fd), with every
    /// registration the selector holds.
    ///
    /// A mechanism that can keep a registration the selector can no longer
    /// remove rebuilds its interest set from `live` here. epoll is one: it
    /// keeps watching an open file after the registered fd was closed while
    /// a duplicate (`dup`, a child process) keeps the file open, and then no
    /// `epoll_ctl` can name it any more; its reports would end every wait
    /// at once and take the place of live fds in a bounded batch.
    ///
    /// The wait that saw those reports may have ended early because of
    /// them: a blocking caller that got no entry should wait again for the
    /// time left (the std adapter does).
    ///
    /// An error fails that `select` (with `ready` cleared) and leaves the
    /// key table as it was. The default does nothing, which is right for
    /// every mechanism whose registrations the selector can always remove
    /// (poll, select, kqueue, [`SimBackend`](crate::SimBackend)).
    #[inline]
    fn rebuild(&mut self, live: impl Iterator<Item = Registration>) -> Result<(), Self::Error> {
        let _ = live;
        Ok(())
    }
}

/// One registration the selector holds, as [`Backend::rebuild`] receives
/// it: what `register` (or the last `modify`) was given, and the slot it
/// returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Registration {
    /// The registered fd.
    pub fd: RawFd,
    /// Its current interest: `READ`, `WRITE` or both.
    pub interest: Events,
    /// The tag its reports must carry.
    pub tag: u32,
    /// The slot the backend returned from `register`.
    pub slot: u32,
}
