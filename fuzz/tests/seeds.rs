//! The committed seeds (`corpus/<target>/seed-N`), written here as the
//! inputs they stand for and encoded into the bytes that `arbitrary`
//! decodes back into them, so that a seed means what fuzz/README.md says
//! even after a step type changes.
//!
//! The tests check that every committed `seed-*` file is exactly what its
//! input below encodes to (and that there is no other), that the bytes
//! decode back to that input (the encoder here is the inverse of the
//! targets' decoding), and, against the model, what the README says of the
//! seeds (the table full, seven fds ready for a `Ready` of three, ...).
//! After changing an input type or a seed, rewrite the files:
//!
//! ```sh
//! cargo test --manifest-path fuzz/Cargo.toml --test seeds -- --ignored write_seeds
//! ```

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::fs;
use std::path::PathBuf;

use arbitrary::{Arbitrary, Unstructured};
use core::time::Duration;
use selectors2_core::{Error, RawFd, Readiness};
use selectors2_core::{SIM_FD_LIMIT, SimError};
use selectors2_fuzz::backends_agree::Op;
use selectors2_fuzz::input::{EDGE_FDS, FdIn, Interest, ReadinessIn, TimeoutIn};
use selectors2_fuzz::model::{KeyResult, Model};
use selectors2_fuzz::pure::{Input, MILLIS_LIMIT_SECS, SecsIn};
use selectors2_fuzz::sim::SimOp;
use selectors2_fuzz::{key_map, selector_sim};

// ---------------------------------------------------------------------
// Encoding: the inverse of `arbitrary` 1.x's decoding.

/// The bytes that `arbitrary` decodes into a value.
trait Encode {
    fn encode(&self, out: &mut Vec<u8>);
}

macro_rules! encode_int {
    ($($t:ty),*) => {$(
        impl Encode for $t {
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend(self.to_le_bytes());
            }
        }
    )*};
}
encode_int!(u8, u16, u32, u64, i8);

impl Encode for bool {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
}

/// A derived enum's variant `index` of `count` (arbitrary reads a `u32`
/// `x` and takes variant `(x * count) >> 32`), then its fields.
fn variant(out: &mut Vec<u8>, index: u64, count: u64, fields: &[&dyn Encode]) {
    let x = (index << 32).div_ceil(count);
    u32::try_from(x)
        .expect("a variant index below count")
        .encode(out);
    for f in fields {
        f.encode(out);
    }
}

impl Encode for FdIn {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out);
    }
}

impl Encode for Interest {
    /// A valid mask from one byte below 192, any other from 192 and the
    /// bits (`Interest`'s `Arbitrary`).
    fn encode(&self, out: &mut Vec<u8>) {
        match self.0 {
            mask @ 1..=3 => out.push(mask - 1),
            bits => out.extend([192, bits]),
        }
    }
}

impl Encode for ReadinessIn {
    fn encode(&self, out: &mut Vec<u8>) {
        let n = 5;
        match self {
            ReadinessIn::Readable => variant(out, 0, n, &[]),
            ReadinessIn::Writable => variant(out, 1, n, &[]),
            ReadinessIn::Both => variant(out, 2, n, &[]),
            ReadinessIn::Hangup => variant(out, 3, n, &[]),
            ReadinessIn::Raw(bits) => variant(out, 4, n, &[bits]),
        }
    }
}

impl Encode for TimeoutIn {
    fn encode(&self, out: &mut Vec<u8>) {
        let n = 4;
        match self {
            TimeoutIn::Block => variant(out, 0, n, &[]),
            TimeoutIn::Zero => variant(out, 1, n, &[]),
            TimeoutIn::Nanos(ns) => variant(out, 2, n, &[ns]),
            TimeoutIn::Max => variant(out, 3, n, &[]),
        }
    }
}

