//! Differential testing: the same seeded random sequence of register,
//! modify, unregister, write, read and select operations on real sockets
//! and pipes, applied to epoll, poll and select side by side (on Windows:
//! WSAPoll and select, on loopback TCP pairs only). Every result (keys,
//! exact errors) and every select's `(fd, events)` set must be the same on
//! each.

use std::collections::BTreeMap;
use std::io::{Read, Write};
#[cfg(unix)]
use std::os::fd::OwnedFd;
use std::time::Duration;

use selectors2::sys::OsBackend;
use selectors2::{Error, Events, RawFd, Ready, Selector};

use crate::{AsRawFd, Stream, pair};

/// xorshift64*: small, seeded, good enough to pick operations.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// The next number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// One watched fd and the handle that pokes or drains it from the far side.
enum Source {
    /// A socket (registered) and its peer (`None` once closed: hang-up).
    Socket(Stream, Option<Stream>),
    /// A pipe's read end (registered) and write end.
    #[cfg(unix)]
    PipeReader(OwnedFd, OwnedFd),
    /// A pipe's write end (registered) and read end.
    #[cfg(unix)]
    PipeWriter(OwnedFd, OwnedFd),
    /// The watched fd was closed while registered ([`Op::Close`]): its
    /// number, free now, and nothing to poke.
    Closed(RawFd),
}

impl Source {
    fn fd(&self) -> RawFd {
        match self {
            Source::Socket(a, _) => a.as_raw_fd(),
            #[cfg(unix)]
            Source::PipeReader(r, _) => r.as_raw_fd(),
            #[cfg(unix)]
            Source::PipeWriter(w, _) => w.as_raw_fd(),
            Source::Closed(fd) => *fd,
        }
    }

    /// Closes the watched fd, registered or not (the far side stays open).
    fn close(&mut self) {
        *self = Source::Closed(self.fd());
    }

    fn is_closed(&self) -> bool {
        matches!(self, Source::Closed(_))
    }

    /// Makes the watched fd readable (a byte from the far side).
    fn poke(&mut self) {
        match self {
            Source::Socket(_, Some(b)) => drop(b.write(b"x")),
            #[cfg(unix)]
            Source::PipeReader(_, w) => drop(file(w).write(b"x")),
            _ => {}
        }
    }

    /// Reads what the watched fd has pending.
    fn read(&mut self) {
        let mut buf = [0u8; 65536];
        match self {
            Source::Socket(a, _) => while matches!(a.read(&mut buf), Ok(n) if n > 0) {},
            #[cfg(unix)]
            Source::PipeReader(r, _) => while matches!(file(r).read(&mut buf), Ok(n) if n > 0) {},
            // Drain the far side: the writer becomes writable again.
            #[cfg(unix)]
            Source::PipeWriter(_, r) => while matches!(file(r).read(&mut buf), Ok(n) if n > 0) {},
            Source::Closed(_) => {}
        }
    }

    /// Writes from the watched fd until it would block (not writable).
    fn fill(&mut self) {
        let chunk = [0u8; 65536];
        match self {
            Source::Socket(a, _) => while matches!(a.write(&chunk), Ok(n) if n > 0) {},
            #[cfg(unix)]
            Source::PipeWriter(w, _) => while matches!(file(w).write(&chunk), Ok(n) if n > 0) {},
            #[cfg(unix)]
            Source::PipeReader(..) => {}
            Source::Closed(_) => {}
        }
    }

    /// Drains the far side of a socket (it becomes writable again).
    fn drain_peer(&mut self) {
        let mut buf = [0u8; 65536];
        if let Source::Socket(_, Some(b)) = self {
            while matches!(b.read(&mut buf), Ok(n) if n > 0) {}
        }
    }

    /// Closes a socket's peer: hang-up.
    #[allow(irrefutable_let_patterns)] // only sockets on Windows
    fn close_peer(&mut self) {
        if let Source::Socket(_, b) = self {
            *b = None;
        }
    }
}

/// A `File` view of an fd, not owning it.
#[cfg(unix)]
fn file(fd: &OwnedFd) -> std::mem::ManuallyDrop<std::fs::File> {
    use std::os::fd::FromRawFd;
    // SAFETY: the File is never dropped (ManuallyDrop), so the fd stays
    // owned by `fd`, which outlives this borrow's use.
    std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd.as_raw_fd()) })
}

