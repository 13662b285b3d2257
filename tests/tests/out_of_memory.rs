//! An allocation that fails is an error, never an abort: opening a
//! selector, and growing one (its key table and the mechanism's buffers:
//! epoll's events, poll's arrays). A fresh user's finding: the table was
//! allocated fallibly, the buffers were not, so the same call returned
//! `OutOfMemory` or killed the process depending on which came first.
//!
//! Alone in its own test binary: it lowers this process's address-space
//! limit (`RLIMIT_AS`) while it runs.
#![cfg(target_os = "linux")]

use std::io::ErrorKind;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use selectors2::sys::OsBackend;
use selectors2::{EVENT_READ, EpollSelector, Error, PollSelector, Ready, Selector};
use selectors2_core::{KeyMap, Slot};

/// This process's mapped address space, in bytes (`VmSize`).
fn vm_size() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmSize:")).unwrap();
    let kib: u64 = line["VmSize:".len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kib * 1024
}

/// Runs `f` with the address space limited to what is mapped now plus
/// `room` bytes, then lifts the limit again.
fn with_room<T>(room: u64, f: impl FnOnce() -> T) -> T {
    let old = getrlimit(Resource::As);
    let lower = Rlimit {
        current: Some(vm_size() + room),
        maximum: old.maximum,
    };
    setrlimit(Resource::As, lower).unwrap();
    let out = f();
    setrlimit(Resource::As, old).unwrap();
    out
}

fn is_oom<T>(r: std::io::Result<T>) -> bool {
    matches!(r, Err(e) if e.kind() == ErrorKind::OutOfMemory)
}

/// Under AddressSanitizer the process maps terabytes of shadow memory and
/// its allocator aborts on failure by design: nothing to learn there.
fn under_a_sanitizer() -> bool {
    vm_size() > 1 << 40
}

const MIB: u64 = 1 << 20;

#[test]
fn opening_or_growing_past_the_memory_there_is_fails_with_out_of_memory() {
    if under_a_sanitizer() {
        eprintln!("skipped: the address space is a sanitizer's");
        return;
    }
    // Opening: the mechanism's buffers for 2^28 keys (3 GiB of epoll
    // events, 2 GiB of pollfds) with 64 MiB to spare.
    with_room(64 * MIB, || {
        assert!(is_oom(EpollSelector::<u32>::with_capacity(1 << 28)));
        assert!(is_oom(PollSelector::<u32>::with_capacity(1 << 28)));
        assert!(is_oom(EpollSelector::<u32>::with_fixed_capacity(1 << 28)));
        assert!(is_oom(PollSelector::<u32>::with_fixed_capacity(1 << 28)));
    });
    growing::<selectors2::sys::Epoll>(12);
    growing::<selectors2::sys::Poll>(8);
}

/// Growing to 2^24 keys with room for the new key table and half the
/// mechanism's new buffer (`buffer` bytes a key): the table is allocated,
/// the buffer is not. The selector is left as it was, and works.
fn growing<B: OsBackend>(buffer: u64) {
    let (a, mut b) = UnixStream::pair().unwrap();
    let mut sel: Selector<B, u32> = Selector::with_capacity(4).unwrap();
    sel.register(&a, EVENT_READ, 7).unwrap();
    let keys = 1 << 24;
    let (slots, _) = KeyMap::<u32>::layout_for(keys).unwrap();
    let table = (slots * std::mem::size_of::<Slot<u32>>()) as u64;
    let room = table + slots as u64 * buffer / 2;
    let grown = with_room(room, || sel.reserve(keys));
    assert!(
        matches!(&grown, Err(Error::Io(e)) if e.kind() == ErrorKind::OutOfMemory),
        "{grown:?}"
    );
    assert_eq!((sel.len(), sel.capacity()), (1, 4));
    std::io::Write::write_all(&mut b, b"x").unwrap();
    let mut ready: Ready<u32, 4> = Ready::new();
    assert_eq!(
        sel.select(&mut ready, Some(Duration::from_secs(5)))
            .unwrap(),
        1
    );
    assert_eq!(ready.iter().next().map(|(k, _)| k.data), Some(7));
}
