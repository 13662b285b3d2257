//! What only a kqueue kernel can show, through the public API: the
//! behaviours a reading of FreeBSD's and XNU's sources found, each fixed in
//! `std-adapter/src/sys/kqueue.rs` and modelled on Linux in
//! `kqueue_plan.rs`. Built for macOS and the BSDs only; on Linux CI
//! type-checks it (`cargo clippy -p selectors2-tests --all-targets
//! --target x86_64-unknown-freebsd`, and both macOS targets).
#![cfg(has_kqueue)]
#![allow(unsafe_code)] // fork, waitpid, setrlimit

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::Duration;

use selectors2::{Events, KqueueSelector, RawFd, Ready};
use selectors2_tests::{dup2_raw, is_open, low_fds, pipe};

const R: Events = Events::READ;
const W: Events = Events::WRITE;
const RW: Events = Events::READ.union(Events::WRITE);
const ZERO: Option<Duration> = Some(Duration::ZERO);

/// The selector these tests use: room for 64 keys.
type Kq = KqueueSelector<i32>;

fn kq() -> Kq {
    Kq::with_capacity(64).unwrap()
}

/// One select: `fd -> events`, sorted.
fn select<const M: usize>(sel: &mut Kq, timeout: Option<Duration>) -> BTreeMap<RawFd, Events> {
    let mut ready: Ready<i32, M> = Ready::new();
    sel.select(&mut ready, timeout).unwrap();
    ready.iter().map(|(k, e)| (k.fd, e)).collect()
}

/// Fills `s`'s send buffer (its peer reads nothing).
fn fill(mut s: &TcpStream) {
    s.set_nonblocking(true).unwrap();
    let chunk = [0u8; 65536];
    while s.write(&chunk).is_ok() {}
}

/// A connected TCP pair on the loopback: (client, server).
fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

/// Runs the test `name` again, alone, in a process of its own with `env`
/// set (for what must not share a process with other tests: `fork`
/// followed by allocation in the child, process-wide limits). Returns
/// whether this call is that process (then run the body).
fn alone(name: &str, var: &str, env: &[(&str, &str)]) -> bool {
    if std::env::var_os(var).is_some() {
        return true;
    }
    let status = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--test-threads=1", "--nocapture"])
        .env(var, "1")
        .envs(env.iter().copied())
        .status()
        .unwrap();
    assert!(status.success(), "{name} alone: {status}");
    false
}

/// Waits for the child `pid` and returns its exit code.
fn exit_code(pid: libc::pid_t) -> i32 {
    let mut status = 0;
    // SAFETY: waits for our own child, into a local.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "child status {status:#x}");
    libc::WEXITSTATUS(status)
}

/// Runs `child` in a forked child and returns its exit code: 0 when it
/// returned normally, 101 when it panicked. Call only from a process that
/// runs this test alone (see [`alone`]): the child then may allocate.
fn in_child(child: impl FnOnce()) -> i32 {
    // SAFETY: the process runs one test (see `alone`): no other thread of
    // ours holds a lock the child could need.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).is_ok();
        // SAFETY: leaves the child without running the parent's cleanup.
        unsafe { libc::_exit(if ok { 0 } else { 101 }) };
    }
    exit_code(pid)
}

/// Fork: the child does not inherit the kqueue (FreeBSD skips it, macOS
/// closes it on fork), so the selector it inherited acts closed: `select`
/// and `register` fail, `fileno()` is `None`, and dropping it leaves alone
/// the file the child opened under the old number (gh-110395's
/// reproducer). A selector made in the child works; the parent's is
/// untouched.
#[test]
fn fork_child_neither_uses_nor_closes_the_kqueue_number() {
    if !alone(
        "fork_child_neither_uses_nor_closes_the_kqueue_number",
        "KQ_FORK_ALONE",
        &[],
    ) {
        return;
    }
    let (a, b) = UnixStream::pair().unwrap();
    let mut sel = kq();
    sel.register(&a, W, 1).unwrap();
    let number = sel.fileno().unwrap();
    // Taken out by the child only: the parent keeps it.
    let mut parents = Some(sel);
    let code = in_child(|| {
        let mut sel = parents.take().unwrap();
        let mut ready: Ready<i32, 4> = Ready::new();
        let err = sel.select(&mut ready, ZERO).unwrap_err();
        assert!(
            matches!(err, selectors2::Error::Io(ref e) if e.raw_os_error() == Some(libc::EBADF))
        );
        assert!(sel.register(&b, R, 2).is_err());
        assert_eq!(sel.fileno(), None);
        // The child's next file takes the number (make sure of it).
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .unwrap();
        let file = dup2_raw(file.as_raw_fd(), number);
        drop(sel);
        assert!(
            is_open(number),
            "the inherited selector closed the child's file"
        );
        std::fs::File::from(file).write_all(b"x").unwrap();
        // A selector of the child's own works.
        let mut own = kq();
        own.register(&b, W, 3).unwrap();
        assert_eq!(
            select::<4>(&mut own, ZERO),
            BTreeMap::from([(b.as_raw_fd(), W)])
        );
    });
    assert_eq!(
        code, 0,
        "the child's checks failed (101: see its panic above)"
    );
    let sel = parents.as_mut().unwrap();
    assert_eq!(sel.fileno(), Some(number));
    assert_eq!(select::<4>(sel, ZERO), BTreeMap::from([(a.as_raw_fd(), W)]));
}

