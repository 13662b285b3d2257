//! Not a benchmark: a fixed number of iterations of one scenario for one
//! contender, without criterion, for instruction counts under callgrind
//! (`perf` is often unavailable in VMs; callgrind counts user-space
//! instructions exactly, run after run). Does nothing unless
//! `SELECTORS2_PROFILE` is set, so `cargo bench` passes over it.
//!
//! ```text
//! cargo bench -p selectors2-bench --bench profile --no-run   # prints the binary's path
//! SELECTORS2_PROFILE="ping_pong 1 s2_epoll 100000" \
//!     valgrind --tool=callgrind target/release/deps/profile-HASH
//! ```
//!
//! `SELECTORS2_PROFILE` is "SCENARIO N CONTENDER ITERATIONS", SCENARIO one of
//! `ping_pong`, `modify`, `reg_unreg`, `level_scan` (16 ready of N),
//! `scaling` (1 ready of N); CONTENDER a name from `common/mod.rs`. Two runs
//! with different ITERATIONS give the instructions per iteration by
//! difference, free of set-up costs. The contenders are driven exactly as
//! in the criterion benches. Prints the wall-clock time per iteration too
//! (set-up included), for quick A/B runs outside criterion
//! (`benches/interleaved.sh` runs those). `benches/README.md` keeps the
//! counts, with the date they were taken.

#[macro_use]
mod common;

use std::hint::black_box;
use std::time::Instant;

use common::{Contender, Sockets, consume, write1};

fn run<C: Contender>(contender: &str, scenario: &str, n: usize, iters: usize) {
    if C::NAME != contender {
        return;
    }
    let start = Instant::now();
    match scenario {
        "ping_pong" => {
            let s = Sockets::new(n);
            let mut c = C::with(&s, scenario).expect("set-up");
            for k in 0..iters {
                let i = k % n;
                write1(s.peer(i));
                let got = c.wait(|token| consume(s.fd(token), C::EDGE)).expect("wait");
                assert_eq!(got, 1);
            }
        }
        "modify" => {
            let s = Sockets::new(1);
            let mut c = C::with(&s, scenario).expect("set-up");
            for k in 0..iters {
                c.set_write(s.fd(0), 0, k % 2 == 0).expect("modify");
            }
        }
        "reg_unreg" => {
            let s = Sockets::new(1);
            let mut c = C::open().expect("open");
            for _ in 0..iters {
                c.add(s.fd(0), 0).expect("register");
                c.delete(s.fd(0)).expect("unregister");
            }
        }
        "level_scan" | "scaling" if C::EDGE => {
            eprintln!(
                "{contender} is edge-triggered: it reports a socket that stays ready once, so it sits out {scenario}"
            );
            return;
        }
        "level_scan" | "scaling" => {
            let ready = if scenario == "level_scan" { 16 } else { 1 };
            let s = Sockets::with_ready(n, ready);
            let mut c = C::with(&s, scenario).expect("set-up");
            for _ in 0..iters {
                assert_eq!(black_box(c.wait(|_| {}).expect("wait")), ready);
            }
        }
        _ => panic!("unknown scenario {scenario}"),
    }
    // Includes the set-up: use enough iterations, or compare two runs.
    let ns = start.elapsed().as_nanos() as f64 / iters as f64;
    println!("{scenario} {n} {contender}: {ns:.1} ns/iteration (wall clock)");
}

fn main() {
    let Ok(spec) = std::env::var("SELECTORS2_PROFILE") else {
        return;
    };
    let args: Vec<&str> = spec.split_whitespace().collect();
    let [scenario, n, contender, iters] = args[..] else {
        panic!("SELECTORS2_PROFILE must be \"SCENARIO N CONTENDER ITERATIONS\", not {spec:?}");
    };
    let n: usize = n.parse().expect("N");
    let iters: usize = iters.parse().expect("ITERATIONS");
    common::fit(n, "profile");
    each_contender!(run(contender, scenario, n, iters));
}
