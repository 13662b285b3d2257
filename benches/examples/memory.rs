//! Resident memory per selector: opens `SELECTORS2_MEM_COUNT` (default 32)
//! selectors of each kind with `new()` (the default capacity, `usize`
//! data), registers the same 100 socketpair ends in each and selects once
//! (every end is writable), and prints how much the process's resident set
//! grew per selector (from `/proc/self/statm`, Linux). The target for
//! `DefaultSelector` is at most 32 KiB: the table is allocated zeroed, so
//! only the pages its keys use become resident.
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

use selectors2::{DefaultSelector, EVENT_WRITE, PollSelector, Ready, SelectSelector};

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

/// Socketpair ends each selector holds.
const KEYS: usize = 100;

fn measure<S>(
    name: &str,
    count: usize,
    ends: &[UnixStream],
    open: impl Fn() -> S,
    register_and_select: impl Fn(&mut S, &[UnixStream]),
) {
    let before = rss();
    let mut all = Vec::with_capacity(count);
    for _ in 0..count {
        let mut s = open();
        register_and_select(&mut s, ends);
        all.push(s);
    }
    let after = rss();
    let per = (after - before) / count;
    println!(
        "{name}: {per} bytes resident per selector ({count} selectors, {} keys each, one select)",
        ends.len()
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
        .unwrap_or(32);
    let ends: Vec<UnixStream> = (0..KEYS / 2)
        .flat_map(|_| {
            let (a, b) = UnixStream::pair().expect("socketpair");
            [a, b]
        })
        .collect();
    // One arm per kind: the selector types differ, the measurement does not.
    macro_rules! kind {
        ($ty:ident) => {
            measure(
                stringify!($ty),
                count,
                &ends,
                || $ty::<usize>::new().expect("open"),
                |s, ends| {
                    for (i, end) in ends.iter().enumerate() {
                        s.register(end, EVENT_WRITE, i).expect("register");
                    }
                    let mut ready: Ready<usize, 128> = Ready::new();
                    let n = s.select(&mut ready, Some(std::time::Duration::ZERO));
                    assert_eq!(n.expect("select"), ends.len());
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
