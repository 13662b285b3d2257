//! Simulated readiness, for tests, fuzzing and event loops of your own: [`SimBackend`] (also at the crate root) and what it reports with.

use core::fmt;
use core::time::Duration;

use crate::{Backend, BackendSlot, Events, RawFd, Readiness, Tag};

/// The fds a [`SimBackend`] can simulate: `0..SIM_FD_LIMIT`.
pub const SIM_FD_LIMIT: RawFd = 1024;

const LIMIT: usize = SIM_FD_LIMIT as usize;

/// What a [`SimBackend`] call failed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimError {
    /// Injected by [`SimBackend::fail_next`].
    Injected,
    /// The fd was closed by [`SimBackend::close`] (the simulated `EBADF`):
    /// `unregister` treats it as "already gone".
    Closed(RawFd),
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::Injected => f.write_str("injected failure"),
            SimError::Closed(fd) => write!(f, "fd {fd} is closed"),
        }
    }
}

impl core::error::Error for SimError {}

/// In which order [`SimBackend::wait`](Backend::wait) reports ready fds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ReportOrder {
    /// Lowest fd first.
    #[default]
    Ascending,
    /// Highest fd first.
    Descending,
}

/// How many times each backend method of a [`SimBackend`] was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SimCalls {
    /// Calls to `register`.
    pub register: u32,
    /// Calls to `modify`.
    pub modify: u32,
    /// Calls to `unregister`.
    pub unregister: u32,
    /// Calls to `wait`.
    pub wait: u32,
}

/// A deterministic, allocation-free backend with no OS underneath, for
/// tests, fuzzing and your own event loops.
///
/// It simulates fds `0..`[`SIM_FD_LIMIT`]. Each has a readiness state that
/// you set with [`set_readiness`](Self::set_readiness); it stays until you
/// clear it (level-triggered), whether the fd is registered or not.
/// `wait` reports the state of every registered fd that has any, in
/// [`ReportOrder`], and never blocks: the timeout is only recorded.
///
/// Its knobs are a supported API, under the same semver promise as the
/// rest of the crate: a test of your event loop needs to inject a failure
/// ([`fail_next`](Self::fail_next)), close an fd behind the selector's back
/// ([`close`](Self::close)), report as a kernel does
/// ([`set_kernel_batches`](Self::set_kernel_batches),
/// [`set_split_reports`](Self::set_split_reports),
/// [`set_report_order`](Self::set_report_order)) and check what reached
/// the backend ([`registered`](Self::registered), [`calls`](Self::calls),
/// [`last_timeout`](Self::last_timeout)), as this crate's own tests and
/// fuzz targets do.
///
/// ```
/// use core::time::Duration;
/// use selectors2_core::{Events, Readiness, Ready, Selector, SimBackend};
///
/// let mut sel: Selector<SimBackend, &str, 16> = Selector::new(SimBackend::new());
/// sel.register(3, Events::READ, "client").unwrap();
///
/// // The peer hangs up: hang-up counts as READ (and WRITE, masked away here).
/// sel.backend_mut().set_readiness(3, Readiness::HANGUP);
/// let mut ready: Ready<&str, 4> = Ready::new();
/// sel.select(&mut ready, Some(Duration::from_millis(10))).unwrap();
/// assert_eq!(ready.iter().map(|(k, e)| (k.data, e)).collect::<Vec<_>>(), [("client", Events::READ)]);
/// assert_eq!(sel.backend().last_timeout(), Some(Some(Duration::from_millis(10))));
///
/// // Inject a failure: the call fails and nothing changes.
/// sel.backend_mut().fail_next();
/// assert!(sel.modify(3, Events::WRITE, "client").is_err());
/// assert_eq!(sel.get_key(3).unwrap().events, Events::READ);
/// ```
#[derive(Clone)]
pub struct SimBackend {
    readiness: [Readiness; LIMIT],
    interest: [Events; LIMIT],
    tags: [Tag; LIMIT],
    /// One bit per registered fd, so that `wait` visits only those.
    registered: [u64; LIMIT / 64],
    fail_next: bool,
    split: bool,
    order: ReportOrder,
    /// Kernel-like bounded batches: how many reports a wait may make for a
    /// given `max`.
    batch: Option<fn(usize) -> usize>,
    /// Per fd: when it last joined the back of the simulated kernel's ready
    /// list (became ready, or was returned by a batch).
    stamp: [u64; LIMIT],
    /// Per fd: the events whose filter reports once more and then is gone
    /// ([`set_one_shot`](Self::set_one_shot)).
    one_shot: [Events; LIMIT],
    /// Per fd: the events whose filter is gone (reported its last).
    vanished: [Events; LIMIT],
    clock: u64,
    calls: SimCalls,
    last_timeout: Option<Option<Duration>>,
}

