//! What the benchmark binaries share: the contenders behind one small trait,
//! the socket fixtures, the fd limit, and criterion's configuration (with
//! the quick mode).
//!
//! Every contender is driven the way its own users drive it:
//!
//! | name | what | driven |
//! | --- | --- | --- |
//! | `rustix_epoll` | raw `epoll` through rustix (system calls issued inline) | level-triggered, a 64-event buffer allocated once |
//! | `libc_epoll` | the same loop through glibc's `epoll_*` wrappers | level-triggered, a 64-event buffer allocated once |
//! | `s2_epoll` | `selectors2::EpollSelector<usize, 16384>` | level-triggered, `Ready<usize, 64>` allocated once |
//! | `s2_poll` | `selectors2::PollSelector<usize, 16384>` | same |
//! | `s2_select` | `selectors2::SelectSelector<usize, 16384>` | same; fds at or above `FD_SETSIZE` (1024) are refused, so it sits out the scenarios that need them |
//! | `s2_default` | `selectors2::DefaultSelector<usize, 16384>` (epoll here, chosen at run time) | same |
//! | `mio` | `mio::Poll` 1.x with `SourceFd` registrations | **edge-triggered**, as mio always is: on each event the reader drains the socket until `WouldBlock` (one more `read` per event than the level-triggered contenders need); `Events::with_capacity(64)` |
//! | `polling` | `polling::Poller` 3.x | **level mode** (`PollMode::Level`; its default is oneshot, which would need a re-arm per event); `Events::with_capacity(64)`, cleared before each wait, as its docs show |
//!
//! Every wait is given the same timeout, one second (event loops bound their
//! waits; it is never reached, since something is always ready). The socket
//! reads and writes around the waits are the same calls for everyone (rustix,
//! one byte), so the ratios measure the readiness layer alone.
//!
//! "N registered" means N registered sockets: both ends of N/2 Unix
//! socketpairs are registered for reading (one end when N = 1). Writing a
//! byte into one end makes exactly its peer readable. This holds 10,000
//! registered sockets within 10,000 fds; 10,000 *pairs* would need 20,000,
//! the hard RLIMIT_NOFILE here, and none would be left for the selectors.
//! When the limit is lower still, N shrinks and the output says so.
#![allow(unsafe_code)]
#![allow(dead_code)] // each bench binary uses part of this module

use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use criterion::Criterion;
use rustix::event::{Timespec, epoll};
use rustix::io::Errno;
use selectors2::sys::OsBackend;
use selectors2::{EVENT_READ, EVENT_WRITE, Ready, Selector};

/// The timeout of every wait.
pub const TIMEOUT: Duration = Duration::from_secs(1);
/// Events (or ready keys) collected per wait, for every contender.
pub const BATCH: usize = 64;
/// The key-table capacity of the selectors2 contenders: room for 10,000.
pub const CAPACITY: usize = 16384;
/// fds kept free for the selectors themselves, criterion and stdio.
const RESERVE_FDS: u64 = 64;

/// Whether `SELECTORS2_BENCH_QUICK` is set (to anything but `0`).
pub fn quick() -> bool {
    std::env::var_os("SELECTORS2_BENCH_QUICK").is_some_and(|v| v != "0")
}

/// Criterion's configuration: the quick mode runs the whole set in well
/// under three minutes on two cores; the full one is criterion's default
/// sample count with shorter warm-ups.
///
/// Also warms the machine up (see [`warm_up`]), so that the first
/// contender measured is not the one that pays for it.
pub fn config() -> Criterion {
    warm_up();
    let c = Criterion::default().without_plots();
    if quick() {
        c.warm_up_time(Duration::from_millis(150))
            .measurement_time(Duration::from_millis(500))
            .sample_size(10)
            .nresamples(10_000)
    } else {
        c.warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3))
            .sample_size(100)
    }
}