impl<D: Encode> Encode for SimOp<D> {
    fn encode(&self, out: &mut Vec<u8>) {
        let n = 12;
        match self {
            SimOp::Register { fd, events, data } => variant(out, 0, n, &[fd, events, data]),
            SimOp::Modify { fd, events, data } => variant(out, 1, n, &[fd, events, data]),
            SimOp::Unregister { fd } => variant(out, 2, n, &[fd]),
            SimOp::GetKey { fd } => variant(out, 3, n, &[fd]),
            SimOp::SetReadiness { fd, readiness } => variant(out, 4, n, &[fd, readiness]),
            SimOp::ClearReadiness { fd } => variant(out, 5, n, &[fd]),
            SimOp::FailNext => variant(out, 6, n, &[]),
            SimOp::SplitReports(on) => variant(out, 7, n, &[on]),
            SimOp::Descending(on) => variant(out, 8, n, &[on]),
            SimOp::KernelBatches(on) => variant(out, 9, n, &[on]),
            SimOp::Close { fd } => variant(out, 10, n, &[fd]),
            SimOp::Select { timeout, repeat } => variant(out, 11, n, &[timeout, repeat]),
        }
    }
}

impl Encode for Op {
    fn encode(&self, out: &mut Vec<u8>) {
        let n = 10;
        match self {
            Op::Register { src, events, data } => variant(out, 0, n, &[src, events, data]),
            Op::Modify { src, events, data } => variant(out, 1, n, &[src, events, data]),
            Op::Unregister { src } => variant(out, 2, n, &[src]),
            Op::Poke { src } => variant(out, 3, n, &[src]),
            Op::Read { src } => variant(out, 4, n, &[src]),
            Op::Fill { src } => variant(out, 5, n, &[src]),
            Op::DrainPeer { src } => variant(out, 6, n, &[src]),
            Op::ClosePeer { src } => variant(out, 7, n, &[src]),
            Op::Close { src } => variant(out, 8, n, &[src]),
            Op::Select => variant(out, 9, n, &[]),
        }
    }
}

impl Encode for SecsIn {
    fn encode(&self, out: &mut Vec<u8>) {
        let n = 4;
        match self {
            SecsIn::Small(s) => variant(out, 0, n, &[s]),
            SecsIn::NearMillisLimit(d) => variant(out, 1, n, &[d]),
            SecsIn::NearTimespecLimit(d) => variant(out, 2, n, &[d]),
            SecsIn::Raw(s) => variant(out, 3, n, &[s]),
        }
    }
}

impl Encode for Input {
    fn encode(&self, out: &mut Vec<u8>) {
        let Input {
            readiness,
            other,
            interest,
            secs,
            nanos,
        } = self;
        for f in [readiness as &dyn Encode, other, interest, secs, nanos] {
            f.encode(out);
        }
    }
}

/// A sequence as the targets take it (`Vec::arbitrary_take_rest`): each
/// step after a `true` byte, until the input ends.
impl<T: Encode> Encode for Vec<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        for step in self {
            true.encode(out);
            step.encode(out);
        }
    }
}

// ---------------------------------------------------------------------
// The seeds.

/// One committed seed: `corpus/<target>/seed-<n>`.
struct Seed {
    target: &'static str,
    n: usize,
    bytes: Vec<u8>,
}

impl Seed {
    fn path(&self) -> PathBuf {
        corpus(self.target).join(format!("seed-{}", self.n))
    }
}

fn corpus(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target)
}