impl SimBackend {
    /// A backend with no registration and every fd idle.
    pub const fn new() -> Self {
        SimBackend {
            readiness: [Readiness::empty(); LIMIT],
            interest: [Events::empty(); LIMIT],
            tags: [Tag::NONE; LIMIT],
            registered: [0; LIMIT / 64],
            fail_next: false,
            split: false,
            order: ReportOrder::Ascending,
            batch: None,
            stamp: [0; LIMIT],
            one_shot: [Events::empty(); LIMIT],
            vanished: [Events::empty(); LIMIT],
            clock: 0,
            calls: SimCalls {
                register: 0,
                modify: 0,
                unregister: 0,
                wait: 0,
            },
            last_timeout: None,
        }
    }

    /// Sets the simulated state of `fd`: it stays until cleared (level),
    /// registered or not. Out-of-range fds are ignored.
    pub fn set_readiness(&mut self, fd: RawFd, r: Readiness) {
        if let Some(i) = index(fd) {
            if self.readiness[i].is_empty() && !r.is_empty() {
                // Newly ready: the kernel appends it to its ready list.
                self.clock += 1;
                self.stamp[i] = self.clock;
            }
            self.readiness[i] = r;
        }
    }

    /// Makes `fd` idle.
    pub fn clear_readiness(&mut self, fd: RawFd) {
        self.set_readiness(fd, Readiness::empty());
    }

    /// The simulated state of `fd`.
    pub fn readiness(&self, fd: RawFd) -> Readiness {
        index(fd).map_or(Readiness::empty(), |i| self.readiness[i])
    }

    /// Makes the next backend call (`register`, `modify`, `unregister` or
    /// `wait`) fail with [`SimError::Injected`], changing nothing.
    pub fn fail_next(&mut self) {
        self.fail_next = true;
    }

    /// Simulates closing `fd` without unregistering it: the registration
    /// disappears (as the kernel drops a closed fd from epoll), its state is
    /// cleared, and a later `unregister` or `modify` of it fails with
    /// [`SimError::Closed`].
    pub fn close(&mut self, fd: RawFd) {
        if let Some(i) = index(fd) {
            self.forget(i);
            self.readiness[i] = Readiness::empty();
        }
    }

    fn forget(&mut self, i: usize) {
        self.interest[i] = Events::empty();
        self.one_shot[i] = Events::empty();
        self.vanished[i] = Events::empty();
        self.registered[i / 64] &= !(1 << (i % 64));
    }

    /// Makes the filters of `fd` for `events` report once more and then
    /// vanish, as FreeBSD drops a pipe's write filter when the reader
    /// closes (the kernel marks it `EV_ONESHOT`): the next wait that reports
    /// them (ready, and asked for) is their last, until a `register`, or a
    /// `modify` that adds them, installs them again. The registration
    /// itself stays: `modify` and `unregister` succeed, as kqueue's delete
    /// of a vanished filter is tolerated (`ENOENT`).
    ///
    /// ```
    /// use core::time::Duration;
    /// use selectors2_core::{Backend, Events, Readiness, SimBackend, Tag};
    ///
    /// let mut sim = SimBackend::new();
    /// sim.register(4, Events::WRITE, Tag::from_bits(1)).unwrap();
    /// sim.set_readiness(4, Readiness::WRITABLE);
    /// sim.set_one_shot(4, Events::WRITE);
    /// let mut reports = 0;
    /// for _ in 0..3 {
    ///     sim.wait(8, Some(Duration::ZERO), |_, _, _| reports += 1).unwrap();
    /// }
    /// assert_eq!(reports, 1); // once, then gone
    /// assert_eq!(sim.vanished(4), Events::WRITE);
    /// ```
    pub fn set_one_shot(&mut self, fd: RawFd, events: Events) {
        if let Some(i) = index(fd) {
            self.one_shot[i] |= events;
        }
    }