/// A comparable form of a result: the key's fd, event bits and data, or the error.
pub type Outcome = Result<(RawFd, u8, u64), String>;

fn outcome(r: Result<&selectors2::SelectorKey<u64>, Error>) -> Outcome {
    r.map(|k| (k.fd, k.events.bits(), k.data)).map_err(describe)
}

fn describe(e: Error) -> String {
    match e {
        Error::Io(io) => format!("io {:?}", io.raw_os_error()),
        other => other.to_string(),
    }
}

/// A selector of any backend, behind one interface for the sequence.
pub trait Any {
    /// `Selector::register`, as a comparable outcome.
    fn register(&mut self, fd: RawFd, ev: Events, data: u64) -> Outcome;
    /// `Selector::modify`, as a comparable outcome.
    fn modify(&mut self, fd: RawFd, ev: Events, data: u64) -> Outcome;
    /// `Selector::unregister`, as a comparable outcome.
    fn unregister(&mut self, fd: RawFd) -> Outcome;
    /// One zero-timeout select: `fd → (events, data)`.
    fn ready(&mut self) -> Result<BTreeMap<RawFd, (u8, u64)>, String>;
    /// The key of `fd`, if registered: `(events, data)`.
    fn key(&self, fd: RawFd) -> Option<(u8, u64)>;
    /// The mechanism.
    fn kind(&self) -> selectors2::BackendKind;
    /// The backend's name.
    fn name(&self) -> String;
}

impl<B: OsBackend> Any for Selector<B, u64> {
    fn register(&mut self, fd: RawFd, ev: Events, data: u64) -> Outcome {
        outcome(Selector::register(self, fd, ev, data))
    }
    fn modify(&mut self, fd: RawFd, ev: Events, data: u64) -> Outcome {
        outcome(Selector::modify(self, fd, ev, data))
    }
    fn unregister(&mut self, fd: RawFd) -> Outcome {
        Selector::unregister(self, fd)
            .map(|k| (k.fd, k.events.bits(), k.data))
            .map_err(describe)
    }
    fn ready(&mut self) -> Result<BTreeMap<RawFd, (u8, u64)>, String> {
        // Smaller than the sources, so the fairness path runs too: compare
        // sets over enough calls to cover everything.
        let mut ready: Ready<u64, 16> = Ready::new();
        self.select(&mut ready, Some(Duration::ZERO))
            .map_err(describe)?;
        let mut set = BTreeMap::new();
        for (k, e) in &ready {
            assert!(
                set.insert(k.fd, (e.bits(), k.data)).is_none(),
                "fd reported twice"
            );
        }
        Ok(set)
    }
    fn key(&self, fd: RawFd) -> Option<(u8, u64)> {
        self.get_key(fd).map(|k| (k.events.bits(), k.data))
    }
    fn kind(&self) -> selectors2::BackendKind {
        self.backend_kind()
    }
    fn name(&self) -> String {
        self.backend_kind().to_string()
    }
}

/// The interest bits a step passes to `register` or `modify`: any `u8`, so
/// that invalid masks (0, 4, 255, ...) reach every backend, which must all
/// refuse them alike (`Events::from_bits_retain`).
///
/// With the `arbitrary` feature (the fuzz crate's targets), a generated
/// value is a valid mask three times in four (`READ`, `WRITE` or both,
/// from one byte below 192) and otherwise any of the 256 values (from the
/// next byte): uniform bits would be valid 3 times in 256, and hardly any
/// `register` would succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interest(pub u8);

