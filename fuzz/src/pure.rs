//! `pure`: properties of the pure translations, for every input.
//!
//! `Readiness::to_events(interest)` for arbitrary readiness bits (unknown
//! ones included) and arbitrary interest bits (invalid masks included):
//!
//! * the result is within the interest, and holds no bit beyond
//!   `READ | WRITE`;
//! * `READ` is present iff the readiness has a bit other than `WRITABLE`
//!   and the interest has `READ`; `WRITE` likewise with `READABLE`
//!   (Python's rule for epoll and poll: error and hang-up wake both);
//! * it is non-empty whenever the interest is met;
//! * it distributes over union (the selector merges split reports by OR),
//!   and equals the unmasked translation masked by the interest.
//!
//! The std adapter's timeout conversions (`std-adapter/src/timeout.rs`,
//! reached through `selectors2::__fuzz`) for any `Duration`:
//!
//! * `to_millis` (epoll, poll): `None` is `-1`; zero stays zero; a positive
//!   timeout is at least 1 ms, never below the timeout and less than 1 ms
//!   above it (rounded up), unless it saturates at `i32::MAX`, which only a
//!   timeout above `i32::MAX - 1` ms may do;
//! * `millis_timespec` (epoll through rustix): `None` for a negative count,
//!   else exactly that many milliseconds, so `to_millis` round-trips;
//! * `to_micros_timespec` (select): a valid `timespec` of whole
//!   microseconds, zero for zero, non-zero for any positive timeout, never
//!   below it and less than 1 µs above it, unless it saturates at the
//!   largest `timespec`, which only a timeout that does not fit may do;
//! * `to_nanos_timespec` (kqueue): exact, unless it saturates likewise.
//!
//! Nothing panics or overflows (the fuzzer builds with overflow checks).

use arbitrary::Arbitrary;
use core::time::Duration;
use selectors2::__fuzz::{millis_timespec, to_micros_timespec, to_millis, to_nanos_timespec};

use selectors2_core::{Events, Readiness};

/// One input.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Input {
    /// A readiness, any bits.
    pub readiness: u8,
    /// A second readiness, for the union property.
    pub other: u8,
    /// An interest, any bits.
    pub interest: u8,
    /// A timeout's whole seconds.
    pub secs: SecsIn,
    /// Its nanoseconds, taken modulo 10^9. The raw bits, as an `i32`, are
    /// also the millisecond count given to `millis_timespec` on its own.
    pub nanos: u32,
}

/// A timeout's whole seconds: any `u64`, or near the limits where the
/// conversions saturate (which random `u64`s would rarely hit).
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecsIn {
    /// 0..=255 s: the rounding of small timeouts.
    Small(u8),
    /// [`MILLIS_LIMIT_SECS`] plus or minus 128 s: where `to_millis`
    /// saturates at `i32::MAX` ms.
    NearMillisLimit(i8),
    /// `i64::MAX` plus or minus 128 s: where a 64-bit `timespec`
    /// saturates.
    NearTimespecLimit(i8),
    /// Any value.
    Raw(u64),
}

/// `i32::MAX` ms in whole seconds (2,147,483 s, about 24.8 days).
pub const MILLIS_LIMIT_SECS: u64 = i32::MAX as u64 / 1000;

impl SecsIn {
    /// The seconds.
    pub fn secs(self) -> u64 {
        match self {
            SecsIn::Small(s) => u64::from(s),
            SecsIn::NearMillisLimit(d) => MILLIS_LIMIT_SECS.wrapping_add_signed(i64::from(d)),
            SecsIn::NearTimespecLimit(d) => (i64::MAX as u64).wrapping_add_signed(i64::from(d)),
            SecsIn::Raw(s) => s,
        }
    }
}

/// Checks every property for `input`.
pub fn run(input: Input) {
    to_events(input.readiness, input.other, input.interest);
    let t = Duration::new(input.secs.secs(), input.nanos % 1_000_000_000);
    timeout(t);
    millis(i32::from_ne_bytes(input.nanos.to_ne_bytes()));
}

/// The `to_events` properties for one readiness, a second one (for the
/// union) and an interest.
pub fn to_events(readiness: u8, other: u8, interest: u8) {
    let r = Readiness::from_bits_retain(readiness);
    let other = Readiness::from_bits_retain(other);
    let interest = Events::from_bits_retain(interest);
    let ev = r.to_events(interest);
    let ctx = (r, interest, ev);

    assert_eq!(
        ev.bits() & !interest.bits(),
        0,
        "beyond the interest: {ctx:?}"
    );
    assert_eq!(
        ev.bits() & !Events::all().bits(),
        0,
        "unknown bits: {ctx:?}"
    );

    let bits = r.bits();
    let read = bits & !Readiness::WRITABLE.bits() != 0 && interest.contains(Events::READ);
    let write = bits & !Readiness::READABLE.bits() != 0 && interest.contains(Events::WRITE);
    assert_eq!(ev.contains(Events::READ), read, "READ: {ctx:?}");
    assert_eq!(ev.contains(Events::WRITE), write, "WRITE: {ctx:?}");

    // "Met": the readiness implies an event the interest asks for.
    let implied = r.to_events(Events::all());
    let met = !(implied & interest).is_empty();
    assert_eq!(
        !ev.is_empty(),
        met,
        "non-empty iff the interest is met: {ctx:?}"
    );
    assert_eq!(ev, implied & interest, "masking: {ctx:?}");

    assert_eq!(
        (r | other).to_events(interest),
        ev | other.to_events(interest),
        "union: {ctx:?} with {other:?}"
    );
}