    /// The events of `fd` whose filter reported its last report and is gone
    /// (see [`set_one_shot`](Self::set_one_shot)).
    pub fn vanished(&self, fd: RawFd) -> Events {
        index(fd).map_or(Events::empty(), |i| self.vanished[i])
    }

    /// The interest the simulated kernel still has filters for.
    fn live_interest(&self, i: usize) -> Events {
        self.interest[i].difference(self.vanished[i])
    }

    /// `r` without what only a vanished filter would report.
    fn visible(&self, i: usize, r: Readiness) -> Readiness {
        let mut r = r;
        if self.vanished[i].contains(Events::READ) {
            r.remove(Readiness::READABLE);
        }
        if self.vanished[i].contains(Events::WRITE) {
            r.remove(Readiness::WRITABLE);
        }
        r
    }

    /// A report of `r` for fd `i` was made: a one-shot filter it came
    /// through is gone.
    fn reported(&mut self, i: usize, r: Readiness) {
        let last = r.to_events(self.live_interest(i)) & self.one_shot[i];
        self.one_shot[i].remove(last);
        self.vanished[i] |= last;
    }

    /// Whether `wait` reports each readiness bit of an fd separately, as
    /// kqueue reports its read and write filters (the selector must merge
    /// them).
    pub fn set_split_reports(&mut self, split: bool) {
        self.split = split;
    }

    /// The order in which `wait` reports fds (when batches are off).
    pub fn set_report_order(&mut self, order: ReportOrder) {
        self.order = order;
    }

    /// Makes `wait` behave like a kernel's level-triggered ready list
    /// (epoll's, kqueue's): each wait makes at most `limit(max)` reports,
    /// least recently reported fd first, and every fd it reported goes to
    /// the back of the list, as the kernels rotate what they returned.
    /// Only readiness that meets the fd's interest is queued, as the
    /// kernels queue only what was asked for (plus errors and hang-ups).
    /// With [`set_split_reports`](Self::set_split_reports), each readiness
    /// bit that meets the interest is one report, as kqueue returns one
    /// event per filter; an fd whose reports do not all fit is reported in
    /// part.
    ///
    /// `None` (the default) reports every ready fd in [`ReportOrder`].
    ///
    /// ```
    /// use selectors2_core::{Events, Readiness, Ready, Selector, SimBackend};
    ///
    /// let mut sel: Selector<SimBackend, i32, 8> = Selector::new(SimBackend::new());
    /// sel.backend_mut().set_kernel_batches(Some(|max| max)); // epoll's maxevents
    /// for fd in 0..3 {
    ///     sel.register(fd, Events::READ, fd).unwrap();
    ///     sel.backend_mut().set_readiness(fd, Readiness::READABLE);
    /// }
    /// let mut ready: Ready<i32, 1> = Ready::new();
    /// let mut seen = Vec::new();
    /// for _ in 0..3 {
    ///     sel.select(&mut ready, None).unwrap();
    ///     seen.extend(ready.iter().map(|(k, _)| k.data));
    /// }
    /// assert_eq!(seen, [0, 1, 2]); // the list rotates: every fd in turn
    /// ```
    pub fn set_kernel_batches(&mut self, limit: Option<fn(usize) -> usize>) {
        self.batch = limit;
    }

    /// The interest `fd` is registered with here, if it is.
    pub fn registered(&self, fd: RawFd) -> Option<Events> {
        index(fd)
            .map(|i| self.interest[i])
            .filter(|e| !e.is_empty())
    }

    /// How often each method was called.
    pub fn calls(&self) -> SimCalls {
        self.calls
    }

    /// The timeout of the last `wait` (`None` before the first).
    pub fn last_timeout(&self) -> Option<Option<Duration>> {
        self.last_timeout
    }