/// Encodes `input` and checks that it decodes back as the target decodes
/// it (`fuzz_target!` and the corpus replay use `arbitrary_take_rest`).
fn seed<T>(target: &'static str, n: usize, input: T) -> Seed
where
    T: Encode + PartialEq + Debug + for<'a> Arbitrary<'a>,
{
    let mut bytes = Vec::new();
    input.encode(&mut bytes);
    let decoded = T::arbitrary_take_rest(Unstructured::new(&bytes))
        .unwrap_or_else(|e| panic!("{target}/seed-{n} does not decode: {e}"));
    assert_eq!(
        decoded, input,
        "{target}/seed-{n} decodes to something else"
    );
    Seed { target, n, bytes }
}

const READ: Interest = Interest(1);
const WRITE: Interest = Interest(2);
const BOTH: Interest = Interest(3);

/// The input byte that stands for `fd` ([`FdIn::fd`]).
fn fd(fd: RawFd) -> FdIn {
    (0..=u8::MAX)
        .map(FdIn)
        .find(|f| f.fd() == fd)
        .unwrap_or_else(|| panic!("no input byte stands for fd {fd}"))
}

fn register<D>(f: RawFd, events: Interest, data: D) -> SimOp<D> {
    SimOp::Register {
        fd: fd(f),
        events,
        data,
    }
}

fn modify<D>(f: RawFd, events: Interest, data: D) -> SimOp<D> {
    SimOp::Modify {
        fd: fd(f),
        events,
        data,
    }
}

fn unregister<D>(f: RawFd) -> SimOp<D> {
    SimOp::Unregister { fd: fd(f) }
}

fn get_key<D>(f: RawFd) -> SimOp<D> {
    SimOp::GetKey { fd: fd(f) }
}

fn set_readiness<D>(f: RawFd, readiness: ReadinessIn) -> SimOp<D> {
    SimOp::SetReadiness {
        fd: fd(f),
        readiness,
    }
}

fn close<D>(f: RawFd) -> SimOp<D> {
    SimOp::Close { fd: fd(f) }
}

/// `Select` `1 + repeat` times.
fn select<D>(timeout: TimeoutIn, repeat: u8) -> SimOp<D> {
    SimOp::Select { timeout, repeat }
}

/// `key_map`'s seeds.
fn key_map_seeds() -> Vec<Seed> {
    let limit = SIM_FD_LIMIT;
    vec![
        // Every error but `Full` and `Backend`: invalid masks (0, 4, 7),
        // negative fds and fds at SimBackend's limit, already registered,
        // not registered; `get_key` before and after an unregister.
        seed(
            "key_map",
            1,
            vec![
                register(-1, Interest(0), 1u16),
                register(-1, Interest(4), 1),
                register(-1, READ, 1),
                register(limit, READ, 1),
                register(limit - 1, BOTH, 2),
                register(limit - 1, WRITE, 3),
                modify(limit - 1, Interest(7), 4),
                modify(5, READ, 4),
                unregister(-2),
                unregister(limit + 1),
                get_key(limit - 1),
                unregister(limit - 1),
                get_key(limit - 1),
            ],
        ),
        // Fills the table (8 keys) until `Full`, frees one slot, fills it,
        // and is `Full` again.
        seed("key_map", 2, {
            let mut ops: Vec<SimOp<u16>> = (0..=8)
                .map(|f| register(f, if f % 2 == 0 { WRITE } else { READ }, f as u16))
                .collect();
            ops.extend([
                unregister(3),
                register(20, BOTH, 20),
                register(21, READ, 21),
                get_key(20),
            ]);
            ops
        }),
        // Injected failures on register, modify and unregister change
        // nothing; a data-only modify makes no backend call, so the
        // failure waits for the next call (an unregister).
        seed(
            "key_map",
            3,
            vec![
                SimOp::FailNext,
                register(3, READ, 1u16),
                register(3, READ, 1),
                SimOp::FailNext,
                modify(3, WRITE, 2),
                SimOp::FailNext,
                modify(3, READ, 9),
                unregister(3),
                SimOp::FailNext,
                unregister(3),
                get_key(3),
            ],
        ),
        // A closed fd: modify with new events fails with `Backend`, a
        // data-only modify succeeds, unregister succeeds and the fd can be
        // registered again; an injected failure on a closed fd's
        // unregister; closing fds the table cannot hold.
        seed(
            "key_map",
            4,
            vec![
                register(4, READ, 1u16),
                register(5, BOTH, 2),
                close(4),
                modify(4, WRITE, 3),
                modify(4, READ, 4),
                unregister(4),
                register(4, WRITE, 5),
                close(5),
                SimOp::FailNext,
                unregister(5),
                unregister(5),
                close(-1),
                close(limit),
            ],
        ),
    ]
}

/// Seven fds (2 to 8) registered for both, data 100 up, each readable and
/// writable.
fn seven_ready() -> Vec<SimOp<u32>> {
    (2..=8)
        .flat_map(|f| {
            [
                register(f, BOTH, 98 + f as u32),
                set_readiness(f, ReadinessIn::Both),
            ]
        })
        .collect()
}

/// `selector_sim`'s seeds.
fn selector_sim_seeds() -> Vec<Seed> {
    use TimeoutIn::{Block, Max, Nanos, Zero};
    vec![
        // Four fds with different interests and readiness (readable and
        // writable, hang-up, error, writable watched for read only),
        // selected with each kind of timeout, before and after the hang-up
        // clears.
        seed(
            "selector_sim",
            1,
            vec![
                register(1, READ, 1u32),
                register(2, WRITE, 2),
                register(3, BOTH, 3),
                register(4, READ, 4),
                set_readiness(1, ReadinessIn::Both),
                set_readiness(2, ReadinessIn::Hangup),
                set_readiness(3, ReadinessIn::Raw(Readiness::ERROR.bits())),
                set_readiness(4, ReadinessIn::Writable),
                select(Zero, 0),
                SimOp::ClearReadiness { fd: fd(2) },
                select(Block, 0),
                select(Nanos(1_000_000), 0),
            ],
        ),
        // Seven fds ready for a `Ready` of three, selected six times in a
        // row in both report orders, split and not: fairness.
        seed("selector_sim", 2, {
            let mut ops = seven_ready();
            ops.extend([
                select(Zero, 5),
                SimOp::Descending(true),
                select(Zero, 5),
                SimOp::SplitReports(true),
                select(Max, 5),
                SimOp::Descending(false),
                select(Zero, 5),
            ]);
            ops
        }),
        // Injected failures on select and unregister; a ready fd never
        // registered; a closed fd made ready again, unregistered, and
        // registered anew.
        seed(
            "selector_sim",
            3,
            vec![
                register(5, READ, 5u32),
                register(6, READ, 6),
                set_readiness(5, ReadinessIn::Readable),
                set_readiness(6, ReadinessIn::Readable),
                set_readiness(7, ReadinessIn::Readable),
                SimOp::FailNext,
                select(Zero, 0),
                select(Zero, 0),
                close(5),
                set_readiness(5, ReadinessIn::Readable),
                select(Zero, 0),
                SimOp::FailNext,
                unregister(6),
                unregister(6),
                select(Zero, 0),
                unregister(5),
                register(5, READ, 55),
                select(Zero, 0),
            ],
        ),
        // Split reports; seventeen registers on sixteen slots (the last
        // one `Full`); six fds with every readiness bit set, their
        // interests narrowed by modify between selects.
        seed("selector_sim", 4, {
            let mut ops = vec![SimOp::SplitReports(true)];
            ops.extend((0..=16).map(|f| register(f, BOTH, f as u32)));
            ops.extend(
                (0..=15)
                    .step_by(3)
                    .map(|f| set_readiness(f, ReadinessIn::Raw(0xff))),
            );
            ops.extend([
                select(Zero, 2),
                modify(3, READ, 33),
                modify(6, WRITE, 66),
                select(Zero, 2),
                modify(9, BOTH, 0),
                select(Block, 1),
            ]);
            ops
        }),
        // The seven ready fds of seed-2 under kernel-like batches, split
        // and not, in both orders, then without batches.
        seed("selector_sim", 5, {
            let mut ops = seven_ready();
            ops.extend([
                SimOp::KernelBatches(true),
                select(Zero, 5),
                SimOp::SplitReports(true),
                select(Zero, 5),
                SimOp::Descending(true),
                select(Zero, 5),
                SimOp::KernelBatches(false),
                select(Zero, 2),
            ]);
            ops
        }),
    ]
}

/// `backends_agree`'s steps that take arguments besides the source.
mod agree {
    use super::{Interest, Op};

    pub fn register(src: u8, events: Interest, data: u16) -> Op {
        Op::Register { src, events, data }
    }

    pub fn modify(src: u8, events: Interest, data: u16) -> Op {
        Op::Modify { src, events, data }
    }
}

/// `backends_agree`'s seeds. Sources: sockets 0-4, a pipe's read end 5,
/// another pipe's write end 6.
fn backends_agree_seeds() -> Vec<Seed> {
    use Op::{Close, ClosePeer, DrainPeer, Fill, Poke, Read, Select, Unregister};
    use agree::{modify, register};
    vec![
        // Every source registered for both; a socket and the pipe's read
        // end poked and read back, a select after each.
        seed("backends_agree", 1, {
            let mut ops: Vec<Op> = (0..=6)
                .map(|src| register(src, BOTH, 100 + u16::from(src)))
                .collect();
            ops.extend([
                Select,
                Poke { src: 0 },
                Poke { src: 5 },
                Select,
                Read { src: 0 },
                Read { src: 5 },
                Select,
            ]);
            ops
        }),
        // A socket watched for write and the pipe's write end for both:
        // filled (no longer writable), then drained, a select after each.
        seed(
            "backends_agree",
            2,
            vec![
                register(1, WRITE, 1),
                register(6, BOTH, 6),
                Select,
                Fill { src: 1 },
                Fill { src: 6 },
                Select,
                DrainPeer { src: 1 },
                Select,
                Read { src: 6 },
                Select,
            ],
        ),
        // Sockets watched for read, write and both hung up, then one
        // written into and one read.
        seed(
            "backends_agree",
            3,
            vec![
                register(0, READ, 0),
                register(1, WRITE, 1),
                register(2, BOTH, 2),
                ClosePeer { src: 0 },
                ClosePeer { src: 1 },
                ClosePeer { src: 2 },
                Select,
                Fill { src: 2 },
                Read { src: 0 },
                Select,
            ],
        ),
        // The exact errors: invalid masks (0, 4, 255), already
        // registered, modify and unregister of an unregistered source; a
        // data-only modify, a new interest, an invalid modify; unregister
        // twice.
        seed(
            "backends_agree",
            4,
            vec![
                register(3, Interest(0), 0),
                register(3, Interest(4), 0),
                register(3, Interest(255), 0),
                register(3, READ, 7),
                register(3, WRITE, 8),
                modify(4, READ, 9),
                Unregister { src: 4 },
                modify(3, READ, 10),
                modify(3, BOTH, 11),
                modify(3, Interest(0), 0),
                Select,
                Unregister { src: 3 },
                Unregister { src: 3 },
                Select,
            ],
        ),
        // The pipe's read end poked, its interest changed from read to
        // write to both, then unregistered, a select after each.
        seed(
            "backends_agree",
            5,
            vec![
                register(5, READ, 5),
                Poke { src: 5 },
                Select,
                modify(5, WRITE, 5),
                Select,
                modify(5, BOTH, 6),
                Select,
                Unregister { src: 5 },
                Select,
            ],
        ),
        // Two registered, ready fds (a socket and the pipe's read end)
        // closed without unregistering them: poll and select report them
        // with their whole interest, epoll never, and the third key alike
        // everywhere; registering a closed fd is skipped, unregistering
        // it succeeds.
        seed(
            "backends_agree",
            6,
            vec![
                register(0, READ, 0),
                register(1, BOTH, 1),
                register(5, READ, 5),
                Poke { src: 0 },
                Poke { src: 5 },
                Close { src: 1 },
                Select,
                Close { src: 5 },
                Select,
                register(1, READ, 11),
                Unregister { src: 1 },
                Unregister { src: 5 },
                Select,
            ],
        ),
    ]
}

/// `pure`'s seeds.
fn pure_seeds() -> Vec<Seed> {
    let input = |readiness, other, interest, secs, nanos| Input {
        readiness,
        other,
        interest,
        secs,
        nanos,
    };
    vec![
        // Readable, writable, both wanted; a 1 ns timeout (1 ms for
        // epoll and poll, 1 µs for select).
        seed("pure", 1, input(1, 2, 3, SecsIn::Small(0), 1)),
        // Hang-up, read wanted; exactly `i32::MAX` ms, the longest
        // timeout `to_millis` holds.
        seed(
            "pure",
            2,
            input(8, 0, 1, SecsIn::NearMillisLimit(0), 647_000_000),
        ),
        // Writable, write wanted; 1 ns longer, so `to_millis` saturates.
        seed(
            "pure",
            3,
            input(2, 1, 2, SecsIn::NearMillisLimit(0), 647_000_001),
        ),
        // An unknown readiness bit and `INVALID`, an invalid interest (7);
        // `i64::MAX` s and 999,999,001 ns, where select's timeout
        // saturated at a `timespec` of no whole microseconds (the finding
        // in the README).
        seed(
            "pure",
            4,
            input(128, 16, 7, SecsIn::NearTimespecLimit(0), 999_999_001),
        ),
        // Nothing ready, nothing wanted; `Duration::MAX`.
        seed(
            "pure",
            5,
            input(0, 0, 0, SecsIn::Raw(u64::MAX), 999_999_999),
        ),
        // Readable and writable, both wanted; a zero timeout.
        seed("pure", 6, input(3, 0, 3, SecsIn::Small(0), 0)),
    ]
}

fn all_seeds() -> Vec<Seed> {
    let mut seeds = key_map_seeds();
    seeds.extend(selector_sim_seeds());
    seeds.extend(backends_agree_seeds());
    seeds.extend(pure_seeds());
    seeds
}

const TARGETS: [&str; 4] = ["key_map", "selector_sim", "backends_agree", "pure"];

/// The `seed-*` files in `target`'s corpus.
fn committed(target: &str) -> BTreeSet<PathBuf> {
    fs::read_dir(corpus(target))
        .expect("corpus dir")
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("seed-"))
        })
        .collect()
}

