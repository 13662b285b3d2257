//! The Windows facts the backends are built around, shown on the raw
//! Winsock calls (under Wine in CI), and what the selectors make of them.
#![cfg(windows)]
#![allow(unsafe_code)] // raw WSAPoll and select calls

use std::os::windows::io::AsRawSocket;
use std::time::Duration;

use selectors2::{
    BackendKind, DefaultSelector, EVENT_READ, EVENT_WRITE, PollSelector, Ready, SelectSelector,
};
use selectors2_tests::{AsRawFd, pair, ready_set, timed};
use socket2::{Domain, Socket, Type};
use windows_sys::Win32::Networking::WinSock::{
    FD_SET, POLLERR, POLLPRI, POLLRDNORM, POLLWRNORM, SOCKET_ERROR, TIMEVAL, WSAEINVAL,
    WSAGetLastError, WSAPOLLFD, WSAPoll, select,
};

fn last_error() -> i32 {
    // SAFETY: no preconditions.
    unsafe { WSAGetLastError() }
}

/// A non-blocking connect to a loopback port nobody listens on.
fn refused_connect() -> Socket {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap();
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.set_nonblocking(true).unwrap();
    assert!(s.connect(&port.into()).is_err(), "port {port} was taken");
    s
}

fn wsapoll(s: &impl AsRawSocket, events: i16, timeout_ms: i32) -> Result<i16, i32> {
    let mut fd = WSAPOLLFD {
        fd: s.as_raw_socket() as usize,
        events,
        revents: 0,
    };
    // SAFETY: one valid WSAPOLLFD, borrowed for the call.
    let n = unsafe { WSAPoll(&mut fd, 1, timeout_ms) };
    if n == SOCKET_ERROR {
        Err(last_error())
    } else {
        Ok(fd.revents)
    }
}

/// Whether this is Wine rather than Windows (Wine's ntdll exports
/// `wine_get_version`).
fn on_wine() -> bool {
    use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleA, GetProcAddress};
    // SAFETY: NUL-terminated names; ntdll is loaded in every process.
    unsafe {
        let ntdll = GetModuleHandleA(c"ntdll.dll".as_ptr().cast());
        !ntdll.is_null() && GetProcAddress(ntdll, c"wine_get_version".as_ptr().cast()).is_some()
    }
}

/// Tests here close registered sockets: one at a time, so that no other
/// test of this process takes a freed handle number meanwhile.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Windows' WSAPoll refuses POLLPRI with WSAEINVAL, so the backend never
/// asks for it (READ is POLLRDNORM, WRITE is POLLWRNORM). Wine 8 accepts
/// it: there only the backend's side is shown.
#[test]
fn wsapoll_refuses_pollpri() {
    let _serial = serial();
    let (a, _b) = pair();
    match wsapoll(&a, POLLRDNORM | POLLPRI, 0) {
        Err(WSAEINVAL) => {}
        Ok(_) if on_wine() => eprintln!("Wine accepts POLLPRI; Windows does not"),
        other => panic!("{other:?}"),
    }
    assert_eq!(wsapoll(&a, POLLWRNORM, 0), Ok(POLLWRNORM));
    let mut sel = PollSelector::<usize>::with_fixed_capacity(8).unwrap();
    sel.register(&a, EVENT_READ | EVENT_WRITE, 0).unwrap();
    let got = ready_set(&mut sel, Some(Duration::ZERO));
    assert_eq!(got.get(&a.as_raw_fd()), Some(&EVENT_WRITE));
}

/// select with three empty sets fails with WSAEINVAL instead of sleeping;
/// an empty selector sleeps its timeout all the same.
#[test]
fn empty_select_is_einval_but_empty_selectors_sleep() {
    let _serial = serial();
    let (_a, _b) = pair(); // Winsock is initialised
    let tv = TIMEVAL {
        tv_sec: 0,
        tv_usec: 1000,
    };
    let null = std::ptr::null_mut::<FD_SET>();
    // SAFETY: null sets and a valid timeout.
    let n = unsafe { select(0, null, null, null, &tv) };
    assert_eq!((n, last_error()), (SOCKET_ERROR, WSAEINVAL));
    let t = Duration::from_millis(30);
    let mut ready: Ready<usize, 4> = Ready::new();
    let (_, took) = timed(|| {
        SelectSelector::<usize>::with_fixed_capacity(8)
            .unwrap()
            .select(&mut ready, Some(t))
    });
    assert!(took >= t, "{took:?}");
    let (_, took) = timed(|| {
        PollSelector::<usize>::with_fixed_capacity(8)
            .unwrap()
            .select(&mut ready, Some(t))
    });
    assert!(took >= t, "{took:?}");
}

