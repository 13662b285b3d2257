//! Growth: the time per `register` into a selector made with `new()`, which
//! grows its table as it fills (doubling, one allocation per step), against
//! registering the same fds into one made with `with_capacity(n)`, which
//! never grows. Both run in this process, interleaved, several rounds;
//! medians are printed with their ratio (the target: at most 1.5x).
//!
//! Two rows:
//! * `DefaultSelector` (epoll here) over as many real fds as the fd limit
//!   allows, up to 100,000 (eventfds, one open file each: epoll's cost to
//!   add an fd grows with the fds already watching the same file, so dups
//!   of one socket would measure that instead; the soft limit is raised to
//!   the hard one): what a server that grows meets, system calls included;
//! * `PollSelector` over 100,000 fd numbers that need not be open (poll
//!   makes no system call at `register`): the table's own cost, where
//!   growth weighs most.
//!
//! ```text
//! cargo run --release -p selectors2-bench --example growth
//! ```

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use selectors2::sys::OsBackend;
use selectors2::{EVENT_READ, RawFd, Selector};

const WANT: usize = 100_000;
const ROUNDS: usize = 7;

/// Raises the soft fd limit to the hard one; returns the soft limit now.
fn raise_fd_limit() -> usize {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    lim.current = lim.maximum;
    let _ = setrlimit(Resource::Nofile, lim);
    getrlimit(Resource::Nofile)
        .current
        .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX))
}

/// The time to register every fd of `fds` into a fresh selector `open`
/// makes (the selector is dropped outside the timing).
fn time_registers<B: OsBackend>(fds: &[RawFd], open: impl Fn() -> Selector<B, usize>) -> Duration {
    let mut sel = open();
    let start = Instant::now();
    for (i, &fd) in fds.iter().enumerate() {
        sel.register(fd, EVENT_READ, i).expect("register");
    }
    let took = start.elapsed();
    assert_eq!(sel.len(), fds.len());
    took
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn row<B: OsBackend>(name: &str, fds: &[RawFd]) {
    let n = fds.len();
    let (mut grown, mut reserved) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        grown.push(time_registers(fds, || {
            Selector::<B, usize>::new().expect("open")
        }));
        reserved.push(time_registers(fds, || {
            Selector::<B, usize>::with_capacity(n).expect("open")
        }));
    }
    let (g, r) = (median(grown), median(reserved));
    let per = |d: Duration| d.as_nanos() as f64 / n as f64;
    println!(
        "{name}: {n} registers, new() {:.1} ns each, with_capacity({n}) {:.1} ns each: {:.2}x",
        per(g),
        per(r),
        per(g) / per(r)
    );
}

fn main() {
    let limit = raise_fd_limit();
    let real = WANT.min(limit.saturating_sub(256));
    let files: Vec<OwnedFd> = (0..real)
        .map_while(|_| rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).ok())
        .collect();
    let fds: Vec<RawFd> = files.iter().map(|d| d.as_raw_fd()).collect();
    if fds.len() < WANT {
        println!(
            "(the fd limit allows {} fds here, not {WANT}: the DefaultSelector row uses those)",
            fds.len()
        );
    }
    row::<selectors2::sys::Auto>("DefaultSelector", &fds);
    let numbers: Vec<RawFd> = (0..WANT as RawFd).map(|i| i + 1_000_000).collect();
    row::<selectors2::sys::Poll>("PollSelector (fd numbers, no system call)", &numbers);
}
