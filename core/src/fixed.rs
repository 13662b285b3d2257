//! [`Fixed`]: a [`Backend`] over a fixed set of event sources that are not
//! an operating system's: a board's UARTs, timers, pins.

use core::time::Duration;

use crate::{Backend, BackendSlot, Events, RawFd, Readiness, Tag};

/// What a fixed set of event sources answers, for [`Fixed`]: what each
/// source can do now, the time, and a sleep. The selector and [`Fixed`]
/// keep everything else (interests, tags, timeouts).
///
/// Sources are numbered `0..K` and that number is their "fd" in the
/// [`Selector`](crate::Selector). Readiness is *level* state: a UART is
/// readable while a byte waits in it, a timer while its deadline has
/// passed; the application clears it by servicing the source, never the
/// backend.
///
/// # Sleeping without losing a wake-up
///
/// [`Fixed`] asks every watched source for its readiness and, when none
/// has what its registration waits for, calls [`sleep`](Sources::sleep).
/// An interrupt that makes a source ready *between* that check and the
/// sleep must end the sleep at once, or the program sleeps with work
/// waiting. On a Cortex-M, either:
///
/// * `WFE` instead of `WFI`: an interrupt sets the event register, and a
///   `WFE` after it returns at once; or
/// * a flag the interrupt handlers set, which `sleep` tests with
///   interrupts masked before `WFI` (a pending interrupt ends `WFI` even
///   while masked), clearing it as it returns.
///
/// `sleep` may return early (any interrupt, a tick): [`Fixed`] checks
/// again and sleeps again for the time left.
///
/// # Example
///
/// Two sources, a UART and a button, with time simulated so that the
/// example runs on a host (on a board, [`now`](Sources::now) reads the
/// tick counter and [`sleep`](Sources::sleep) is `WFE`):
///
/// ```
/// use core::convert::Infallible;
/// use core::time::Duration;
/// use selectors2_core::{EVENT_READ, Events, Fixed, Readiness, Ready, Selector, Sources};
///
/// const UART: i32 = 0;
/// const BUTTON: i32 = 1;
///
/// struct Board {
///     rx_waiting: bool,   // a UART's "receive FIFO not empty" flag
///     pressed: bool,      // set by the button's interrupt handler
///     ms: u64,            // the 1 ms tick counter
/// }
///
/// impl Sources for Board {
///     type Error = Infallible;
///     const TICK: Duration = Duration::from_millis(1);
///
///     fn readiness(&mut self, source: usize, _interest: Events) -> Readiness {
///         let ready = match source {
///             0 => self.rx_waiting,
///             1 => self.pressed,
///             _ => false,
///         };
///         if ready { Readiness::READABLE } else { Readiness::empty() }
///     }
///
///     fn now(&mut self) -> Duration {
///         Duration::from_millis(self.ms)
///     }
///
///     fn sleep(&mut self, _timeout: Option<Duration>) -> Result<(), Infallible> {
///         // A board: `cortex_m::asm::wfe()`. Here: the next tick, and at
///         // 5 ms the button's interrupt.
///         self.ms += 1;
///         self.pressed |= self.ms == 5;
///         Ok(())
///     }
/// }
///
/// let board = Board { rx_waiting: false, pressed: false, ms: 0 };
/// let mut sel: Selector<Fixed<Board, 2>, &str, 4> = Selector::new(Fixed::new(board));
/// sel.register(UART, EVENT_READ, "uart").unwrap();
/// sel.register(BUTTON, EVENT_READ, "button").unwrap();
/// let mut ready: Ready<&str, 2> = Ready::new();
///
/// // Nothing for 2 ms: the wait sees at least 2 whole ticks go by.
/// assert_eq!(sel.select(&mut ready, Some(Duration::from_millis(2))).ok(), Some(0));
/// assert_eq!(sel.backend_mut().sources_mut().ms, 3);
///
/// // No timeout: sleeps until the button's interrupt.
/// assert_eq!(sel.select(&mut ready, None).ok(), Some(1));
/// assert_eq!(ready.iter().next().map(|(key, _)| key.data), Some("button"));
/// ```
pub trait Sources {
    /// What [`sleep`](Sources::sleep) fails with
    /// ([`Infallible`](core::convert::Infallible) for most boards).
    type Error;

