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
/// cycle over the same few. Only when every registration fits in `max`
/// can nothing overflow, and a wait may then ask for more (kqueue asks for
/// every filter, two per key, so that one wait returns every ready key).
/// Reports a backend makes by itself count towards `max` like the
/// kernel's.
///
/// **Blocking.** A `wait` that blocks must wake only for readiness a key
/// can use: readiness that [`Readiness::to_events`] turns into a non-empty
/// set for the registration's interest (a `READ`-only registration that is
/// writable must not end the wait), or the selector returns no entry while
/// the wait ended early, over and over.
///
/// # Example
///
/// A backend for a board whose interrupt handlers mark channels (the
/// channel number plays the part of the fd) as having input. The mark is
/// *level* state: it stays until the application has serviced the channel,
/// so `wait` reports it again and again, and it never clears it itself.
/// `wait` reports only what a registration asked for, and when nothing is
/// there it sleeps (here in simulated time; on a board, `WFI` until an
/// interrupt or the timer) rather than returning at once:
///
/// ```
/// use core::time::Duration;
/// use selectors2_core::{Backend, BackendSlot, Events, RawFd, Readiness, Ready, Selector, Tag};
///
/// struct Channels {
///     has_input: [bool; 8],     // set by interrupt handlers, cleared by the application
///     interest: [Events; 8],
///     tags: [Tag; 8],
///     slept: Duration,          // the board's timer, simulated
/// }
///
/// impl Channels {
///     fn report_ready(&self, report: &mut impl FnMut(RawFd, Tag, Readiness)) -> bool {
///         let mut any = false;
///         for ch in 0..8 {
///             // Only what the registration can use: a READ-only channel
///             // must not end the wait for being writable.
///             if self.has_input[ch] && self.interest[ch].contains(Events::READ) {
///                 report(ch as RawFd, self.tags[ch], Readiness::READABLE);
///                 any = true;
///             }
///         }
///         any
///     }
/// }
///
/// impl Backend for Channels {
///     type Error = core::convert::Infallible;
///     fn fd_limit(&self) -> Option<RawFd> {
///         Some(8)
///     }
///     fn register(&mut self, ch: RawFd, interest: Events, tag: Tag) -> Result<BackendSlot, Self::Error> {
///         (self.interest[ch as usize], self.tags[ch as usize]) = (interest, tag);
///         Ok(BackendSlot::NONE)
///     }
///     fn modify(&mut self, ch: RawFd, _: BackendSlot, _: Events, new: Events, tag: Tag) -> Result<(), Self::Error> {
///         (self.interest[ch as usize], self.tags[ch as usize]) = (new, tag);
///         Ok(())
///     }
///     fn unregister(&mut self, ch: RawFd, _: BackendSlot, _: Events) -> Result<(), Self::Error> {
///         self.interest[ch as usize] = Events::empty();
///         Ok(())
///     }
///     fn wait<F: FnMut(RawFd, Tag, Readiness)>(
///         &mut self,
///         _max: usize,
///         timeout: Option<Duration>,
///         mut report: F,
///     ) -> Result<(), Self::Error> {
///         if self.report_ready(&mut report) || timeout == Some(Duration::ZERO) {
///             return Ok(());
///         }
///         // Nothing usable: sleep until an interrupt or the timeout. (A real
///         // board blocks with `None`; this simulation has no interrupts.)
///         self.slept = self.slept.saturating_add(timeout.unwrap_or(Duration::MAX));
///         self.report_ready(&mut report);
///         Ok(())
///     }
/// }
///
/// let board = Channels { has_input: [false; 8], interest: [Events::empty(); 8], tags: [Tag::NONE; 8], slept: Duration::ZERO };
/// let mut sel: Selector<Channels, &str, 8> = Selector::new(board);
/// sel.register(2, Events::READ, "uart").unwrap();
/// let mut ready: Ready<&str, 4> = Ready::new();
///
/// // Nothing yet: the select sleeps its timeout, then reports nothing.
/// assert_eq!(sel.select(&mut ready, Some(Duration::from_millis(50))).unwrap(), 0);
/// assert_eq!(sel.backend().slept, Duration::from_millis(50));
///
/// sel.backend_mut().has_input[2] = true; // the UART interrupt fires
/// for _ in 0..2 {
///     // Level-triggered: reported until serviced.
///     assert_eq!(sel.select(&mut ready, Some(Duration::from_millis(50))).unwrap(), 1);
///     let (key, events) = ready.iter().next().unwrap();
///     assert_eq!((key.data, events), ("uart", Events::READ));
/// }
/// sel.backend_mut().has_input[2] = false; // the application drained the UART
/// assert_eq!(sel.select(&mut ready, Some(Duration::ZERO)).unwrap(), 0);
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
    /// Returns a [`BackendSlot`]: any value the backend wants handed back
    /// to `modify` and `unregister` for this registration (a poll backend's
    /// index into its `pollfd` array, say), [`BackendSlot::NONE`] when there
    /// is none.
    fn register(
        &mut self,
        fd: RawFd,
        interest: Events,
        tag: Tag,
    ) -> Result<BackendSlot, Self::Error>;

    /// Changes the interest of a registered `fd` from `old` to `new`
    /// (never equal). `tag` is the one `register` was given (the selector
    /// never changes a registration's tag); storing it again is harmless.
    fn modify(
        &mut self,
        fd: RawFd,
        slot: BackendSlot,
        old: Events,
        new: Events,
        tag: Tag,
    ) -> Result<(), Self::Error>;

    /// Stops watching `fd`, registered with `interest`.
    fn unregister(
        &mut self,
        fd: RawFd,
        slot: BackendSlot,
        interest: Events,
    ) -> Result<(), Self::Error>;

    /// Whether `error`, returned by `unregister`, means the backend holds
    /// nothing under that fd any more: the fd was closed without
    /// `unregister` (`EBADF`), and its number may since name another file
    /// (`ENOENT`; for epoll also `EPERM` and `EINVAL`, the errors of a
    /// number that now names a file epoll refuses to watch). The selector
    /// then removes the key and reports success, as Python does.
    #[inline]
    fn is_gone(&self, error: &Self::Error) -> bool {
        let _ = error;
        false
    }

    /// Whether one [`wait`](Backend::wait) may report the same fd more than
    /// once: kqueue reports its read and write filters as separate events,
    /// select reports the read set and then the write set (and
    /// [`SimBackend`](crate::SimBackend) each readiness bit apart, when
    /// told to). The selector merges such reports into one
    /// entry of [`Ready`](crate::Ready), which costs a check on every
    /// report; a backend that never reports an fd twice in one wait (epoll,
    /// whose ready list holds each registration once; poll and WSAPoll,
    /// with one `pollfd` per key) says `false` and skips it. Asked once per
    /// `select`, before the wait.
    ///
    /// Saying `false` and then reporting an fd twice is a logic error: the
    /// fd then takes an entry of `Ready` per report while `Ready` has room
    /// (once it is full, the fair pick finds the earlier entry and merges).
    /// Nothing unsafe or lost follows, only the duplicates. The default,
    /// `true`, is right for every backend.
    ///
    /// ```
    /// use selectors2_core::{Backend, SimBackend};
    ///
    /// let mut sim = SimBackend::new();
    /// assert!(!sim.may_report_twice());
    /// // Told to report readable and writable apart, as kqueue does.
    /// sim.set_split_reports(true);
    /// assert!(sim.may_report_twice());
    /// ```
    #[inline]
    fn may_report_twice(&self) -> bool {
        true
    }

    /// Waits for readiness and calls `report(fd, tag, readiness)` for what
    /// it saw.
    ///
    /// `max` is the capacity `M` of the caller's
    /// [`Ready`](crate::Ready), at least 1; it may exceed the table's
    /// capacity and the backend's `key_limit`. A mechanism that bounds and
    /// rotates its output asks for at most `max` reports; any other
    /// reports every ready registration (see "Bounded output" above).
    fn wait<F: FnMut(RawFd, Tag, Readiness)>(
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
    /// Every registration keeps its tag and its slot: the selector goes on
    /// handing each [`Registration::slot`] back to `modify` and
    /// `unregister`, so a rebuild must not move what a slot names.
    ///
    /// An error must leave the backend as it was; it does not fail the
    /// `select`, which returns the live keys' reports: a mechanism short of
    /// fds or memory right now (epoll's rebuild needs a new instance) may
    /// have them at the next wait that meets the leftover, and the selector
    /// asks again then. The default does nothing, which is right for
    /// every mechanism whose registrations the selector can always remove
    /// (poll, select, kqueue, [`SimBackend`](crate::SimBackend)).
    #[inline]
    fn rebuild(
        &mut self,
        live: impl Iterator<Item = Registration> + Clone,
    ) -> Result<(), Self::Error> {
        let _ = live;
        Ok(())
    }
}

