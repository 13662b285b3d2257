//! `backends_agree`: one operation sequence on real socket pairs and pipes,
//! watched by epoll, poll, select and `DefaultSelector` side by side.
//!
//! The sequence runs through the conformance suite's differential machinery
//! (`selectors2_tests::differential::run_ops`): every `register`, `modify`
//! and `unregister` result (the key, or the exact error) and every
//! zero-timeout select's `fd -> (events, data)` set must be the same on each
//! backend. The first disagreement panics with the step and what each side
//! said.
//!
//! Each input gets fresh selectors and fresh sources (5 socket pairs and 2
//! pipes), all closed when it ends: nothing carries over between inputs
//! (`tests/no_fd_leak.rs` checks). No step can raise `SIGPIPE`, which
//! libFuzzer's C `main` leaves fatal: std writes to sockets with
//! `MSG_NOSIGNAL` (a closed peer is `EPIPE`), and no step closes a pipe's
//! read end.

use arbitrary::Arbitrary;
use selectors2_tests::differential::{self, Op};

use crate::input::EventsIn;

/// At most this many operations of an input run: longer sequences add
/// little and slow every execution down.
pub const MAX_OPS: usize = 64;

/// One step: [`Op`], mirrored so that it can derive `Arbitrary`. `src`
/// picks a source modulo `differential::SOURCES` (sockets 0-4, a pipe's
/// read end 5, another pipe's write end 6).
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpIn {
    /// `register` on every selector.
    Register {
        /// The source.
        src: u8,
        /// The interest (invalid masks included).
        events: EventsIn,
        /// The data.
        data: u16,
    },
    /// `modify` on every selector.
    Modify {
        /// The source.
        src: u8,
        /// The new interest (invalid masks included).
        events: EventsIn,
        /// The new data.
        data: u16,
    },
    /// `unregister` on every selector.
    Unregister {
        /// The source.
        src: u8,
    },
    /// A byte from the far side: readable.
    Poke {
        /// The source.
        src: u8,
    },
    /// Read everything pending.
    Read {
        /// The source.
        src: u8,
    },
    /// Write until the watched fd is no longer writable.
    Fill {
        /// The source.
        src: u8,
    },
    /// Drain a socket's far side: writable again.
    DrainPeer {
        /// The source.
        src: u8,
    },
    /// Close a socket's far side: hang-up.
    ClosePeer {
        /// The source.
        src: u8,
    },
    /// Close the watched fd itself without unregistering it.
    Close {
        /// The source.
        src: u8,
    },
    /// A zero-timeout select on every selector.
    Select,
}

impl From<OpIn> for Op {
    fn from(op: OpIn) -> Op {
        match op {
            OpIn::Register { src, events, data } => Op::Register {
                src,
                bits: events.events().bits(),
                data,
            },
            OpIn::Modify { src, events, data } => Op::Modify {
                src,
                bits: events.events().bits(),
                data,
            },
            OpIn::Unregister { src } => Op::Unregister { src },
            OpIn::Poke { src } => Op::Poke { src },
            OpIn::Read { src } => Op::Read { src },
            OpIn::Fill { src } => Op::Fill { src },
            OpIn::DrainPeer { src } => Op::DrainPeer { src },
            OpIn::ClosePeer { src } => Op::ClosePeer { src },
            OpIn::Close { src } => Op::Close { src },
            OpIn::Select => Op::Select,
        }
    }
}

/// Runs the first [`MAX_OPS`] of `ops` on every backend this host has and
/// panics at the first disagreement.
pub fn run(ops: &[OpIn]) {
    let ops: Vec<Op> = ops.iter().take(MAX_OPS).map(|&op| op.into()).collect();
    let mut selectors = differential::all_backends();
    if let Err((step, what)) = differential::run_ops(&ops, &mut selectors) {
        panic!("backends disagree at step {step} of {ops:?}: {what}");
    }
}