/// Half a second of untimed ping-pong on raw epoll: page faults, lazily
/// allocated kernel caches and a cold CPU would otherwise land on whichever
/// contender runs first.
pub fn warm_up() {
    let s = Sockets::new(1);
    let mut c = RustixEpoll::open().expect("epoll");
    c.add(s.fd(0), 0).expect("register");
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_millis(500) {
        for _ in 0..1000 {
            write1(s.peer(0));
            c.wait(|_| consume(s.fd(0), false)).expect("wait");
        }
    }
}

/// `want` registered sockets, or as many as the fd limit allows (saying so).
pub fn fit(want: usize, what: &str) -> usize {
    let limit = selectors2_tests::raise_fd_limit();
    let room = limit.saturating_sub(RESERVE_FDS) as usize;
    if want <= room {
        return want;
    }
    let n = room.max(1);
    eprintln!(
        "note: {what}: RLIMIT_NOFILE is {limit}, so N = {want} is scaled down to N = {n} \
         (raise the hard limit to measure N = {want})"
    );
    n
}

/// The sockets of one scenario: `n` registered ones and their peers.
pub struct Sockets {
    /// Both ends of each pair, in order: socket `i`'s peer is `i ^ 1`.
    ends: Vec<UnixStream>,
    n: usize,
}

impl Sockets {
    /// `n` registrable sockets from `ceil(n / 2)` non-blocking socketpairs.
    pub fn new(n: usize) -> Sockets {
        let pairs = n.div_ceil(2).max(1);
        let mut ends = Vec::with_capacity(2 * pairs);
        for _ in 0..pairs {
            let (a, b) = UnixStream::pair().expect("socketpair");
            a.set_nonblocking(true).expect("O_NONBLOCK");
            b.set_nonblocking(true).expect("O_NONBLOCK");
            ends.push(a);
            ends.push(b);
        }
        Sockets { ends, n }
    }

    /// How many sockets are meant to be registered.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Registered socket `i` (its token is `i`).
    #[inline]
    pub fn fd(&self, i: usize) -> BorrowedFd<'_> {
        self.ends[i].as_fd()
    }

    /// The other end of socket `i`: a byte written here makes `i` readable.
    #[inline]
    pub fn peer(&self, i: usize) -> BorrowedFd<'_> {
        self.ends[i ^ 1].as_fd()
    }

    /// `n` sockets of which `ready`, spread evenly, are readable (and stay
    /// so: nothing reads them).
    pub fn with_ready(n: usize, ready: usize) -> Sockets {
        let s = Sockets::new(n);
        let step = n / ready;
        for k in 0..ready {
            // Even indices stepped by at least 2 never pick a socket and
            // its peer both; a single one is the last (highest) fd.
            s.make_readable(if ready == 1 { n - 1 } else { (k * step) & !1 });
        }
        s
    }

    /// Makes socket `i` readable, and leaves it so.
    pub fn make_readable(&self, i: usize) {
        write1(self.peer(i));
    }
}

/// Writes one byte.
#[inline]
pub fn write1(fd: BorrowedFd<'_>) {
    match rustix::io::write(fd, &[1]) {
        Ok(1) => {}
        r => panic!("write: {r:?}"),
    }
}