/// The tag a [`Selector`](crate::Selector) gives each registration, which
/// the backend hands back with every report of it.
///
/// A backend stores it beside the registration (in epoll's event data, a
/// kevent's `udata`, an array) and passes it back unchanged; it never
/// interprets it. Each `register` gets a tag the selector has not handed
/// out in its last 2^32 - 1 registrations (a counter that wraps, skipping
/// 0), and `modify` passes the registration's tag on unchanged, so a report
/// carrying the tag of an earlier registration of a reused fd number is
/// recognised and dropped (while a report from before a `modify` of the
/// same registration is kept: its interest is masked to the new one). A
/// selector never hands out [`Tag::NONE`] (0), so a backend can report
/// that for readiness it cannot attribute, and it is dropped like any
/// unknown tag.
///
/// ```
/// use selectors2_core::Tag;
///
/// // Through a kernel's 64-bit user data and back, as epoll does.
/// let tag = Tag::from_bits(7);
/// let data: u64 = u64::from(tag.to_bits()) << 32;
/// assert_eq!(Tag::from_bits((data >> 32) as u32), tag);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(u32);

impl Tag {
    /// The tag no registration carries.
    pub const NONE: Tag = Tag(0);

    /// The tag whose bits are `bits`, as a backend gets it back from
    /// wherever it stored [`to_bits`](Tag::to_bits).
    #[inline]
    #[must_use]
    pub const fn from_bits(bits: u32) -> Tag {
        Tag(bits)
    }