    /// The resolution of [`now`](Sources::now): a clock that counts 1 ms
    /// ticks says 1 ms. A wait then lasts one tick more than its timeout
    /// (rounded up to whole ticks), since the tick under way when it
    /// starts is partly gone already. Zero (the default) for a clock that
    /// never reads more time than has passed.
    const TICK: Duration = Duration::ZERO;

    /// What `source` (in `0..K`, registered for `interest`) can do now.
    /// Level state. Only [`Readiness::READABLE`],
    /// [`WRITABLE`](Readiness::WRITABLE), [`ERROR`](Readiness::ERROR) and
    /// [`HANGUP`](Readiness::HANGUP) mean anything here; what `interest`
    /// does not ask for may be left out (not asking the hardware saves
    /// time) or put in (it is masked away).
    fn readiness(&mut self, source: usize, interest: Events) -> Readiness;

    /// A monotonic time (since start-up, say). Asked only by a `select`
    /// with a timeout that is not zero.
    fn now(&mut self) -> Duration;

    /// Sleeps until a source may have changed or `timeout` has passed
    /// (`None`: no limit), without losing an interrupt that came since the
    /// last [`readiness`](Sources::readiness) (see the trait's docs). May
    /// return early.
    fn sleep(&mut self, timeout: Option<Duration>) -> Result<(), Self::Error>;
}

/// A [`Backend`] over `K` fixed [`Sources`], numbered `0..K`: it keeps each
/// source's interest and tag (5 bytes a source) and turns the selector's
/// timeout into a deadline on [`Sources::now`], so that the board code
/// answers only "what is ready now" and sleeps.
///
/// It reports a source only for what its registration asked for (a
/// source registered for `READ` that is writable neither is reported nor
/// ends the wait), each at most once a wait, in source order; the
/// selector picks fairly when more are ready than its `Ready` holds.
/// Registering a number at or above `K` fails with
/// [`Error::InvalidFd`](crate::Error::InvalidFd).
///
/// `Fixed::new` is `const` and an empty `Fixed` is all zeros beside the
/// sources: a `static` selector over it lands in `.bss` when the sources'
/// initial value is zeros too.
///
/// See [`Sources`] for an example.
#[derive(Debug)]
pub struct Fixed<S, const K: usize> {
    sources: S,
    interest: [Events; K],
    tags: [Tag; K],
}

impl<S, const K: usize> Fixed<S, K> {
    /// A backend over `sources`, watching none of them yet.
    pub const fn new(sources: S) -> Self {
        Fixed {
            sources,
            interest: [Events::empty(); K],
            tags: [Tag::NONE; K],
        }
    }

    /// The sources.
    #[inline]
    pub fn sources(&self) -> &S {
        &self.sources
    }

    /// The sources, mutably (to service them, re-arm a timer...).
    #[inline]
    pub fn sources_mut(&mut self) -> &mut S {
        &mut self.sources
    }

    /// Consumes the backend and returns the sources.
    #[inline]
    pub fn into_sources(self) -> S {
        self.sources
    }

    fn set(&mut self, fd: RawFd, interest: Events, tag: Tag) {
        let at = fd as usize;
        if let (Some(i), Some(t)) = (self.interest.get_mut(at), self.tags.get_mut(at)) {
            (*i, *t) = (interest, tag);
        }
    }
}

impl<S: Sources, const K: usize> Fixed<S, K> {
    /// Reports every watched source that has what its registration asked
    /// for; whether there was one.
    fn report_ready(&mut self, report: &mut impl FnMut(RawFd, Tag, Readiness)) -> bool {
        let mut any = false;
        for (at, (interest, tag)) in self.interest.iter().zip(&self.tags).enumerate() {
            if interest.is_empty() {
                continue;
            }
            let r = self.sources.readiness(at, *interest);
            if !r.to_events(*interest).is_empty() {
                report(at as RawFd, *tag, r);
                any = true;
            }
        }
        any
    }
}

impl<S: Sources, const K: usize> Backend for Fixed<S, K> {
    type Error = S::Error;

    #[inline]
    fn fd_limit(&self) -> Option<RawFd> {
        Some(RawFd::try_from(K).unwrap_or(RawFd::MAX))
    }

