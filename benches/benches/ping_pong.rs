//! Ping-pong: N registered sockets; each iteration writes one byte into the
//! peer of one of them (in turn), selects once, and reads the byte. N = 1,
//! 100 and 10,000.
//!
//! Contenders, all in one run (see `common/mod.rs` for the details):
//! raw epoll through rustix (inline system calls: the floor), raw epoll
//! through glibc, selectors2's `EpollSelector`, `PollSelector`,
//! `SelectSelector` and `DefaultSelector`, mio 1.x and polling 3.x. mio is
//! edge-triggered, so its loop drains the ready socket until `WouldBlock`
//! (two reads per iteration: that is what mio's users write); polling runs
//! in level mode. Everyone else is level-triggered and reads once.
//! `SelectSelector` sits out N = 10,000 (fds beyond `FD_SETSIZE`).
//!
//! `cargo bench -p selectors2-bench --bench ping_pong`; `SELECTORS2_BENCH_QUICK=1`
//! for the quick mode.

#[macro_use]
mod common;

use common::{Contender, Sockets, consume, fit, write1};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, criterion_group, criterion_main};

fn one<C: Contender>(g: &mut BenchmarkGroup<'_, WallTime>, s: &Sockets) {
    let n = s.len();
    let Some(mut c) = C::with(s, &format!("ping_pong/{n}")) else {
        return;
    };
    let mut next = 0;
    g.bench_with_input(BenchmarkId::new(C::NAME, n), &n, |b, _| {
        b.iter(|| {
            let i = next;
            next = if i + 1 == n { 0 } else { i + 1 };
            write1(s.peer(i));
            let mut seen = 0;
            let got = c
                .wait(|token| {
                    seen += 1;
                    consume(s.fd(token), C::EDGE);
                })
                .expect("wait");
            assert!(
                got == 1 && seen == 1,
                "{}: {got} events, expected 1",
                C::NAME
            );
        })
    });
}

fn ping_pong(c: &mut Criterion) {
    let mut g = c.benchmark_group("ping_pong");
    for want in [1, 100, 10_000] {
        let n = fit(want, "ping_pong");
        let s = Sockets::new(n);
        each_contender!(one(&mut g, &s));
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = ping_pong
}
criterion_main!(benches);
