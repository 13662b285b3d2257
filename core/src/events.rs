//! Interest masks ([`Events`]) and what a backend observed ([`Readiness`]),
//! with the one translation between them.

use bitflags::bitflags;

bitflags! {
    /// Interest in, or readiness for, reading and writing.
    ///
    /// The bit values are Python's: `READ == 1`, `WRITE == 2`. The only valid
    /// interest masks are `READ`, `WRITE` and `READ | WRITE`; anything else is
    /// rejected with [`Error::InvalidEvents`](crate::Error::InvalidEvents).
    ///
    /// ```
    /// use selectors2_core::{Events, EVENT_READ, EVENT_WRITE};
    ///
    /// let both = EVENT_READ | EVENT_WRITE;
    /// assert_eq!(both.bits(), 3);
    /// assert!(both.is_valid_interest());
    /// assert!(!Events::empty().is_valid_interest());
    /// assert!(!Events::from_bits_retain(4).is_valid_interest());
    /// ```
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
    pub struct Events: u8 {
        /// The file descriptor is (or should be watched for being) readable.
        const READ = 1;
        /// The file descriptor is (or should be watched for being) writable.
        const WRITE = 2;
    }
}

/// Python's `selectors.EVENT_READ`.
pub const EVENT_READ: Events = Events::READ;
/// Python's `selectors.EVENT_WRITE`.
pub const EVENT_WRITE: Events = Events::WRITE;

impl Events {
    /// Whether this is a mask `register` and `modify` accept: non-empty and
    /// within `READ | WRITE`.
    #[inline]
    #[must_use]
    pub const fn is_valid_interest(self) -> bool {
        let bits = self.bits();
        bits != 0 && bits & !Self::all().bits() == 0
    }
}

bitflags! {
    /// What a backend observed on a file descriptor, before it is turned into
    /// [`Events`] by [`Readiness::to_events`].
    ///
    /// Backends set the bits that match their mechanism (`EPOLLIN` →
    /// `READABLE`, `POLLNVAL` → `INVALID`, a kqueue `EV_EOF` → `HANGUP`, ...);
    /// unknown bits are kept and count like `ERROR`.
    ///
    /// The bits are poll(2)'s (`POLLIN` 0x01, `POLLPRI` 0x02, `POLLOUT`
    /// 0x04, `POLLERR` 0x08, `POLLHUP` 0x10, `POLLNVAL` 0x20: the values of
    /// Linux, the BSDs, macOS and illumos, and of epoll's first five), so
    /// that the epoll and poll backends hand on what the kernel wrote,
    /// masked, with no translation on the path of every report. Code
    /// should still use the names.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Readiness: u8 {
        /// Data can be read without blocking (`EPOLLIN`, `POLLIN`, `EVFILT_READ`).
        const READABLE = 0x01;
        /// Urgent or priority data (`EPOLLPRI`, `POLLPRI`).
        const PRIORITY = 0x02;
        /// Data can be written without blocking (`EPOLLOUT`, `POLLOUT`, `EVFILT_WRITE`).
        const WRITABLE = 0x04;
        /// An error condition is pending (`EPOLLERR`, `POLLERR`, `EV_ERROR`).
        const ERROR = 0x08;
        /// The peer hung up (`EPOLLHUP`, `POLLHUP`, `EV_EOF`).
        const HANGUP = 0x10;
        /// The descriptor is not open (`POLLNVAL`): the caller should unregister it.
        const INVALID = 0x20;
    }
}

impl Readiness {
    /// Turns what a backend saw into the events a key asked for.
    ///
    /// This is Python's rule for epoll and poll, applied to every backend:
    /// anything other than "writable" makes the fd count as readable, and
    /// anything other than "readable" makes it count as writable, so an
    /// error, a hang-up or an invalid fd wakes both readers and writers (a
    /// reader then sees EOF or the error, instead of spinning). The result
    /// is then masked by `interest`, so it never holds an event the key did
    /// not ask for. It is empty only when nothing the key asked for happened.
    ///
    /// ```
    /// use selectors2_core::{Events, Readiness};
    ///
    /// assert_eq!(Readiness::READABLE.to_events(Events::all()), Events::READ);
    /// assert_eq!(Readiness::HANGUP.to_events(Events::all()), Events::all());
    /// assert_eq!(Readiness::HANGUP.to_events(Events::WRITE), Events::WRITE);
    /// assert_eq!(Readiness::WRITABLE.to_events(Events::READ), Events::empty());
    /// ```
    #[inline]
    #[must_use]
    pub const fn to_events(self, interest: Events) -> Events {
        // One load from a table of the rule below, on the path of every
        // report: cheaper than its two tests.
        let all = TO_EVENTS[self.bits() as usize];
        // `all` is within READ | WRITE, and so is the result.
        Events::from_bits_retain(all & interest.bits())
    }