    /// One kernel-like batch of at most `budget` reports (see
    /// [`set_kernel_batches`](Self::set_kernel_batches)).
    fn wait_batch(&mut self, mut budget: usize, report: &mut impl FnMut(RawFd, Tag, Readiness)) {
        // Stamps from `base` on mark the fds this batch already returned.
        let base = self.clock + 1;
        let mut returned = 0;
        while budget > 0 {
            let mut next: Option<usize> = None;
            for (w, &word) in self.registered.iter().enumerate() {
                let mut bits = word;
                while bits != 0 {
                    let i = w * 64 + bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    let r = self.visible(i, self.readiness[i]);
                    let queued = !r.to_events(self.live_interest(i)).is_empty();
                    if queued
                        && self.stamp[i] < base
                        && next.is_none_or(|n| self.stamp[i] < self.stamp[n])
                    {
                        next = Some(i);
                    }
                }
            }
            let Some(i) = next else { break };
            let (fd, tag) = (i as RawFd, self.tags[i]);
            let r = self.visible(i, self.readiness[i]);
            if self.split {
                // One report per event the interest asked for, as kqueue
                // returns one per filter.
                let interest = self.live_interest(i);
                let wanted = r.iter().filter(|bit| !bit.to_events(interest).is_empty());
                for bit in wanted.take(budget) {
                    report(fd, tag, bit);
                    self.reported(i, bit);
                    budget -= 1;
                }
            } else {
                report(fd, tag, r);
                self.reported(i, r);
                budget -= 1;
            }
            // Returned: to the back of the list, in the order returned.
            self.stamp[i] = base + returned;
            returned += 1;
        }
        self.clock = base + returned;
    }

    fn injected(&mut self) -> Result<(), SimError> {
        if core::mem::take(&mut self.fail_next) {
            Err(SimError::Injected)
        } else {
            Ok(())
        }
    }
}

impl Default for SimBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for SimBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimBackend")
            .field(
                "registered",
                &self.interest.iter().filter(|e| !e.is_empty()).count(),
            )
            .field("fail_next", &self.fail_next)
            .field("calls", &self.calls)
            .finish_non_exhaustive()
    }
}

fn index(fd: RawFd) -> Option<usize> {
    usize::try_from(fd).ok().filter(|&i| i < LIMIT)
}

impl Backend for SimBackend {
    type Error = SimError;

    #[inline]
    fn fd_limit(&self) -> Option<RawFd> {
        Some(SIM_FD_LIMIT)
    }

    fn register(&mut self, fd: RawFd, interest: Events, tag: Tag) -> Result<BackendSlot, SimError> {
        self.calls.register += 1;
        self.injected()?;
        let i = index(fd).ok_or(SimError::Closed(fd))?;
        self.interest[i] = interest;
        self.tags[i] = tag;
        self.one_shot[i] = Events::empty();
        self.vanished[i] = Events::empty();
        self.registered[i / 64] |= 1 << (i % 64);
        Ok(BackendSlot::NONE)
    }

    fn modify(
        &mut self,
        fd: RawFd,
        _slot: BackendSlot,
        _old: Events,
        new: Events,
        tag: Tag,
    ) -> Result<(), SimError> {
        self.calls.modify += 1;
        self.injected()?;
        let i = index(fd)
            .filter(|&i| !self.interest[i].is_empty())
            .ok_or(SimError::Closed(fd))?;
        // Added events get fresh filters; removed ones have none.
        let added = new.difference(self.interest[i]);
        self.vanished[i] = self.vanished[i].difference(added) & new;
        self.one_shot[i] = self.one_shot[i].difference(added) & new;
        self.interest[i] = new;
        self.tags[i] = tag;
        Ok(())
    }

    fn unregister(
        &mut self,
        fd: RawFd,
        _slot: BackendSlot,
        _interest: Events,
    ) -> Result<(), SimError> {
        self.calls.unregister += 1;
        self.injected()?;
        let i = index(fd)
            .filter(|&i| !self.interest[i].is_empty())
            .ok_or(SimError::Closed(fd))?;
        self.interest[i] = Events::empty();
        self.one_shot[i] = Events::empty();
        self.vanished[i] = Events::empty();
        Ok(())
    }

    fn is_gone(&self, error: &SimError) -> bool {
        matches!(error, SimError::Closed(_))
    }