#[test]
fn committed_seeds_are_the_inputs_here() {
    let seeds = all_seeds();
    for target in TARGETS {
        let want: BTreeSet<PathBuf> = seeds
            .iter()
            .filter(|s| s.target == target)
            .map(Seed::path)
            .collect();
        assert_eq!(
            committed(target),
            want,
            "the seed files of {target} (rewrite them: see this file's docs)"
        );
    }
    for s in &seeds {
        let bytes = fs::read(s.path()).expect("seed file");
        assert!(
            bytes == s.bytes,
            "{} is not what its input encodes to (rewrite the seeds: see this file's docs)",
            s.path().display()
        );
    }
}

/// Rewrites every `seed-*` file from the inputs here and removes the
/// others.
#[test]
#[ignore = "writes the corpus: run it after changing an input type or a seed"]
fn write_seeds() {
    let seeds = all_seeds();
    for target in TARGETS {
        for path in committed(target) {
            fs::remove_file(path).expect("remove old seed");
        }
    }
    for s in &seeds {
        fs::write(s.path(), &s.bytes).expect("write seed");
    }
}

// ---------------------------------------------------------------------
// What the README says of the seeds, checked against the model.

/// What the model says one step of a `SimOp` sequence does.
#[derive(Debug)]
enum Seen<D> {
    /// A register, modify or unregister, and its result.
    Table(KeyResult<D>),
    /// A successful select: how many fds are ready (as many reports when
    /// not split), and how the backend reports.
    Select {
        ready: usize,
        descending: bool,
        split: bool,
        kernel: bool,
    },
    /// A select that fails.
    FailedSelect,
    /// Any other step.
    Other,
}