/// FreeBSD: when a pipe's reader closes, the writer's write filter is
/// reported once (`EV_EOF | EV_ONESHOT`) and dropped. A WRITE-only key is
/// still reported by every select, as poll, epoll and macOS report it.
#[test]
fn a_pipe_writer_stays_writable_after_its_reader_closes() {
    let _fds = low_fds();
    for full in [false, true] {
        let mut sel = kq();
        let (r, w) = pipe();
        if full {
            let mut wf = std::fs::File::from(w.try_clone().unwrap());
            while wf.write(&[0u8; 4096]).is_ok() {}
        }
        sel.register(&w, W, 1).unwrap();
        let expected = BTreeMap::from([(w.as_raw_fd(), W)]);
        if full {
            assert!(select::<4>(&mut sel, ZERO).is_empty());
        } else {
            assert_eq!(select::<4>(&mut sel, ZERO), expected);
        }
        drop(r);
        for round in 0..3 {
            assert_eq!(
                select::<4>(&mut sel, ZERO),
                expected,
                "full {full}, select {round}"
            );
        }
        // Until it is unregistered (on FreeBSD the kernel's delete finds
        // nothing: tolerated).
        sel.unregister(&w).unwrap();
        assert!(select::<4>(&mut sel, ZERO).is_empty());
    }
}

/// One select returns every ready key `Ready` holds: 40 keys ready both
/// ways in a table of 64 (a wait that asked for 64 events returned 32).
#[test]
fn one_select_returns_forty_keys_ready_both_ways() {
    let _fds = low_fds();
    let pairs: Vec<_> = (0..40).map(|_| UnixStream::pair().unwrap()).collect();
    let mut sel = kq();
    for (i, (a, b)) in pairs.iter().enumerate() {
        (&*a).write_all(b"x").unwrap();
        sel.register(b, RW, i as i32).unwrap();
    }
    let got = select::<64>(&mut sel, ZERO);
    assert_eq!(got.len(), 40);
    assert!(got.values().all(|&e| e == RW));
}

/// `EV_EOF` is per direction: the peer's half-close is READ only (our
/// send buffer full: a write would block); our own `shutdown(SHUT_WR)`
/// with nothing to read is WRITE only. As epoll and CPython report them.
#[test]
fn eof_is_reported_for_its_direction_only() {
    let _fds = low_fds();
    let (client, server) = tcp_pair();
    let mut sel = kq();
    sel.register(&server, RW, 1).unwrap();
    fill(&server);
    assert!(select::<4>(&mut sel, ZERO).is_empty());
    client.shutdown(Shutdown::Write).unwrap();
    let got = select::<4>(&mut sel, Some(Duration::from_secs(5)));
    assert_eq!(
        got,
        BTreeMap::from([(server.as_raw_fd(), R)]),
        "peer's half-close"
    );
    drop(sel);

    let (_client, server) = tcp_pair();
    let mut sel = kq();
    sel.register(&server, RW, 1).unwrap();
    server.shutdown(Shutdown::Write).unwrap();
    let got = select::<4>(&mut sel, Some(Duration::from_secs(5)));
    assert_eq!(
        got,
        BTreeMap::from([(server.as_raw_fd(), W)]),
        "own shutdown"
    );
    let mut buf = [0u8; 1];
    server.set_nonblocking(true).unwrap();
    assert!((&server).read(&mut buf).is_err(), "nothing to read indeed");
}

/// Broken pipes beside a `Ready` of one starve no fd: a pipe registered
/// after its reader closed (refused with `EPIPE` on FreeBSD: reported by
/// the backend itself; macOS reports it) and two readable sockets, 20
/// selects: every fd comes back.
#[test]
fn a_broken_pipe_and_a_ready_of_one_starve_no_fd() {
    let _fds = low_fds();
    let mut sel = kq();
    let (r, w) = pipe();
    drop(r);
    sel.register(&w, W, 0).unwrap();
    let pairs: Vec<_> = (0..2).map(|_| UnixStream::pair().unwrap()).collect();
    for (i, (a, b)) in pairs.iter().enumerate() {
        (&*a).write_all(b"x").unwrap();
        sel.register(b, R, i as i32 + 1).unwrap();
    }
    let mut seen = BTreeSet::new();
    for _ in 0..20 {
        let got = select::<1>(&mut sel, ZERO);
        assert_eq!(got.len(), 1);
        seen.extend(got.into_keys());
    }
    let all: BTreeSet<RawFd> = [
        w.as_raw_fd(),
        pairs[0].1.as_raw_fd(),
        pairs[1].1.as_raw_fd(),
    ]
    .into();
    assert_eq!(seen, all);
}

/// FreeBSD's per-user kqueue limit (`ulimit -k`): `kqueue()` fails with
/// ENOMEM, which is a rule, not a passing shortage: `KqueueSelector` says
/// so (`QuotaExceeded`) and `DefaultSelector` falls back to poll, as
/// CPython's does.
#[cfg(target_os = "freebsd")]
#[test]
fn the_kqueue_limit_falls_back_to_poll() {
    if !alone("the_kqueue_limit_falls_back_to_poll", "KQ_LIMIT_ALONE", &[]) {
        return;
    }
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: sets a limit of this process (alone: see above) from a local.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_KQUEUES, &zero) }, 0);
    let err = Kq::with_capacity(64).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::QuotaExceeded, "{err}");
    let sel = selectors2::DefaultSelector::<i32>::new().unwrap();
    assert_eq!(sel.backend_kind(), selectors2::BackendKind::Poll);
}
