//! The example echo server (`std-adapter/examples/shared/echo.rs`, the very
//! file users copy) as a process of its own, for `tests/echo_python.rs`:
//! a client in another language drives it, and `--nofile N` lowers its fd
//! limit so that `accept` meets `EMFILE`.
//!
//! ```text
//! echo_server <epoll|poll|select|default> [--nofile N | --small]
//! ```
//!
//! `--small` gives the server a 16-key table (the listener, the waker and
//! 14 clients), so that a storm of clients meets `Full`.
//!
//! Accepted sockets inherit a 16 KiB send buffer from the listener (Linux
//! would otherwise grow it to megabytes on loopback), so that echoing a
//! message of a few hundred KiB to a slow reader meets a full socket and
//! the server's partial-write path runs.
//!
//! Prints `listening ADDR`, serves until its standard input closes, then
//! prints `stats ...` and exits.
//!
//! Unix only (the example reads `EMFILE` through libc, and the Python
//! client runs on the host): on Windows it says so and exits.
#![cfg_attr(not(unix), allow(dead_code, unused_imports))]

#[cfg(unix)]
#[path = "../../../std-adapter/examples/shared/echo.rs"]
mod echo;

use std::io::{self, BufRead, Write};

use selectors2::sys::{Auto, OsBackend, Poll, Select};

#[cfg(not(unix))]
fn main() {
    eprintln!("echo_server runs on unix only");
    std::process::exit(2);
}

#[cfg(unix)]
fn serve<B: OsBackend, const CAP: usize>(nofile: Option<u64>) -> io::Result<()> {
    let mut server = echo::EchoServer::<B, CAP>::bind("127.0.0.1:0", false)?;
    socket2::SockRef::from(server.listener()).set_send_buffer_size(16 * 1024)?;
    if let Some(n) = nofile {
        set_nofile(n)?;
    }
    println!(
        "listening {} {}",
        server.local_addr()?,
        server.backend_name()
    );
    io::stdout().flush()?;
    let stop = server.stopper();
    std::thread::spawn(move || {
        // Until standard input closes: the test's way of saying "stop".
        for _ in io::stdin().lock().lines() {}
        let _ = stop.wake();
    });
    let s = server.run()?;
    println!(
        "stats accepted={} closed={} bytes={} partial_writes={} refused={} errors={} accept_errors={} slots={} lost_slots={}",
        s.accepted,
        s.closed,
        s.bytes,
        s.partial_writes,
        s.refused,
        s.errors,
        s.accept_errors,
        s.slots,
        s.lost_slots
    );
    Ok(())
}

/// Lowers the soft `RLIMIT_NOFILE` to `n`.
#[cfg(unix)]
#[allow(unsafe_code)]
fn set_nofile(n: u64) -> io::Result<()> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid out-pointer for getrlimit and a valid
    // in-pointer for setrlimit.
    let r = unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        // `rlim_t` is signed on FreeBSD.
        #[allow(clippy::unnecessary_cast)]
        let n = n as libc::rlim_t;
        lim.rlim_cur = n.min(lim.rlim_max);
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim)
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(unix)]
fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let backend = args.next().unwrap_or_else(|| "default".into());
    let mut nofile = None;
    let mut small = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--nofile" => nofile = args.next().and_then(|n| n.parse().ok()),
            "--small" => small = true,
            other => return Err(io::Error::other(format!("unknown argument {other}"))),
        }
    }
    match (backend.as_str(), small) {
        #[cfg(has_epoll)]
        ("epoll", false) => serve::<selectors2::sys::Epoll, 4096>(nofile),
        #[cfg(has_epoll)]
        ("epoll", true) => serve::<selectors2::sys::Epoll, 16>(nofile),
        ("poll", false) => serve::<Poll, 4096>(nofile),
        ("poll", true) => serve::<Poll, 16>(nofile),
        ("select", false) => serve::<Select, 4096>(nofile),
        ("select", true) => serve::<Select, 16>(nofile),
        ("default", false) => serve::<Auto, 4096>(nofile),
        ("default", true) => serve::<Auto, 16>(nofile),
        (other, _) => Err(io::Error::other(format!("unknown backend {other}"))),
    }
}