fn walk<D: Copy + Eq + Debug>(ops: &[SimOp<D>], capacity: usize) -> Vec<Seen<D>> {
    let mut model = Model::new(capacity);
    let (mut descending, mut split, mut kernel) = (false, false, false);
    let mut seen = Vec::new();
    for &op in ops {
        seen.push(match op {
            SimOp::Register { fd, events, data } => {
                Seen::Table(model.register(fd.fd(), events.events(), data))
            }
            SimOp::Modify { fd, events, data } => {
                Seen::Table(model.modify(fd.fd(), events.events(), data))
            }
            SimOp::Unregister { fd } => Seen::Table(model.unregister(fd.fd())),
            SimOp::SetReadiness { fd, readiness } => {
                model.set_readiness(fd.fd(), readiness.readiness());
                Seen::Other
            }
            SimOp::ClearReadiness { fd } => {
                model.set_readiness(fd.fd(), Readiness::empty());
                Seen::Other
            }
            SimOp::FailNext => {
                model.fail_next();
                Seen::Other
            }
            SimOp::Close { fd } => {
                model.close(fd.fd());
                Seen::Other
            }
            SimOp::SplitReports(on) => {
                split = on;
                Seen::Other
            }
            SimOp::Descending(on) => {
                descending = on;
                Seen::Other
            }
            SimOp::KernelBatches(on) => {
                kernel = on;
                Seen::Other
            }
            SimOp::Select { timeout, .. } => match model.select(timeout.timeout()) {
                Ok(set) => Seen::Select {
                    ready: set.len(),
                    descending,
                    split,
                    kernel,
                },
                Err(_) => Seen::FailedSelect,
            },
            SimOp::GetKey { .. } => Seen::Other,
        });
    }
    seen
}