/// A refused non-blocking connect: WSAPoll says POLLERR (Windows 10 2004
/// and later); select puts it in the except set, not the write set.
#[test]
fn refused_connect_is_pollerr_and_except() {
    let _serial = serial();
    let s = refused_connect();
    let revents = wsapoll(&s, POLLWRNORM, 10_000).unwrap();
    assert!(revents & POLLERR != 0, "revents {revents:#x}");

    let s = refused_connect();
    let set = || {
        let mut f = FD_SET {
            fd_count: 1,
            fd_array: [0; 64],
        };
        f.fd_array[0] = s.as_raw_socket() as usize;
        f
    };
    let (mut w, mut x) = (set(), set());
    let tv = TIMEVAL {
        tv_sec: 10,
        tv_usec: 0,
    };
    // SAFETY: two valid one-socket sets and a valid timeout.
    let n = unsafe { select(0, std::ptr::null_mut(), &mut w, &mut x, &tv) };
    assert_eq!(n, 1, "error {}", last_error());
    assert_eq!((w.fd_count, x.fd_count), (0, 1), "only in the except set");
}

/// Both backends report a refused connect as an error, `READ | WRITE`
/// masked by the key's interest, as every unix backend does: a key that
/// waits to READ hears of it too (with CPython's select, which passes only
/// the write set as the except set, it would wait for ever).
#[test]
fn refused_connect_is_read_and_write_on_both_backends() {
    let _serial = serial();
    fn check<B: selectors2::sys::OsBackend>(mut sel: selectors2::Selector<B, usize>) {
        let kind = sel.backend_kind();
        for interest in [EVENT_READ, EVENT_WRITE, EVENT_READ | EVENT_WRITE] {
            let s = refused_connect();
            sel.register(&s, interest, 0).unwrap();
            let (got, took) = timed(|| ready_set(&mut sel, Some(Duration::from_secs(10))));
            assert_eq!(
                got.get(&s.as_raw_fd()),
                Some(&interest),
                "{kind}, {interest:?}: {got:?} after {took:?}"
            );
            sel.unregister(&s).unwrap();
            assert!(s.take_error().unwrap().is_some(), "{kind}: the error waits");
        }
    }
    check(PollSelector::<usize>::with_fixed_capacity(8).unwrap());
    check(SelectSelector::<usize>::with_fixed_capacity(8).unwrap());
}

/// `register` refuses a handle that is not a socket (a file, a thread, a
/// number that names no handle) with Winsock's `WSAENOTSOCK`, on both
/// backends, and registers nothing: WSAPoll and select watch sockets only.
#[test]
fn register_refuses_what_is_not_a_socket() {
    use selectors2::Error;
    use std::os::windows::io::AsRawHandle;
    use windows_sys::Win32::Networking::WinSock::WSAENOTSOCK;
    let _serial = serial();
    let file = std::fs::File::open(std::env::current_exe().unwrap()).unwrap();
    let thread = std::thread::spawn(|| std::thread::sleep(Duration::from_millis(200)));
    let handles = [
        ("a file", file.as_raw_handle() as usize as i32),
        ("a thread", thread.as_raw_handle() as usize as i32),
        ("nothing", 0x7fff_fff0),
    ];
    fn check<B: selectors2::sys::OsBackend>(
        mut sel: selectors2::Selector<B, usize>,
        handles: &[(&str, i32)],
    ) {
        let kind = sel.backend_kind();
        let (a, _b) = pair();
        sel.register(&a, EVENT_READ, 0).unwrap();
        for &(what, fd) in handles {
            match sel.register(fd, EVENT_READ, 1) {
                Err(Error::Io(e)) if e.raw_os_error() == Some(WSAENOTSOCK) => {
                    let said = e.to_string();
                    assert!(said.contains("10038"), "{kind}, {what}: {said}");
                }
                other => panic!("{kind}, {what} ({fd:#x}): {other:?}"),
            }
            assert!(sel.get_key(fd).is_none(), "{kind}, {what}");
        }
        assert_eq!(sel.len(), 1, "{kind}");
        // The socket registered before is still served.
        let got = ready_set(&mut sel, Some(Duration::ZERO));
        assert!(got.is_empty(), "{kind}: {got:?}");
    }
    check(
        PollSelector::<usize>::with_fixed_capacity(8).unwrap(),
        &handles,
    );
    check(
        SelectSelector::<usize>::with_fixed_capacity(8).unwrap(),
        &handles,
    );
    check(
        DefaultSelector::<usize>::with_fixed_capacity(8).unwrap(),
        &handles,
    );
    thread.join().unwrap();
}

