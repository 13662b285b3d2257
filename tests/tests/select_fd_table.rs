//! `SelectSelector` and a registered number beyond the process's fd table.
//!
//! Linux's `select(2)` cuts `nfds` down to the size of the process's fd
//! table and leaves the words of the sets above it as they were: the
//! interest bit of a number never opened stays set, and a backend that
//! read every bit reported that number ready whenever anything else was
//! (a fresh user's finding). Alone in its own test binary, so that the
//! process's fd table is small (64 or 256 slots) and the case arises.
#![cfg(target_os = "linux")]

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use selectors2::{EVENT_READ, EVENT_WRITE, Events, Ready, SelectSelector};

/// The size of this process's fd table (`FDSize` in /proc/self/status).
fn fd_table_size() -> i32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("FDSize:")).unwrap();
    line["FDSize:".len()..].trim().parse().unwrap()
}

#[test]
fn a_number_beyond_the_fd_table_is_never_reported() {
    let (a, _b) = UnixStream::pair().unwrap();
    let beyond = fd_table_size();
    // FD_SETSIZE is 1024: a table as large leaves no number to try.
    assert!(
        beyond < 1024,
        "the fd table of this test process has {beyond} slots: nothing beyond it fits an fd_set"
    );
    for interest in [EVENT_READ, EVENT_WRITE, EVENT_READ | EVENT_WRITE] {
        let mut sel = SelectSelector::<&str>::new().unwrap();
        sel.register(&a, EVENT_WRITE, "socket").unwrap();
        sel.register(beyond, interest, "never opened").unwrap();
        let mut ready: Ready<&str, 8> = Ready::new();
        let n = sel.select(&mut ready, Some(Duration::ZERO)).unwrap();
        let got: Vec<(i32, Events, &str)> =
            ready.iter().map(|(k, ev)| (k.fd, ev, k.data)).collect();
        assert_eq!(
            n, 1,
            "{got:?} for a number beyond the table watched for {interest:?}"
        );
        assert_eq!(got, [(a.as_raw_fd(), EVENT_WRITE, "socket")]);
        // Alone, it makes a select that times out, as before.
        sel.unregister(&a).unwrap();
        let n = sel
            .select(&mut ready, Some(Duration::from_millis(1)))
            .unwrap();
        assert_eq!(n, 0);
    }
}
