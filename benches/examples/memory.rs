//! Resident memory per selector: opens `SELECTORS2_MEM_COUNT` (default 64)
//! selectors of each kind at the default capacity (`usize` data), each
//! with one registered socket, and prints how much the process's resident
//! set grew per selector (from `/proc/self/statm`, Linux).
//!
//! Each kind is measured in a process of its own (this program runs itself
//! again with the kind's name): measured one after the other in one
//! process, a kind reuses the heap pages the kind before it freed, and its
//! growth reads far too low.
//!
//! ```text
//! cargo run --release -p selectors2-bench --example memory
//! ```

use std::os::unix::net::UnixStream;

use selectors2::{DefaultSelector, EVENT_READ, PollSelector, SelectSelector};

/// Resident bytes of this process.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("resident pages");
    pages * 4096
}

fn measure<S>(
    name: &str,
    count: usize,
    (a, _b): &(UnixStream, UnixStream),
    open: impl Fn() -> S,
    register: impl Fn(&mut S, &UnixStream),
) {
    let before = rss();
    let mut all = Vec::with_capacity(count);
    for _ in 0..count {
        let mut s = open();
        register(&mut s, a);
        all.push(s);
    }
    let after = rss();
    println!(
        "{name}: {} bytes resident per selector ({count} selectors)",
        (after - before) / count
    );
    drop(all);
}

/// The kinds measured, in the order printed.
const KINDS: [&str; 3] = ["DefaultSelector", "PollSelector", "SelectSelector"];

fn main() {
    let Some(kind) = std::env::args().nth(1) else {
        // One process per kind: nothing freed by one kind is reused by the next.
        let me = std::env::current_exe().expect("this program's path");
        for kind in KINDS {
            let status = std::process::Command::new(&me)
                .arg(kind)
                .status()
                .expect("run a measurement");
            assert!(status.success(), "measuring {kind} failed: {status}");
        }
        return;
    };
    let count: usize = std::env::var("SELECTORS2_MEM_COUNT")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(64);
    let pair = UnixStream::pair().expect("socketpair");
    // One arm per kind: the selector types differ, the measurement does not.
    macro_rules! kind {
        ($ty:ident) => {
            measure(
                stringify!($ty),
                count,
                &pair,
                || $ty::<usize>::new().expect("open"),
                |s, a| {
                    s.register(a, EVENT_READ, 0).expect("register");
                },
            )
        };
    }
    match kind.as_str() {
        "DefaultSelector" => kind!(DefaultSelector),
        "PollSelector" => kind!(PollSelector),
        "SelectSelector" => kind!(SelectSelector),
        other => panic!("unknown kind {other}: one of {KINDS:?}"),
    }
}
