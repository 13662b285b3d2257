//! Registration churn: what an event loop pays to change its interest set.
//!
//! * `modify`: one registered socket whose interest flips between READ and
//!   READ|WRITE on every iteration (one `modify` each);
//! * `reg_unreg`: register one socket for READ, then unregister it.
//!
//! Contenders, all in one run (see `common/mod.rs`): raw epoll through
//! rustix (inline system calls: the floor) and through glibc, selectors2's
//! `EpollSelector`, `PollSelector`, `SelectSelector` and `DefaultSelector`,
//! mio 1.x (`reregister`/`register`+`deregister` of an edge-triggered
//! `SourceFd`, as its users do) and polling 3.x (`modify_with_mode` and
//! `add_with_mode`+`delete` in level mode). The poll and select backends
//! make no system call here: they only update their arrays, which is why
//! they are far below the floor.
//!
//! `cargo bench -p selectors2-bench --bench ctl`; `SELECTORS2_BENCH_QUICK=1` for
//! the quick mode.

#[macro_use]
mod common;

use common::{Contender, Sockets};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};

fn modify<C: Contender>(g: &mut BenchmarkGroup<'_, WallTime>, s: &Sockets) {
    let Some(mut c) = C::with(s, "modify") else {
        return;
    };
    let mut write = false;
    g.bench_function(C::NAME, |b| {
        b.iter(|| {
            write = !write;
            c.set_write(s.fd(0), 0, write).expect("modify");
        })
    });
}

fn reg_unreg<C: Contender>(g: &mut BenchmarkGroup<'_, WallTime>, s: &Sockets) {
    let Ok(mut c) = C::open() else { return };
    g.bench_function(C::NAME, |b| {
        b.iter(|| {
            c.add(s.fd(0), 0).expect("register");
            c.delete(s.fd(0)).expect("unregister");
        })
    });
}

fn ctl(c: &mut Criterion) {
    let s = Sockets::new(1);
    let mut g = c.benchmark_group("modify");
    each_contender!(modify(&mut g, &s));
    g.finish();
    let mut g = c.benchmark_group("reg_unreg");
    each_contender!(reg_unreg(&mut g, &s));
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = ctl
}
criterion_main!(benches);