fn decode<T: for<'a> Arbitrary<'a>>(seed: &Seed) -> T {
    T::arbitrary_take_rest(Unstructured::new(&seed.bytes)).expect("a seed decodes")
}

/// The outcome of each register, modify and unregister of `seen`, in
/// order: `None` for success, else the error.
fn outcomes<D>(seen: &[Seen<D>]) -> Vec<Option<Error<SimError>>> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Table(r) => Some(r.as_ref().err().copied()),
            _ => None,
        })
        .collect()
}

/// How each successful select of `seen` reports, in order: `(ready,
/// descending, split, kernel)`.
fn selects<D>(seen: &[Seen<D>]) -> Vec<(usize, bool, bool, bool)> {
    seen.iter()
        .filter_map(|s| match *s {
            Seen::Select {
                ready,
                descending,
                split,
                kernel,
            } => Some((ready, descending, split, kernel)),
            _ => None,
        })
        .collect()
}

#[test]
fn key_map_seeds_do_what_the_readme_says() {
    use Error::{AlreadyRegistered, Backend, Full, InvalidEvents, InvalidFd, NotRegistered};
    let seeds = key_map_seeds();
    let walk = |i: usize| walk(&decode::<Vec<SimOp<u16>>>(&seeds[i]), key_map::CAPACITY);
    let limit = SIM_FD_LIMIT;
    let full = Some(Full { capacity: 8 });
    let injected = Some(Backend(SimError::Injected));

    let seen = walk(0);
    let errors: Vec<_> = outcomes(&seen).into_iter().flatten().collect();
    assert_eq!(
        errors,
        [
            InvalidEvents(0),
            InvalidEvents(4),
            InvalidFd(-1),
            InvalidFd(limit),
            AlreadyRegistered(limit - 1),
            InvalidEvents(7),
            NotRegistered(5),
            InvalidFd(-2),
            NotRegistered(limit + 1),
        ],
        "key_map/seed-1: {seen:?}"
    );

    let seen = walk(1);
    let mut want = vec![None; 8];
    want.extend([full, None, None, full]);
    assert_eq!(outcomes(&seen), want, "key_map/seed-2: {seen:?}");

    let seen = walk(2);
    assert_eq!(
        outcomes(&seen),
        [injected, None, injected, None, injected, injected],
        "key_map/seed-3: {seen:?}"
    );

    let seen = walk(3);
    let closed = Some(Backend(SimError::Closed(4)));
    assert_eq!(
        outcomes(&seen),
        [None, None, closed, None, None, None, injected, None],
        "key_map/seed-4: {seen:?}"
    );
}

