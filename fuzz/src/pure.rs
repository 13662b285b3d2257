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

use arbitrary::Arbitrary;
use selectors2_core::{Events, Readiness};

/// One input.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Input {
    /// A readiness, any bits.
    pub readiness: u8,
    /// A second readiness, for the union property.
    pub other: u8,
    /// An interest, any bits.
    pub interest: u8,
}

/// Checks every property for `input`.
pub fn run(input: Input) {
    to_events(input);
    // TIMEOUT CONVERSION: the std adapter's timeout module (issue 5: "a
    // positive timeout never converts to zero", "the conversion never
    // overflows", per backend resolution) gets its properties here once
    // that module is public. Its API is not fixed yet; do not guess it.
}

fn to_events(input: Input) {
    let r = Readiness::from_bits_retain(input.readiness);
    let other = Readiness::from_bits_retain(input.other);
    let interest = Events::from_bits_retain(input.interest);
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