    /// Only with [`set_split_reports`](SimBackend::set_split_reports):
    /// otherwise each registered fd is visited once per wait (in a batch
    /// too), so the selector's merge check is skipped, as for epoll.
    #[inline]
    fn may_report_twice(&self) -> bool {
        self.split
    }

    fn wait<F: FnMut(RawFd, Tag, Readiness)>(
        &mut self,
        max: usize,
        timeout: Option<Duration>,
        mut report: F,
    ) -> Result<(), SimError> {
        self.calls.wait += 1;
        self.last_timeout = Some(timeout);
        self.injected()?;
        if let Some(limit) = self.batch {
            self.wait_batch(limit(max), &mut report);
            return Ok(());
        }
        let words = self.registered;
        let order = self.order;
        let mut visit = |i: usize| {
            let r = self.visible(i, self.readiness[i]);
            if self.interest[i].is_empty() || r.is_empty() {
                return;
            }
            // A vanished filter reports nothing, and an fd left without
            // one for what is ready is not visited.
            if !self.vanished[i].is_empty() && r.to_events(self.live_interest(i)).is_empty() {
                return;
            }
            let fd = i as RawFd;
            if self.split {
                for bit in r.iter() {
                    report(fd, self.tags[i], bit);
                    self.reported(i, bit);
                }
            } else {
                report(fd, self.tags[i], r);
                self.reported(i, r);
            }
        };
        // Visit the registered fds only, in the chosen order.
        let mut visit_word = |w: usize| {
            let mut bits = words[w];
            while bits != 0 {
                let b = match order {
                    ReportOrder::Ascending => bits.trailing_zeros(),
                    ReportOrder::Descending => 63 - bits.leading_zeros(),
                } as usize;
                bits &= !(1 << b);
                visit(w * 64 + b);
            }
        };
        match order {
            ReportOrder::Ascending => (0..words.len()).for_each(&mut visit_word),
            ReportOrder::Descending => (0..words.len()).rev().for_each(&mut visit_word),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: Events = Events::READ;
    const W: Events = Events::WRITE;

    fn reports(sim: &mut SimBackend) -> [u32; 8] {
        let mut seen = [0u32; 8];
        sim.wait(8, Some(Duration::ZERO), |fd, _, r| {
            if let Some(n) = usize::try_from(fd).ok().and_then(|i| seen.get_mut(i)) {
                *n += r.bits().count_ones();
            }
        })
        .unwrap();
        seen
    }

    /// A one-shot filter reports once and is gone, batches or not, split
    /// or not; the fd's other filter, modify and unregister carry on.
    #[test]
    fn a_one_shot_filter_reports_once_then_vanishes() {
        for (batches, split) in [(false, false), (false, true), (true, false), (true, true)] {
            let mut sim = SimBackend::new();
            if batches {
                sim.set_kernel_batches(Some(|max| max));
            }
            sim.set_split_reports(split);
            let tag = Tag::from_bits(1);
            sim.register(3, W, tag).unwrap();
            sim.register(4, R | W, tag).unwrap();
            sim.set_readiness(3, Readiness::WRITABLE);
            sim.set_readiness(4, Readiness::READABLE | Readiness::WRITABLE);
            sim.set_one_shot(3, W);
            sim.set_one_shot(4, W);
            let first = reports(&mut sim);
            assert_eq!((first[3], first[4]), (1, 2), "{batches} {split}");
            assert_eq!((sim.vanished(3), sim.vanished(4)), (W, W));
            for _ in 0..3 {
                let later = reports(&mut sim);
                // fd 3 is silent; fd 4 reports its read filter only.
                assert_eq!((later[3], later[4]), (0, 1), "{batches} {split}");
            }
            // The registration stays: modify and unregister succeed, and a
            // modify that adds WRITE again installs a fresh filter.
            sim.modify(3, BackendSlot::NONE, W, R, tag).unwrap();
            assert_eq!(sim.vanished(3), Events::empty());
            sim.modify(3, BackendSlot::NONE, R, W, tag).unwrap();
            assert_eq!(reports(&mut sim)[3], 1);
            assert_eq!(reports(&mut sim)[3], 1, "level-triggered again");
            sim.unregister(4, BackendSlot::NONE, R | W).unwrap();
            assert_eq!(sim.vanished(4), Events::empty());
        }
    }
}
