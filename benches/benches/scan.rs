//! Select cost against the number of registered sockets, level-triggered.
//!
//! * `level_scan`: N registered (N = 100 and 10,000), 16 of them kept
//!   readable (never read), one select returning the 16 per iteration;
//! * `scaling`: 1 kept readable out of N = 10, 100, 1,000 and 10,000
//!   registered, one select returning it per iteration. epoll's cost should
//!   not depend on N; poll's and select's grows linearly (the kernel scans
//!   every fd), and nothing of theirs should be rebuilt per call.
//!
//! Contenders (see `common/mod.rs`): raw epoll through rustix (inline
//! system calls: the floor) and through glibc, selectors2's
//! `EpollSelector`, `PollSelector`, `SelectSelector` and `DefaultSelector`,
//! and polling 3.x in level mode. mio sits out: it is edge-triggered only,
//! so a socket that stays readable is reported once, never on the next
//! select (its ping-pong numbers show its select cost at each N).
//! `SelectSelector` sits out N = 10,000 (fds beyond `FD_SETSIZE`).
//!
//! `cargo bench -p selectors2-bench --bench scan`; `SELECTORS2_BENCH_QUICK=1` for
//! the quick mode.

#[macro_use]
mod common;

use common::{Contender, Sockets, fit};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, criterion_group, criterion_main};

fn one<C: Contender>(g: &mut BenchmarkGroup<'_, WallTime>, s: &Sockets, group: &str, ready: usize) {
    if C::EDGE {
        return;
    }
    let n = s.len();
    let Some(mut c) = C::with(s, &format!("{group}/{n}")) else {
        return;
    };
    g.bench_with_input(BenchmarkId::new(C::NAME, n), &n, |b, _| {
        b.iter(|| {
            let got = c.wait(|_| {}).expect("wait");
            assert_eq!(got, ready, "{}", C::NAME);
        })
    });
}

fn level_scan(c: &mut Criterion) {
    let mut g = c.benchmark_group("level_scan");
    for want in [100, 10_000] {
        let s = Sockets::with_ready(fit(want, "level_scan"), 16);
        each_contender!(one(&mut g, &s, "level_scan", 16));
    }
    g.finish();
}

fn scaling(c: &mut Criterion) {
    let mut g = c.benchmark_group("scaling");
    for want in [10, 100, 1_000, 10_000] {
        let s = Sockets::with_ready(fit(want, "scaling"), 1);
        each_contender!(one(&mut g, &s, "scaling", 1));
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = level_scan, scaling
}
criterion_main!(benches);