    fn register(&mut self, fd: RawFd, interest: Events, tag: Tag) -> Result<BackendSlot, S::Error> {
        self.set(fd, interest, tag);
        Ok(BackendSlot::NONE)
    }

    fn modify(
        &mut self,
        fd: RawFd,
        _: BackendSlot,
        _: Events,
        new: Events,
        tag: Tag,
    ) -> Result<(), S::Error> {
        self.set(fd, new, tag);
        Ok(())
    }

    fn unregister(&mut self, fd: RawFd, _: BackendSlot, _: Events) -> Result<(), S::Error> {
        self.set(fd, Events::empty(), Tag::NONE);
        Ok(())
    }

    #[inline]
    fn may_report_twice(&self) -> bool {
        false
    }

    fn wait<F: FnMut(RawFd, Tag, Readiness)>(
        &mut self,
        _max: usize,
        timeout: Option<Duration>,
        mut report: F,
    ) -> Result<(), S::Error> {
        if self.report_ready(&mut report) || timeout == Some(Duration::ZERO) {
            return Ok(());
        }
        // Past the end of time (a timeout too long to add) is no limit.
        let deadline = timeout.and_then(|t| {
            let start = self.sources.now();
            start.checked_add(t)?.checked_add(S::TICK)
        });
        loop {
            let left = match deadline {
                Some(d) => match time_left(d, self.sources.now()) {
                    Some(left) => Some(left),
                    None => return Ok(()),
                },
                None if timeout.is_some() => Some(Duration::MAX),
                None => None,
            };
            self.sources.sleep(left)?;
            if self.report_ready(&mut report) {
                return Ok(());
            }
        }
    }
}