    /// The rule of [`to_events`](Self::to_events) for a full interest,
    /// written out: what [`TO_EVENTS`] holds.
    const fn all_events(bits: u8) -> u8 {
        let mut out = 0;
        if bits & !Self::WRITABLE.bits() != 0 {
            out |= Events::READ.bits();
        }
        if bits & !Self::READABLE.bits() != 0 {
            out |= Events::WRITE.bits();
        }
        out
    }
}

/// [`Readiness::to_events`] with interest `READ | WRITE`, for every
/// readiness byte, computed at compile time.
const TO_EVENTS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut bits = 0;
    while bits < 256 {
        table[bits] = Readiness::all_events(bits as u8);
        bits += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_bit_values() {
        assert_eq!(EVENT_READ.bits(), 1);
        assert_eq!(EVENT_WRITE.bits(), 2);
    }

    #[test]
    fn valid_interest_is_exactly_one_two_three() {
        for bits in 0..=u8::MAX {
            let valid = Events::from_bits_retain(bits).is_valid_interest();
            assert_eq!(valid, matches!(bits, 1..=3), "bits {bits}");
        }
    }

    /// Python's rule (`selectors.EpollSelector.select`: not only
    /// `EPOLLOUT` → READ, not only `EPOLLIN` → WRITE), written from the
    /// named flags and checked for every readiness byte and interest, so
    /// that a wrong entry in the table, or a wrong rule it was built from,
    /// fails here.
    #[test]
    fn the_table_is_the_rule() {
        let (mut none, mut read_only, mut write_only, mut both) = (0, 0, 0, 0);
        for bits in 0..=u8::MAX {
            let r = Readiness::from_bits_retain(bits);
            let only = |flag: Readiness| r == flag;
            let read = !r.is_empty() && !only(Readiness::WRITABLE);
            let write = !r.is_empty() && !only(Readiness::READABLE);
            match (read, write) {
                (false, false) => none += 1,
                (true, false) => read_only += 1,
                (false, true) => write_only += 1,
                (true, true) => both += 1,
            }
            for interest in [Events::empty(), Events::READ, Events::WRITE, Events::all()] {
                let mut want = Events::empty();
                want.set(Events::READ, read && interest.contains(Events::READ));
                want.set(Events::WRITE, write && interest.contains(Events::WRITE));
                assert_eq!(r.to_events(interest), want, "{r:?} with {interest:?}");
            }
        }
        // Only "nothing", "only readable" and "only writable" stay narrow.
        assert_eq!((none, read_only, write_only, both), (1, 1, 1, 253));
    }

    #[test]
    fn to_events_table() {
        let all = Events::all();
        let cases = [
            (Readiness::empty(), Events::empty()),
            (Readiness::READABLE, Events::READ),
            (Readiness::WRITABLE, Events::WRITE),
            (Readiness::READABLE | Readiness::WRITABLE, all),
            (Readiness::ERROR, all),
            (Readiness::HANGUP, all),
            (Readiness::INVALID, all),
            (Readiness::PRIORITY, all),
            (Readiness::from_bits_retain(128), all),
        ];
        for (r, want) in cases {
            assert_eq!(r.to_events(all), want, "{r:?}");
        }
    }

    #[test]
    fn to_events_never_exceeds_interest_and_is_never_empty_when_met() {
        for r in 0..=u8::MAX {
            let r = Readiness::from_bits_retain(r);
            for i in 1..=3u8 {
                let interest = Events::from_bits_retain(i);
                let ev = r.to_events(interest);
                assert!(interest.contains(ev));
                // Python: READ if ev & !OUT, WRITE if ev & !IN.
                let want_read = r.bits() & !Readiness::WRITABLE.bits() != 0;
                let want_write = r.bits() & !Readiness::READABLE.bits() != 0;
                assert_eq!(
                    ev.contains(Events::READ),
                    want_read && interest.contains(Events::READ)
                );
                assert_eq!(
                    ev.contains(Events::WRITE),
                    want_write && interest.contains(Events::WRITE)
                );
            }
        }
    }

    #[test]
    fn to_events_distributes_over_union() {
        // The Selector merges duplicate reports by OR-ing readiness; that is
        // only sound because the translation distributes over union.
        for a in 0..64u8 {
            for b in 0..64u8 {
                let (ra, rb) = (
                    Readiness::from_bits_retain(a),
                    Readiness::from_bits_retain(b),
                );
                let all = Events::all();
                assert_eq!(
                    (ra | rb).to_events(all),
                    ra.to_events(all) | rb.to_events(all)
                );
            }
        }
    }
}