const NANOS_PER_SEC: i128 = 1_000_000_000;
const NANOS_PER_MILLI: i128 = 1_000_000;
const NANOS_PER_MICRO: i128 = 1_000;

/// The longest wait `to_millis` expresses, in nanoseconds.
const MILLIS_MAX: i128 = i32::MAX as i128 * NANOS_PER_MILLI;
/// The largest `timespec` (64-bit `time_t`), in nanoseconds.
const TIMESPEC_MAX: i128 = i64::MAX as i128 * NANOS_PER_SEC + (NANOS_PER_SEC - 1);
/// The largest `timespec` of whole microseconds, in nanoseconds.
const TIMESPEC_MAX_MICROS: i128 = TIMESPEC_MAX - (NANOS_PER_MICRO - 1);

/// A `timespec`'s fields, checked valid (`tv_sec >= 0`, `0 <= tv_nsec <
/// 10^9`), as `(tv_sec, tv_nsec, total nanoseconds)`.
fn total(sec: i128, nsec: i128, ctx: &dyn std::fmt::Debug) -> (i128, i128, i128) {
    assert!(sec >= 0, "negative tv_sec {sec}: {ctx:?}");
    assert!(
        (0..NANOS_PER_SEC).contains(&nsec),
        "tv_nsec {nsec} out of range: {ctx:?}"
    );
    (sec, nsec, sec * NANOS_PER_SEC + nsec)
}

/// The properties of every conversion of `t`.
pub fn timeout(t: Duration) {
    let nanos = i128::try_from(t.as_nanos()).expect("a Duration fits in i128 ns");
    assert_eq!(to_millis(None), -1, "None blocks");

    // to_millis: whole ms, rounded up, saturating at i32::MAX.
    let ms = to_millis(Some(t));
    let ms_nanos = i128::from(ms) * NANOS_PER_MILLI;
    let ctx = ("to_millis", t, ms);
    if nanos <= MILLIS_MAX {
        assert!(ms_nanos >= nanos, "below the timeout: {ctx:?}");
        assert!(ms_nanos - nanos < NANOS_PER_MILLI, "1 ms above: {ctx:?}");
    } else {
        assert_eq!(ms, i32::MAX, "not saturated: {ctx:?}");
    }
    if t.is_zero() {
        assert_eq!(ms, 0, "zero polls: {ctx:?}");
    } else {
        assert!(ms >= 1, "a positive timeout became 0 ms: {ctx:?}");
    }
    millis(ms);

    // to_micros_timespec: whole µs, rounded up, saturating.
    let ts = to_micros_timespec(t);
    let ctx = ("to_micros_timespec", t, ts);
    let (sec, nsec, us_nanos) = total(ts.tv_sec.into(), ts.tv_nsec.into(), &ctx);
    if nanos <= TIMESPEC_MAX_MICROS {
        assert!(us_nanos >= nanos, "below the timeout: {ctx:?}");
        assert!(us_nanos - nanos < NANOS_PER_MICRO, "1 µs above: {ctx:?}");
    } else {
        // Not (i64::MAX, 999_999_999): rustix's libc backend rounds a
        // select timeout up to whole µs, which would carry into an
        // overflowing tv_sec (EINVAL). Found here; see
        // `select_timeout_saturates_at_whole_micros` in the conformance suite.
        assert_eq!(
            us_nanos, TIMESPEC_MAX_MICROS,
            "not saturated at the largest whole-µs timespec: {ctx:?}"
        );
    }
    assert_eq!(nsec % NANOS_PER_MICRO, 0, "not whole µs: {ctx:?}");
    if t.is_zero() {
        assert_eq!((sec, nsec), (0, 0), "zero polls: {ctx:?}");
    } else {
        assert_ne!(us_nanos, 0, "a positive timeout became 0 µs: {ctx:?}");
    }

    // to_nanos_timespec: exact, saturating.
    let ts = to_nanos_timespec(t);
    let ctx = ("to_nanos_timespec", t, ts);
    let (_, _, ns_nanos) = total(ts.tv_sec.into(), ts.tv_nsec.into(), &ctx);
    if nanos <= TIMESPEC_MAX {
        assert_eq!(ns_nanos, nanos, "not exact: {ctx:?}");
    } else {
        assert_eq!(ns_nanos, TIMESPEC_MAX, "not saturated: {ctx:?}");
    }
}

/// `millis_timespec(ms)`: `None` iff `ms` is negative, else exactly `ms`
/// milliseconds.
pub fn millis(ms: i32) {
    match millis_timespec(ms) {
        None => assert!(ms < 0, "no timespec for {ms} ms"),
        Some(ts) => {
            let ctx = ("millis_timespec", ms, ts);
            assert!(ms >= 0, "a timespec for a negative count: {ctx:?}");
            let (_, _, total) = total(ts.tv_sec.into(), ts.tv_nsec.into(), &ctx);
            assert_eq!(
                total,
                i128::from(ms) * NANOS_PER_MILLI,
                "not exact: {ctx:?}"
            );
        }
    }
}