impl Interest {
    /// The mask, unknown bits kept.
    pub fn events(self) -> Events {
        Events::from_bits_retain(self.0)
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Interest {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let pick = u8::arbitrary(u)?;
        if pick < 192 {
            Ok(Interest(pick % 3 + 1))
        } else {
            Ok(Interest(u8::arbitrary(u)?))
        }
    }

    fn size_hint(_depth: usize) -> (usize, Option<usize>) {
        (1, Some(2))
    }
}

/// One step of a differential sequence, on source `src`, taken modulo
/// [`SOURCES`] (sockets 0-4, a pipe's read end 5, another pipe's write end
/// 6; on Windows, sockets 0-6), so that any value names one.
///
/// With the `arbitrary` feature it derives `arbitrary::Arbitrary`: the
/// fuzz crate's `backends_agree` decodes its input into these steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[allow(missing_docs)] // the fields are named in the enum's doc
pub enum Op {
    /// `register(fd, events, data)` on every selector.
    Register {
        src: u8,
        events: Interest,
        data: u16,
    },
    /// `modify(fd, events, data)` on every selector.
    Modify {
        src: u8,
        events: Interest,
        data: u16,
    },
    /// `unregister(fd)` on every selector.
    Unregister { src: u8 },
    /// A byte from the far side: the watched fd becomes readable.
    Poke { src: u8 },
    /// Read everything pending.
    Read { src: u8 },
    /// Write until the watched fd is no longer writable.
    Fill { src: u8 },
    /// Drain the far side: writable again.
    DrainPeer { src: u8 },
    /// Close a socket's peer: hang-up.
    ClosePeer { src: u8 },
    /// Close the watched fd itself, registered or not, without
    /// unregistering it: the other keys must be reported as
    /// before. Later `register` and `modify` of it are skipped (epoll
    /// refuses a closed fd at once, poll and select only at the next wait:
    /// both are right); `unregister` must succeed on every backend.
    Close { src: u8 },
    /// A zero-timeout select on every selector.
    Select,
}

/// The operations of seeded sequence `seed`: mostly valid masks, some
/// invalid (0, 4), and a select about every fifth step.
pub fn ops_for_seed(seed: u64, len: usize) -> Vec<Op> {
    let mut rng = Rng::new(seed);
    (0..len)
        .map(|_| {
            let src = rng.below(SOURCES as u64) as u8;
            let events = Interest([1, 2, 3, 1, 2, 3, 0, 4][rng.below(8) as usize]);
            let data = rng.below(1000) as u16;
            match rng.below(100) {
                0..=19 => Op::Register { src, events, data },
                20..=34 => Op::Modify { src, events, data },
                35..=44 => Op::Unregister { src },
                45..=59 => Op::Poke { src },
                60..=69 => Op::Read { src },
                70..=74 => Op::Fill { src },
                75..=79 => Op::DrainPeer { src },
                80 => Op::ClosePeer { src },
                81 => Op::Close { src },
                _ => Op::Select,
            }
        })
        .collect()
}

/// How many sources a sequence watches: 5 sockets, a pipe's read end and
/// another pipe's write end (on Windows, 7 sockets).
pub const SOURCES: usize = 7;

fn sources() -> Vec<Source> {
    #[cfg(unix)]
    const SOCKETS: usize = 5;
    #[cfg(windows)]
    const SOCKETS: usize = SOURCES;
    #[allow(unused_mut)] // no pipes on Windows
    let mut sources: Vec<Source> = (0..SOCKETS)
        .map(|_| {
            let (a, b) = pair();
            Source::Socket(a, Some(b))
        })
        .collect();
    #[cfg(unix)]
    {
        let (r, w) = crate::pipe();
        sources.push(Source::PipeReader(r, w));
        let (r, w) = crate::pipe();
        sources.push(Source::PipeWriter(w, r));
    }
    sources
}

/// Applies `ops` to fresh sources watched by every selector given, and
/// returns the first disagreement: `(step, description)`. Every outcome
/// (keys, exact errors) and every ready set must be equal.
pub fn run_ops(ops: &[Op], selectors: &mut [Box<dyn Any>]) -> Result<(), (usize, String)> {
    let mut sources = sources();
    for (step, &op) in ops.iter().enumerate() {
        let fd_of = |src: u8, sources: &[Source]| sources[src as usize % SOURCES].fd();
        let results: Vec<String> = match op {
            Op::Register { src, .. } | Op::Modify { src, .. }
                if sources[src as usize % SOURCES].is_closed() =>
            {
                continue;
            }
            Op::Register { src, events, data } => {
                let fd = fd_of(src, &sources);
                let ev = events.events();
                selectors
                    .iter_mut()
                    .map(|s| format!("{:?}", s.register(fd, ev, data.into())))
                    .collect()
            }
            Op::Modify { src, events, data } => {
                let fd = fd_of(src, &sources);
                let ev = events.events();
                selectors
                    .iter_mut()
                    .map(|s| format!("{:?}", s.modify(fd, ev, data.into())))
                    .collect()
            }
            Op::Unregister { src } => {
                let fd = fd_of(src, &sources);
                selectors
                    .iter_mut()
                    .map(|s| format!("{:?}", s.unregister(fd)))
                    .collect()
            }
            Op::Poke { src } => {
                sources[src as usize % SOURCES].poke();
                continue;
            }
            Op::Read { src } => {
                sources[src as usize % SOURCES].read();
                continue;
            }
            Op::Fill { src } => {
                sources[src as usize % SOURCES].fill();
                continue;
            }
            Op::DrainPeer { src } => {
                sources[src as usize % SOURCES].drain_peer();
                continue;
            }
            Op::ClosePeer { src } => {
                sources[src as usize % SOURCES].close_peer();
                continue;
            }
            Op::Close { src } => {
                sources[src as usize % SOURCES].close();
                continue;
            }
            Op::Select => {
                let closed: Vec<RawFd> = sources
                    .iter()
                    .filter(|s| s.is_closed())
                    .map(Source::fd)
                    .collect();
                let mut results = Vec::new();
                for s in selectors.iter_mut() {
                    let set = s
                        .ready()
                        .map(|mut set| check_closed(&mut set, &closed, &**s).map(|()| set));
                    match set {
                        Ok(Err(what)) => return Err((step, what)),
                        other => {
                            results.push(format!("{:?}", other.map(|s| s.unwrap_or_default())))
                        }
                    }
                }
                results
            }
        };
        for (s, r) in selectors.iter().zip(&results).skip(1) {
            if r != &results[0] {
                return Err((
                    step,
                    format!(
                        "{op:?}: {} says {r}, {} says {}",
                        s.name(),
                        selectors[0].name(),
                        results[0]
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Checks how `sel` reported the `closed` fds in `set`, then removes them,
/// so that the rest compares equal across backends. poll and select report
/// a closed, registered fd ready for its whole interest (`POLLNVAL`; READ
/// and WRITE, masked) until it is unregistered; epoll and kqueue forget a
/// closed fd, so never report it.
fn check_closed(
    set: &mut BTreeMap<RawFd, (u8, u64)>,
    closed: &[RawFd],
    sel: &dyn Any,
) -> Result<(), String> {
    use selectors2::BackendKind as K;
    for &fd in closed {
        let got = set.remove(&fd);
        let want = match sel.kind() {
            K::Poll | K::Select => sel.key(fd),
            _ => None,
        };
        if got != want {
            return Err(format!(
                "{} reported closed fd {fd} as {got:?}, expected {want:?}",
                sel.name()
            ));
        }
    }
    Ok(())
}

/// Runs seeded sequence `seed` of `len` operations on every backend given
/// and panics, naming the seed and step, at the first disagreement.
pub fn run_sequence(seed: u64, len: usize, selectors: &mut [Box<dyn Any>]) {
    if let Err((step, what)) = run_ops(&ops_for_seed(seed, len), selectors) {
        panic!("seed {seed} step {step}: {what}");
    }
}

/// Every backend this host has, fresh, each boxed behind [`Any`].
pub fn all_backends() -> Vec<Box<dyn Any>> {
    #[allow(unused_mut)] // epoll is added on Linux only
    let mut v: Vec<Box<dyn Any>> = vec![
        Box::new(Selector::<selectors2::sys::Poll, u64>::with_fixed_capacity(16).unwrap()),
        Box::new(Selector::<selectors2::sys::Select, u64>::with_fixed_capacity(16).unwrap()),
        Box::new(Selector::<selectors2::sys::Auto, u64>::with_fixed_capacity(16).unwrap()),
    ];
    #[cfg(has_epoll)]
    v.insert(
        0,
        Box::new(Selector::<selectors2::sys::Epoll, u64>::with_fixed_capacity(16).unwrap()),
    );
    v
}