/// `deadline - now`, or `None` once `now` has reached `deadline`.
///
/// By parts rather than `Duration::checked_sub`, whose normalization keeps
/// a panic path the optimizer cannot remove (`Duration::new`'s overflow
/// check) in every firmware image that selects with a timeout.
#[inline]
fn time_left(deadline: Duration, now: Duration) -> Option<Duration> {
    let mut secs = deadline.as_secs().checked_sub(now.as_secs())?;
    let mut nanos = deadline.subsec_nanos();
    let now_nanos = now.subsec_nanos();
    if nanos < now_nanos {
        secs = secs.checked_sub(1)?;
        nanos += 1_000_000_000;
    }
    // Below a second already; `min` lets the compiler see it.
    let left = Duration::new(secs, (nanos - now_nanos).min(999_999_999));
    (!left.is_zero()).then_some(left)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EVENT_READ, EVENT_WRITE, Error, Ready, Selector};
    use core::convert::Infallible;
    use std::vec::Vec;

    /// Simulated sources: readiness set by the test, a clock in
    /// microseconds that counts whole ticks, and a sleep that advances it
    /// by one tick (or less, when told to wake early) and may fire
    /// "interrupts" scripted at a time.
    #[derive(Default)]
    struct Sim {
        ready: [Readiness; 4],
        us: u64,
        /// (at microseconds, source, readiness to set).
        irqs: Vec<(u64, usize, Readiness)>,
        sleeps: Vec<Option<Duration>>,
        fail_sleep: bool,
    }

    impl Sources for Sim {
        type Error = &'static str;
        const TICK: Duration = Duration::from_millis(1);

        fn readiness(&mut self, source: usize, _: Events) -> Readiness {
            self.ready
                .get(source)
                .copied()
                .unwrap_or(Readiness::empty())
        }

        fn now(&mut self) -> Duration {
            // Whole ticks only, as a tick counter reads.
            Duration::from_millis(self.us / 1000)
        }

        fn sleep(&mut self, timeout: Option<Duration>) -> Result<(), &'static str> {
            if self.fail_sleep {
                return Err("sleep failed");
            }
            self.sleeps.push(timeout);
            // To the next tick edge: the tick's interrupt ends the sleep.
            self.us = (self.us / 1000 + 1) * 1000;
            let now = self.us;
            for &(at, src, r) in &self.irqs {
                if at <= now
                    && let Some(slot) = self.ready.get_mut(src)
                {
                    *slot = r;
                }
            }
            Ok(())
        }
    }

    type Sel = Selector<Fixed<Sim, 4>, u8, 8>;

    fn sel() -> Sel {
        Selector::new(Fixed::new(Sim::default()))
    }

    fn sim(sel: &mut Sel) -> &mut Sim {
        sel.backend_mut().sources_mut()
    }

    #[test]
    fn reports_only_what_the_interest_asks_for() {
        let mut sel = sel();
        sel.register(0, EVENT_READ, 10).unwrap();
        sel.register(1, EVENT_READ | EVENT_WRITE, 11).unwrap();
        sim(&mut sel).ready = [
            Readiness::WRITABLE,
            Readiness::READABLE | Readiness::WRITABLE,
            Readiness::READABLE, // not registered
            Readiness::empty(),
        ];
        let mut ready: Ready<u8, 4> = Ready::new();
        assert_eq!(sel.select(&mut ready, Some(Duration::ZERO)), Ok(1));
        let got: Vec<_> = ready.iter().map(|(k, e)| (k.fd, k.data, e)).collect();
        assert_eq!(got, [(1, 11, EVENT_READ | EVENT_WRITE)]);
        // Level-triggered: reported again until serviced.
        assert_eq!(sel.select(&mut ready, Some(Duration::ZERO)), Ok(1));
        assert!(sim(&mut sel).sleeps.is_empty(), "zero polls: no sleep");
    }

    #[test]
    fn readiness_the_interest_does_not_ask_for_does_not_end_the_wait() {
        let mut sel = sel();
        sel.register(0, EVENT_READ, 0).unwrap();
        sim(&mut sel).ready[0] = Readiness::WRITABLE;
        let mut ready: Ready<u8, 4> = Ready::new();
        assert_eq!(
            sel.select(&mut ready, Some(Duration::from_millis(5))),
            Ok(0)
        );
        assert!(
            sim(&mut sel).us >= 5000,
            "woke for WRITABLE on a READ-only source"
        );
    }

    #[test]
    fn time_left_is_checked_sub_by_parts() {
        let d = |s, n| Duration::new(s, n);
        for (deadline, now) in [
            (d(5, 0), d(3, 0)),
            (d(5, 100), d(3, 200)),
            (d(5, 200), d(3, 100)),
            (d(5, 0), d(5, 0)),
            (d(5, 0), d(5, 1)),
            (d(3, 0), d(5, 0)),
            (d(0, 999_999_999), d(0, 0)),
            (d(u64::MAX, 999_999_999), d(0, 0)),
            (d(1, 0), d(0, 999_999_999)),
        ] {
            let want = deadline.checked_sub(now).filter(|l| !l.is_zero());
            assert_eq!(time_left(deadline, now), want, "{deadline:?} - {now:?}");
        }
    }

    #[test]
    fn source_numbers_past_k_are_invalid() {
        let mut sel = sel();
        assert_eq!(sel.register(4, EVENT_READ, 0), Err(Error::InvalidFd(4)));
        assert!(sel.register(3, EVENT_READ, 0).is_ok());
    }

    #[test]
    fn a_timeout_waits_at_least_its_length_on_a_tick_clock() {
        for timeout_us in [1, 999, 1000, 1001, 2500, 10_000] {
            // On a tick edge, part-way through a tick, just before the next
            // edge (where a wait that trusted the tick counter alone would
            // end one tick early).
            for start_us in [0, 700, 999] {
                let timeout = Duration::from_micros(timeout_us);
                let mut sel = sel();
                sel.register(0, EVENT_READ, 0).unwrap();
                sim(&mut sel).us = start_us;
                let mut ready: Ready<u8, 4> = Ready::new();
                assert_eq!(sel.select(&mut ready, Some(timeout)), Ok(0));
                let slept_us = sim(&mut sel).us - start_us;
                assert!(
                    slept_us >= timeout_us,
                    "{timeout:?} from {start_us} us: slept {slept_us} us"
                );
                // And not more than two ticks beyond.
                assert!(slept_us < timeout_us + 2000, "{timeout:?}: {slept_us} us");
            }
        }
    }

    #[test]
    fn no_timeout_sleeps_until_a_source_is_ready() {
        let mut sel = sel();
        sel.register(2, EVENT_READ, 7).unwrap();
        sim(&mut sel).irqs.push((5000, 2, Readiness::READABLE));
        let mut ready: Ready<u8, 4> = Ready::new();
        assert_eq!(sel.select(&mut ready, None), Ok(1));
        assert_eq!(sim(&mut sel).us, 5000);
        assert!(sim(&mut sel).sleeps.iter().all(Option::is_none));
    }

    #[test]
    fn an_interrupt_ends_a_timed_wait_early() {
        let mut sel = sel();
        sel.register(1, EVENT_WRITE, 1).unwrap();
        sim(&mut sel).irqs.push((3000, 1, Readiness::WRITABLE));
        let mut ready: Ready<u8, 4> = Ready::new();
        assert_eq!(sel.select(&mut ready, Some(Duration::from_secs(1))), Ok(1));
        assert_eq!(sim(&mut sel).us, 3000);
        // Each sleep was told the time left, never more than the timeout
        // plus a tick.
        let sleeps = &sim(&mut sel).sleeps;
        assert_eq!(sleeps.first(), Some(&Some(Duration::from_millis(1001))));
        assert!(sleeps.windows(2).all(|w| w[1] < w[0]));
    }

    #[test]
    fn a_huge_timeout_still_sleeps_with_a_limit() {
        let mut sel = sel();
        sel.register(0, EVENT_READ, 0).unwrap();
        sim(&mut sel).irqs.push((2000, 0, Readiness::READABLE));
        let mut ready: Ready<u8, 4> = Ready::new();
        assert_eq!(sel.select(&mut ready, Some(Duration::MAX)), Ok(1));
        assert_eq!(sim(&mut sel).sleeps.first(), Some(&Some(Duration::MAX)));
    }

    #[test]
    fn unregistered_and_reregistered_sources() {
        let mut sel = sel();
        sel.register(0, EVENT_READ, 1).unwrap();
        sim(&mut sel).ready[0] = Readiness::READABLE;
        sel.unregister(0).unwrap();
        let mut ready: Ready<u8, 4> = Ready::new();
        assert_eq!(sel.select(&mut ready, Some(Duration::ZERO)), Ok(0));
        // The same number again: a new tag, and its reports reach the new key.
        sel.register(0, EVENT_READ, 2).unwrap();
        assert_eq!(sel.select(&mut ready, Some(Duration::ZERO)), Ok(1));
        assert_eq!(ready.iter().next().map(|(k, _)| k.data), Some(2));
        // modify to WRITE: readable no longer reported.
        sel.modify(0, EVENT_WRITE, 3).unwrap();
        assert_eq!(sel.select(&mut ready, Some(Duration::ZERO)), Ok(0));
    }

    #[test]
    fn a_failed_sleep_fails_the_select() {
        let mut sel = sel();
        sel.register(0, EVENT_READ, 0).unwrap();
        sim(&mut sel).fail_sleep = true;
        let mut ready: Ready<u8, 4> = Ready::new();
        assert_eq!(
            sel.select(&mut ready, Some(Duration::from_millis(5))),
            Err("sleep failed")
        );
    }

    #[test]
    fn an_empty_selector_sleeps_its_timeout() {
        let mut sel = sel();
        let mut ready: Ready<u8, 4> = Ready::new();
        assert_eq!(
            sel.select(&mut ready, Some(Duration::from_millis(3))),
            Ok(0)
        );
        assert!(sim(&mut sel).us >= 3000);
    }

    #[test]
    fn infallible_sources_build() {
        struct Nothing;
        impl Sources for Nothing {
            type Error = Infallible;
            fn readiness(&mut self, _: usize, _: Events) -> Readiness {
                Readiness::READABLE
            }
            fn now(&mut self) -> Duration {
                Duration::ZERO
            }
            fn sleep(&mut self, _: Option<Duration>) -> Result<(), Infallible> {
                Ok(())
            }
        }
        let mut sel: Selector<Fixed<Nothing, 1>, (), 1> = Selector::new(Fixed::new(Nothing));
        sel.register(0, EVENT_READ, ()).unwrap();
        let mut ready: Ready<(), 1> = Ready::new();
        assert_eq!(sel.select(&mut ready, None).ok(), Some(1));
    }
}