    /// The tag's bits, for a backend to store.
    #[inline]
    #[must_use]
    pub const fn to_bits(self) -> u32 {
        self.0
    }
}

/// What a backend's [`register`](Backend::register) returns for the
/// selector to hand back to [`modify`](Backend::modify) and
/// [`unregister`](Backend::unregister) of that registration: a poll
/// backend's index into its `pollfd` array, say. The selector stores it and
/// never interprets or compares it, so every value is the backend's to use
/// (0 is as good an index as any). A backend with nothing to remember
/// returns [`BackendSlot::NONE`].
///
/// ```
/// use selectors2_core::BackendSlot;
///
/// let slot = BackendSlot::new(3); // index 3 of the backend's own array
/// assert_eq!(slot.get(), 3);
/// assert_eq!(BackendSlot::default(), BackendSlot::NONE);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct BackendSlot(u32);

impl BackendSlot {
    /// The slot of a backend that keeps nothing per registration (0).
    pub const NONE: BackendSlot = BackendSlot(0);

    /// A slot holding `value`.
    #[inline]
    #[must_use]
    pub const fn new(value: u32) -> BackendSlot {
        BackendSlot(value)
    }

    /// The value it was made with.
    #[inline]
    #[must_use]
    pub const fn get(self) -> u32 {
        self.0
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
    pub tag: Tag,
    /// The slot the backend returned from `register`.
    pub slot: BackendSlot,
}
