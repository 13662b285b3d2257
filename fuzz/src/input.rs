//! Structured input pieces shared by the targets: every value a target
//! needs, biased towards the interesting ones (small fds that collide,
//! valid interest masks) while still reaching every raw value.

use arbitrary::Arbitrary;
use core::time::Duration;

use selectors2_core::SIM_FD_LIMIT;
use selectors2_core::{RawFd, Readiness};

/// Small fds, so that duplicates, re-registrations and a full table happen.
pub const SMALL_FDS: RawFd = 24;

/// The fds just inside and outside what `SimBackend` can watch, and beyond.
pub const EDGE_FDS: [RawFd; 8] = [
    -1,
    -2,
    i32::MIN,
    SIM_FD_LIMIT - 1,
    SIM_FD_LIMIT,
    SIM_FD_LIMIT + 1,
    i32::MAX,
    500,
];

/// Every fd an input can name: what the targets check after each step.
pub fn fd_universe() -> impl Iterator<Item = RawFd> {
    (0..SMALL_FDS).chain(EDGE_FDS)
}

/// An fd: mostly `0..SMALL_FDS`, sometimes one of [`EDGE_FDS`].
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdIn(pub u8);

impl FdIn {
    /// The fd this byte stands for.
    pub fn fd(self) -> RawFd {
        let b = self.0;
        if b < 224 {
            RawFd::from(b) % SMALL_FDS
        } else {
            EDGE_FDS[usize::from(b - 224) % EDGE_FDS.len()]
        }
    }
}

/// An interest mask: mostly one of the three valid ones, sometimes any
/// raw bits, which reach the selector intact. The differential sequence's
/// own type, so that every target draws masks the same way.
pub use selectors2_tests::differential::Interest;

/// A simulated readiness: the common states, or any raw bits (unknown bits
/// included, which count like `ERROR`).
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadinessIn {
    /// `READABLE`.
    Readable,
    /// `WRITABLE`.
    Writable,
    /// `READABLE | WRITABLE`.
    Both,
    /// `HANGUP`.
    Hangup,
    /// Any bits, 0..=255.
    Raw(u8),
}

impl ReadinessIn {
    /// The readiness.
    pub fn readiness(self) -> Readiness {
        match self {
            ReadinessIn::Readable => Readiness::READABLE,
            ReadinessIn::Writable => Readiness::WRITABLE,
            ReadinessIn::Both => Readiness::READABLE | Readiness::WRITABLE,
            ReadinessIn::Hangup => Readiness::HANGUP,
            ReadinessIn::Raw(bits) => Readiness::from_bits_retain(bits),
        }
    }
}

/// A `select` timeout.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutIn {
    /// `None`: block.
    Block,
    /// Zero: poll.
    Zero,
    /// A few nanoseconds up to about 4 s.
    Nanos(u32),
    /// The longest `Duration`.
    Max,
}

impl TimeoutIn {
    /// The timeout.
    pub fn timeout(self) -> Option<Duration> {
        match self {
            TimeoutIn::Block => None,
            TimeoutIn::Zero => Some(Duration::ZERO),
            TimeoutIn::Nanos(n) => Some(Duration::from_nanos(u64::from(n))),
            TimeoutIn::Max => Some(Duration::MAX),
        }
    }
}
