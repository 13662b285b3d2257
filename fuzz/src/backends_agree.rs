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
///
/// It holds the suite's fd lock alone ([`many_fds_alone`]) while it runs:
/// an [`Op::Close`] frees a registered number, and a file another thread
/// opened under it meanwhile would be reported by poll and select (which
/// watch numbers) and not by epoll (which watches files). libFuzzer runs
/// one input at a time; the replay tests (`src/replay.rs`) run beside each
/// other and take [`low_fds`](selectors2_tests::low_fds) for their own
/// files. (CI once saw epoll refuse `unregister` of such a number with
/// `EPERM`, a library fault since fixed: the conformance case
/// `unregister_after_fd_reuse_by_an_unwatchable_file_succeeds` keeps it
/// fixed, and this lock keeps the comparison about the library.)
///
/// [`many_fds_alone`]: selectors2_tests::many_fds_alone
pub fn run(ops: &[Op]) {
    let _alone = selectors2_tests::many_fds_alone();
    let ops = &ops[..ops.len().min(MAX_OPS)];
    let mut selectors = differential::all_backends();
    if let Err((step, what)) = differential::run_ops(ops, &mut selectors) {
        panic!("backends disagree at step {step} of {ops:?}: {what}");
    }
}