/// A socket closed while registered is reported (as ready, so that the
/// caller's read or write finds the error) by both backends, not a failed
/// `select`; unregistering it afterwards succeeds, and the others are
/// reported again. (Wine's WSAPoll, like the select backend, reports only
/// the closed socket in that call; Windows' may report the others too.)
#[test]
fn closed_registered_socket_is_reported_not_fatal() {
    let _serial = serial();
    let (a, _b) = pair();
    let (c, d) = pair();
    let mut poll = PollSelector::<usize>::with_fixed_capacity(8).unwrap();
    let mut sel = SelectSelector::<usize>::with_fixed_capacity(8).unwrap();
    for s in [&mut poll as &mut dyn Sel, &mut sel] {
        s.reg(a.as_raw_fd());
        s.reg(c.as_raw_fd());
    }
    let fa = a.as_raw_fd();
    drop(a);
    drop(d);
    for s in [&mut poll as &mut dyn Sel, &mut sel] {
        let got = s.ready();
        assert_eq!(got.get(&fa), Some(&EVENT_READ), "{got:?}");
        s.unreg(fa);
        let got = s.ready();
        assert_eq!(got.get(&c.as_raw_fd()), Some(&EVENT_READ), "{got:?}");
    }
}

trait Sel {
    fn reg(&mut self, fd: i32);
    fn unreg(&mut self, fd: i32);
    fn ready(&mut self) -> std::collections::BTreeMap<i32, selectors2::Events>;
}

impl<B: selectors2::sys::OsBackend> Sel for selectors2::Selector<B, usize> {
    fn reg(&mut self, fd: i32) {
        self.register(fd, EVENT_READ, 0).unwrap();
    }
    fn unreg(&mut self, fd: i32) {
        self.unregister(fd).unwrap();
    }
    fn ready(&mut self) -> std::collections::BTreeMap<i32, selectors2::Events> {
        ready_set(self, Some(Duration::from_millis(100)))
    }
}

/// Winsock select holds `FD_SETSIZE` (512) sockets: the next register is
/// `Full { capacity: 512 }` and changes nothing, through `SelectSelector`
/// and through a `DefaultSelector` that chose select.
#[test]
fn select_holds_fd_setsize_sockets() {
    let _serial = serial();
    use selectors2::{Error, sys::FD_SETSIZE};
    fn fill<B: selectors2::sys::OsBackend>(mut sel: selectors2::Selector<B, usize>, fds: &[i32]) {
        let (first, next) = (fds[0], fds[FD_SETSIZE as usize]);
        for &fd in &fds[..FD_SETSIZE as usize] {
            sel.register(fd, EVENT_READ, 0).unwrap();
        }
        assert!(matches!(
            sel.register(next, EVENT_READ, 0),
            Err(Error::Full { capacity: 512 })
        ));
        assert!(sel.get_key(next).is_none());
        assert_eq!(sel.len(), 512);
        sel.unregister(first).unwrap();
        sel.register(next, EVENT_WRITE, 0).unwrap();
    }
    assert_eq!(FD_SETSIZE, 512);
    // Sockets: `register` refuses any other handle.
    let sockets: Vec<_> = (0..=FD_SETSIZE)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let fds: Vec<i32> = sockets.iter().map(|s| s.as_raw_fd()).collect();
    fill(
        SelectSelector::<usize>::with_fixed_capacity(1024).unwrap(),
        &fds,
    );
    fill(
        DefaultSelector::<usize>::with_backends(&[BackendKind::Select]).unwrap(),
        &fds,
    );
    // WSAPoll has no such limit.
    let mut poll = PollSelector::<usize>::with_fixed_capacity(1024).unwrap();
    for &fd in &fds {
        poll.register(fd, EVENT_READ, 0).unwrap();
    }
}

/// DefaultSelector is WSAPoll, falling back to select.
#[test]
fn default_is_wsapoll_then_select() {
    let _serial = serial();
    assert_eq!(
        BackendKind::available(),
        [BackendKind::Poll, BackendKind::Select]
    );
    let sel = DefaultSelector::<usize>::with_fixed_capacity(8).unwrap();
    assert_eq!(sel.backend_kind(), BackendKind::Poll);
    assert_eq!(sel.fileno(), None);
}