#[test]
fn selector_sim_seeds_do_what_the_readme_says() {
    let seeds = selector_sim_seeds();
    let walk = |i: usize| {
        walk(
            &decode::<Vec<SimOp<u32>>>(&seeds[i]),
            selector_sim::CAPACITY,
        )
    };
    let ready = |seen: &[Seen<u32>]| -> Vec<usize> { selects(seen).iter().map(|s| s.0).collect() };

    // fd 4 (writable, watched for read) is never ready; fd 2's hang-up
    // clears before the second select.
    let seen = walk(0);
    assert_eq!(ready(&seen), [3, 2, 2], "selector_sim/seed-1: {seen:?}");

    // Seven fds ready for a `Ready` of three, in both orders, split and not.
    let seen = walk(1);
    let modes: BTreeSet<_> = selects(&seen).into_iter().collect();
    let want: BTreeSet<_> = [
        (7, false, false, false),
        (7, true, false, false),
        (7, true, true, false),
        (7, false, true, false),
    ]
    .into();
    assert_eq!(modes, want, "selector_sim/seed-2: {seen:?}");

    // The first select fails; fd 7 (never registered) and the closed fd 5
    // are not ready, until fd 5 is registered anew.
    let seen = walk(2);
    let injected = Some(Error::Backend(SimError::Injected));
    assert_eq!(
        outcomes(&seen),
        [None, None, injected, None, None, None],
        "selector_sim/seed-3: {seen:?}"
    );
    assert_eq!(
        seen.iter()
            .filter(|s| matches!(s, Seen::FailedSelect))
            .count(),
        1,
        "selector_sim/seed-3: {seen:?}"
    );
    assert_eq!(ready(&seen), [2, 1, 0, 1], "selector_sim/seed-3: {seen:?}");

    // The seventeenth register is `Full`; six fds ready, split.
    let seen = walk(3);
    let errors: Vec<_> = outcomes(&seen).into_iter().flatten().collect();
    assert_eq!(
        errors,
        [Error::Full { capacity: 16 }],
        "selector_sim/seed-4: {seen:?}"
    );
    assert!(
        selects(&seen)
            .iter()
            .all(|&(ready, _, split, _)| ready == 6 && split),
        "selector_sim/seed-4: {seen:?}"
    );

    // The seven under kernel batches, split and not, then without.
    let seen = walk(4);
    assert_eq!(
        selects(&seen),
        [
            (7, false, false, true),
            (7, false, true, true),
            (7, true, true, true),
            (7, true, true, false),
        ],
        "selector_sim/seed-5: {seen:?}"
    );
}

#[test]
fn pure_seeds_do_what_the_readme_says() {
    let seeds = pure_seeds();
    let timeout = |i: usize| {
        let input: Input = decode(&seeds[i]);
        Duration::new(input.secs.secs(), input.nanos % 1_000_000_000)
    };
    assert_eq!(timeout(0), Duration::from_nanos(1));
    assert_eq!(timeout(1), Duration::from_millis(i32::MAX as u64));
    assert_eq!(timeout(1).as_secs(), MILLIS_LIMIT_SECS);
    assert_eq!(
        timeout(2),
        Duration::from_millis(i32::MAX as u64) + Duration::from_nanos(1)
    );
    assert_eq!(timeout(3), Duration::new(i64::MAX as u64, 999_999_001));
    assert_eq!(timeout(4), Duration::MAX);
    assert_eq!(timeout(5), Duration::ZERO);
}

/// `fd` above reaches the fds the seeds name, edge ones included.
#[test]
fn every_edge_fd_has_an_input_byte() {
    for f in EDGE_FDS {
        assert_eq!(fd(f).fd(), f);
    }
}
