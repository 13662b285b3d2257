//! `backends_agree`: one operation sequence on real socket pairs and pipes,
//! watched by epoll, poll, select and `DefaultSelector` side by side.
//!
//! The input decodes straight into the conformance suite's own steps
//! ([`Op`], which derives `Arbitrary` with that crate's `arbitrary`
//! feature) and runs through its differential machinery
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

use selectors2_tests::differential;
pub use selectors2_tests::differential::Op;

/// At most this many operations of an input run: longer sequences add
/// little and slow every execution down.
pub const MAX_OPS: usize = 64;

/// Runs the first [`MAX_OPS`] of `ops` on every backend this host has and
/// panics at the first disagreement.
pub fn run(ops: &[Op]) {
    let ops = &ops[..ops.len().min(MAX_OPS)];
    let mut selectors = differential::all_backends();
    if let Err((step, what)) = differential::run_ops(ops, &mut selectors) {
        panic!("backends disagree at step {step} of {ops:?}: {what}");
    }
}