/// Consumes what a ready socket holds, the way the contender's users do:
/// one `read` when level-triggered; until `WouldBlock` when edge-triggered.
#[inline]
pub fn consume(fd: BorrowedFd<'_>, edge: bool) {
    let mut buf = [0u8; 64];
    loop {
        match rustix::io::read(fd, &mut buf) {
            Ok(0) => panic!("unexpected EOF"),
            Ok(_) if edge => continue,
            Ok(_) => return,
            Err(Errno::AGAIN) if edge => return,
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// One readiness API under test, as its users drive it.
pub trait Contender: Sized {
    /// The benchmark id (a directory name under `target/criterion`).
    const NAME: &'static str;
    /// Edge-triggered: a ready socket must be drained until `WouldBlock`,
    /// and one that stays ready is not reported again.
    const EDGE: bool = false;
    /// A new, empty instance.
    fn open() -> io::Result<Self>;
    /// Registers `fd` for reading, with `token`.
    fn add(&mut self, fd: BorrowedFd<'_>, token: usize) -> io::Result<()>;
    /// Switches `fd`'s interest to read+write (`write`) or back to read.
    fn set_write(&mut self, fd: BorrowedFd<'_>, token: usize, write: bool) -> io::Result<()>;
    /// Unregisters `fd`.
    fn delete(&mut self, fd: BorrowedFd<'_>) -> io::Result<()>;
    /// Waits once (with [`TIMEOUT`]) and calls `on_ready(token)` per event;
    /// returns how many there were.
    fn wait(&mut self, on_ready: impl FnMut(usize)) -> io::Result<usize>;

    /// A fresh instance with sockets `0..s.len()` registered, or why not
    /// (printed: the select backend refuses fds at or above `FD_SETSIZE`).
    fn with(s: &Sockets, what: &str) -> Option<Self> {
        let setup = || {
            let mut c = Self::open()?;
            for i in 0..s.len() {
                c.add(s.fd(i), i)?;
            }
            Ok::<_, io::Error>(c)
        };
        match setup() {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("note: {what}/{}: n/a ({e})", Self::NAME);
                None
            }
        }
    }
}

const TIMEOUT_SPEC: Timespec = Timespec {
    tv_sec: TIMEOUT.as_secs() as _,
    tv_nsec: 0,
};

/// Raw epoll through rustix: the floor.
pub struct RustixEpoll {
    ep: OwnedFd,
    buf: Vec<epoll::Event>,
}

impl Contender for RustixEpoll {
    const NAME: &'static str = "rustix_epoll";

    fn open() -> io::Result<Self> {
        let ep = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        let empty = epoll::Event {
            flags: epoll::EventFlags::empty(),
            data: epoll::EventData::new_u64(0),
        };
        Ok(RustixEpoll {
            ep,
            buf: vec![empty; BATCH],
        })
    }

    #[inline]
    fn add(&mut self, fd: BorrowedFd<'_>, token: usize) -> io::Result<()> {
        epoll::add(
            &self.ep,
            fd,
            epoll::EventData::new_u64(token as u64),
            epoll::EventFlags::IN,
        )?;
        Ok(())
    }

    #[inline]
    fn set_write(&mut self, fd: BorrowedFd<'_>, token: usize, write: bool) -> io::Result<()> {
        let flags = if write {
            epoll::EventFlags::IN | epoll::EventFlags::OUT
        } else {
            epoll::EventFlags::IN
        };
        epoll::modify(&self.ep, fd, epoll::EventData::new_u64(token as u64), flags)?;
        Ok(())
    }

    #[inline]
    fn delete(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        epoll::delete(&self.ep, fd)?;
        Ok(())
    }

    #[inline]
    fn wait(&mut self, mut on_ready: impl FnMut(usize)) -> io::Result<usize> {
        let n = loop {
            match epoll::wait(&self.ep, &mut self.buf[..], Some(&TIMEOUT_SPEC)) {
                Err(Errno::INTR) => continue,
                r => break r?,
            }
        };
        for ev in &self.buf[..n] {
            on_ready(ev.data.u64() as usize);
        }
        Ok(n)
    }
}

/// Raw epoll through glibc's wrappers: the floor most C programs see.
pub struct LibcEpoll {
    ep: OwnedFd,
    buf: Vec<libc::epoll_event>,
}

impl LibcEpoll {
    #[inline]
    fn ctl(
        &self,
        op: libc::c_int,
        fd: BorrowedFd<'_>,
        events: libc::c_int,
        token: usize,
    ) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: events as u32,
            u64: token as u64,
        };
        // SAFETY: both fds are open (borrowed for the call) and `ev` is a
        // valid `epoll_event` that the kernel only reads.
        let r = unsafe { libc::epoll_ctl(self.ep.as_raw_fd(), op, fd.as_raw_fd(), &mut ev) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

impl Contender for LibcEpoll {
    const NAME: &'static str = "libc_epoll";

    fn open() -> io::Result<Self> {
        // SAFETY: no pointers; a negative result is checked below.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and is owned by no one else.
        let ep = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(LibcEpoll {
            ep,
            buf: vec![libc::epoll_event { events: 0, u64: 0 }; BATCH],
        })
    }

    #[inline]
    fn add(&mut self, fd: BorrowedFd<'_>, token: usize) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, libc::EPOLLIN, token)
    }

    #[inline]
    fn set_write(&mut self, fd: BorrowedFd<'_>, token: usize, write: bool) -> io::Result<()> {
        let events = if write {
            libc::EPOLLIN | libc::EPOLLOUT
        } else {
            libc::EPOLLIN
        };
        self.ctl(libc::EPOLL_CTL_MOD, fd, events, token)
    }

    #[inline]
    fn delete(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0)
    }

    #[inline]
    fn wait(&mut self, mut on_ready: impl FnMut(usize)) -> io::Result<usize> {
        let ms = TIMEOUT.as_millis() as libc::c_int;
        let n = loop {
            // SAFETY: `buf` is a live array of `buf.len()` events that the
            // kernel writes at most `buf.len()` of.
            let n = unsafe {
                libc::epoll_wait(
                    self.ep.as_raw_fd(),
                    self.buf.as_mut_ptr(),
                    self.buf.len() as _,
                    ms,
                )
            };
            if n >= 0 {
                break n as usize;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        };
        for ev in &self.buf[..n] {
            on_ready(ev.u64 as usize);
        }
        Ok(n)
    }
}

/// A selectors2 selector and its `Ready` set.
pub struct S2<B: OsBackend> {
    sel: Selector<B, usize>,
    ready: Ready<usize, BATCH>,
}

macro_rules! selectors2_contender {
    ($backend:ty, $name:literal) => {
        impl Contender for S2<$backend> {
            const NAME: &'static str = $name;

            fn open() -> io::Result<Self> {
                Ok(S2 {
                    sel: Selector::<$backend, usize>::with_capacity(CAPACITY)?,
                    ready: Ready::new(),
                })
            }

            #[inline]
            fn add(&mut self, fd: BorrowedFd<'_>, token: usize) -> io::Result<()> {
                self.sel.register(fd, EVENT_READ, token)?;
                Ok(())
            }

            #[inline]
            fn set_write(
                &mut self,
                fd: BorrowedFd<'_>,
                token: usize,
                write: bool,
            ) -> io::Result<()> {
                let events = if write {
                    EVENT_READ | EVENT_WRITE
                } else {
                    EVENT_READ
                };
                self.sel.modify(fd, events, token)?;
                Ok(())
            }

            #[inline]
            fn delete(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
                self.sel.unregister(fd)?;
                Ok(())
            }

            #[inline]
            fn wait(&mut self, mut on_ready: impl FnMut(usize)) -> io::Result<usize> {
                let n = self.sel.select(&mut self.ready, Some(TIMEOUT))?;
                for (key, _events) in &self.ready {
                    on_ready(key.data);
                }
                Ok(n)
            }
        }
    };
}

selectors2_contender!(selectors2::sys::Epoll, "s2_epoll");
selectors2_contender!(selectors2::sys::Poll, "s2_poll");
selectors2_contender!(selectors2::sys::Select, "s2_select");
selectors2_contender!(selectors2::sys::Auto, "s2_default");

/// mio, edge-triggered.
pub struct Mio {
    poll: mio::Poll,
    events: mio::Events,
}

impl Contender for Mio {
    const NAME: &'static str = "mio";
    const EDGE: bool = true;

    fn open() -> io::Result<Self> {
        Ok(Mio {
            poll: mio::Poll::new()?,
            events: mio::Events::with_capacity(BATCH),
        })
    }

    #[inline]
    fn add(&mut self, fd: BorrowedFd<'_>, token: usize) -> io::Result<()> {
        let raw = fd.as_raw_fd();
        self.poll.registry().register(
            &mut mio::unix::SourceFd(&raw),
            mio::Token(token),
            mio::Interest::READABLE,
        )
    }

    #[inline]
    fn set_write(&mut self, fd: BorrowedFd<'_>, token: usize, write: bool) -> io::Result<()> {
        let raw = fd.as_raw_fd();
        let interest = if write {
            mio::Interest::READABLE | mio::Interest::WRITABLE
        } else {
            mio::Interest::READABLE
        };
        self.poll
            .registry()
            .reregister(&mut mio::unix::SourceFd(&raw), mio::Token(token), interest)
    }

    #[inline]
    fn delete(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        let raw = fd.as_raw_fd();
        self.poll
            .registry()
            .deregister(&mut mio::unix::SourceFd(&raw))
    }

    #[inline]
    fn wait(&mut self, mut on_ready: impl FnMut(usize)) -> io::Result<usize> {
        // mio does not retry EINTR itself; its users loop.
        loop {
            match self.poll.poll(&mut self.events, Some(TIMEOUT)) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r?,
            }
        }
        let mut n = 0;
        for ev in self.events.iter() {
            n += 1;
            on_ready(ev.token().0);
        }
        Ok(n)
    }
}

/// polling, in level mode.
pub struct Polling {
    poller: polling::Poller,
    events: polling::Events,
}

impl Contender for Polling {
    const NAME: &'static str = "polling";

    fn open() -> io::Result<Self> {
        let cap = NonZeroUsize::new(BATCH).expect("BATCH > 0");
        Ok(Polling {
            poller: polling::Poller::new()?,
            events: polling::Events::with_capacity(cap),
        })
    }

    #[inline]
    fn add(&mut self, fd: BorrowedFd<'_>, token: usize) -> io::Result<()> {
        let raw: RawFd = fd.as_raw_fd();
        // SAFETY: polling requires the source to be deleted before it is
        // closed. Every bench deletes what it adds, or drops the poller
        // (closing its epoll instance) before the `Sockets` it registered.
        unsafe {
            self.poller.add_with_mode(
                raw,
                polling::Event::readable(token),
                polling::PollMode::Level,
            )
        }
    }

    #[inline]
    fn set_write(&mut self, fd: BorrowedFd<'_>, token: usize, write: bool) -> io::Result<()> {
        let ev = if write {
            polling::Event::all(token)
        } else {
            polling::Event::readable(token)
        };
        self.poller
            .modify_with_mode(fd, ev, polling::PollMode::Level)
    }

    #[inline]
    fn delete(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        self.poller.delete(fd)
    }

    #[inline]
    fn wait(&mut self, mut on_ready: impl FnMut(usize)) -> io::Result<usize> {
        self.events.clear();
        self.poller.wait(&mut self.events, Some(TIMEOUT))?;
        let mut n = 0;
        for ev in self.events.iter() {
            n += 1;
            on_ready(ev.key);
        }
        Ok(n)
    }
}

/// Calls `$f::<C>($args..)` for every contender, in the table's order.
macro_rules! each_contender {
    ($f:ident($($arg:expr),* $(,)?)) => {{
        use $crate::common::*;
        $f::<RustixEpoll>($($arg),*);
        $f::<LibcEpoll>($($arg),*);
        $f::<S2<selectors2::sys::Epoll>>($($arg),*);
        $f::<S2<selectors2::sys::Poll>>($($arg),*);
        $f::<S2<selectors2::sys::Select>>($($arg),*);
        $f::<S2<selectors2::sys::Auto>>($($arg),*);
        $f::<Mio>($($arg),*);
        $f::<Polling>($($arg),*);
    }};
}
