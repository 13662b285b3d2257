//! The backend of [`DefaultSelector`](crate::DefaultSelector): whichever
//! mechanism actually works here, chosen at run time.

use std::io;
use std::time::Duration;

use selectors2_core::{Backend, BackendSlot, Events, Readiness, Registration, Tag};

#[cfg(has_epoll)]
use super::Epoll;
#[cfg(has_kqueue)]
use super::Kqueue;
use super::{OsBackend, Poll, Sealed, Select};
use crate::{BackendKind, RawFd};

/// The run-time choice behind [`DefaultSelector`](crate::DefaultSelector).
///
/// Opening it (what `DefaultSelector::new` does) tries the mechanisms in
/// CPython's order (kqueue, epoll, poll, select; see
/// [`BackendKind::available`]): it creates each, waits on it once with a
/// zero timeout while another mechanism remains to fall back to, and falls
/// back to the next when that fails because the mechanism is missing or
/// forbidden here (`ENOSYS` or `EPERM` in a sandbox, say). An error that
/// says the process or the system is out of a resource (`EMFILE`,
/// `ENFILE`, `ENOMEM`, `ENOBUFS`) is returned instead: the next mechanism
/// would work, but it would be the slower choice for the selector's whole
/// life, picked by a passing shortage (Python's `DefaultSelector` raises
/// that `OSError` too). On Windows, opening WSAPoll or select is initialising Winsock (`WSAStartup`), and the wait
/// of an empty selector sleeps without calling either: WSAPoll exists on
/// every Windows we support, so it is chosen unless Winsock fails.
///
/// Which one was chosen: [`OsBackend::kind`].
#[derive(Debug)]
pub struct Auto(Chosen);

/// The mechanism an [`Auto`] chose (private: the choice is made at run
/// time, and callers ask `kind()` rather than match on it).
#[derive(Debug)]
enum Chosen {
    #[cfg(has_epoll)]
    Epoll(Epoll),
    #[cfg(has_kqueue)]
    Kqueue(Kqueue),
    Poll(Poll),
    Select(Select),
}

/// Runs `$e` on the chosen mechanism, `$b` bound to it (`&` or `&mut`,
/// as `$chosen` is).
macro_rules! each {
    ($chosen:expr, $b:ident => $e:expr) => {
        match $chosen {
            #[cfg(has_epoll)]
            Chosen::Epoll($b) => $e,
            #[cfg(has_kqueue)]
            Chosen::Kqueue($b) => $e,
            Chosen::Poll($b) => $e,
            Chosen::Select($b) => $e,
        }
    };
}

impl Auto {
    /// Opens the first of `order` that works: created, then, if a kind
    /// this platform has comes after it, waited on once with a zero
    /// timeout. Kinds this platform lacks are skipped. Fails with the last
    /// error if none works.
    pub(crate) fn open_first(order: &[BackendKind], capacity: usize) -> io::Result<Auto> {
        probe(order, |kind, fallback| open_kind(kind, capacity, fallback))
    }
}

/// Opens `kind`; with `try_wait`, waits on it once with a zero timeout, so
/// that a mechanism whose creation works but whose wait is forbidden (a
/// seccomp filter) fails here, while the next kind can still be chosen.
/// The last kind to try is not waited on: nothing would replace it, and
/// its first `select` reports such an error as any other (the standard
/// library's selectors do not wait at creation either).
fn open_kind(kind: BackendKind, capacity: usize, try_wait: bool) -> io::Result<Auto> {
    let mut b = match kind {
        #[cfg(has_epoll)]
        BackendKind::Epoll => Auto(Chosen::Epoll(Epoll::open(capacity)?)),
        #[cfg(has_kqueue)]
        BackendKind::Kqueue => Auto(Chosen::Kqueue(Kqueue::open(capacity)?)),
        BackendKind::Poll => Auto(Chosen::Poll(Poll::open(capacity)?)),
        BackendKind::Select => Auto(Chosen::Select(Select::open(capacity)?)),
        #[allow(unreachable_patterns)]
        _ => return Err(lacking(kind)),
    };
    if try_wait {
        b.wait(1, Some(Duration::ZERO), |_, _, _| {})?;
    }
    Ok(b)
}

/// The error for a kind this platform lacks (epoll on macOS, kqueue on
/// Linux), naming it.
#[cold]
fn lacking(kind: BackendKind) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{kind} is not available on this platform"),
    )
}

/// Whether `e` is [`lacking`]'s: a kind skipped, not one that failed.
fn is_lacking(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Unsupported && e.raw_os_error().is_none()
}

/// The probing loop, with the opener injectable for tests: it is given
/// each kind and whether a kind this platform has comes after it (a
/// fallback). The error of a mechanism that failed here wins over a kind
/// this platform lacks, so that `[Epoll, Kqueue]` on a Linux whose epoll is
/// forbidden says why.
fn probe(
    order: &[BackendKind],
    mut open: impl FnMut(BackendKind, bool) -> io::Result<Auto>,
) -> io::Result<Auto> {
    let mut last: Option<io::Error> = None;
    for (i, &kind) in order.iter().enumerate() {
        let fallback = order[i + 1..]
            .iter()
            .any(|k| BackendKind::available().contains(k));
        match open(kind, fallback) {
            Ok(b) => return Ok(b),
            Err(e) if out_of_resources(&e) => return Err(e),
            Err(e) if is_lacking(&e) && last.is_some() => {}
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(io::ErrorKind::Unsupported, "no readiness mechanism to try")
    }))
}

/// Whether `e` says the process or the system ran short of something (fds,
/// memory, buffers) rather than that the mechanism is missing or forbidden.
fn out_of_resources(e: &io::Error) -> bool {
    if e.kind() == io::ErrorKind::OutOfMemory {
        return true;
    }
    #[cfg(unix)]
    let codes = [libc::EMFILE, libc::ENFILE, libc::ENOMEM, libc::ENOBUFS];
    #[cfg(windows)]
    let codes = [
        windows_sys::Win32::Networking::WinSock::WSAEMFILE,
        windows_sys::Win32::Networking::WinSock::WSAENOBUFS,
    ];
    matches!(e.raw_os_error(), Some(code) if codes.contains(&code))
}

impl Sealed for Auto {
    fn open(capacity: usize) -> io::Result<Self> {
        Auto::open_first(BackendKind::available(), capacity)
    }

    #[inline]
    fn take_spurious_wakeup(&mut self) -> bool {
        each!(&mut self.0, b => b.take_spurious_wakeup())
    }

    fn reserve_keys(&mut self, capacity: usize) -> io::Result<()> {
        each!(&mut self.0, b => b.reserve_keys(capacity))
    }
}

impl OsBackend for Auto {
    fn kind(&self) -> BackendKind {
        each!(&self.0, b => b.kind())
    }

    fn fileno(&self) -> Option<RawFd> {
        each!(&self.0, b => b.fileno())
    }
}

impl Backend for Auto {
    type Error = io::Error;

    #[inline]
    fn may_report_twice(&self) -> bool {
        each!(&self.0, b => b.may_report_twice())
    }

    #[inline]
    fn fd_limit(&self) -> Option<RawFd> {
        each!(&self.0, b => b.fd_limit())
    }

    #[inline]
    fn key_limit(&self) -> Option<usize> {
        each!(&self.0, b => b.key_limit())
    }

    #[inline(always)]
    fn register(&mut self, fd: RawFd, interest: Events, tag: Tag) -> io::Result<BackendSlot> {
        each!(&mut self.0, b => b.register(fd, interest, tag))
    }

    #[inline(always)]
    fn modify(
        &mut self,
        fd: RawFd,
        slot: BackendSlot,
        old: Events,
        new: Events,
        tag: Tag,
    ) -> io::Result<()> {
        each!(&mut self.0, b => b.modify(fd, slot, old, new, tag))
    }

    #[inline(always)]
    fn unregister(&mut self, fd: RawFd, slot: BackendSlot, interest: Events) -> io::Result<()> {
        each!(&mut self.0, b => b.unregister(fd, slot, interest))
    }

    #[inline]
    fn is_gone(&self, e: &io::Error) -> bool {
        each!(&self.0, b => b.is_gone(e))
    }

    #[inline(always)]
    fn wait<F: FnMut(RawFd, Tag, Readiness)>(
        &mut self,
        max: usize,
        timeout: Option<Duration>,
        report: F,
    ) -> io::Result<()> {
        each!(&mut self.0, b => b.wait(max, timeout, report))
    }

    #[inline]
    fn rebuild(&mut self, live: impl Iterator<Item = Registration> + Clone) -> io::Result<()> {
        each!(&mut self.0, b => b.rebuild(live))
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn enosys() -> io::Error {
        io::Error::from_raw_os_error(libc::ENOSYS)
    }

    #[test]
    fn falls_back_in_order_when_a_mechanism_is_missing() {
        let mut tried = Vec::new();
        let b = probe(
            &[
                BackendKind::Kqueue,
                BackendKind::Epoll,
                BackendKind::Poll,
                BackendKind::Select,
            ],
            |k, _| {
                tried.push(k);
                match k {
                    BackendKind::Kqueue | BackendKind::Epoll => Err(enosys()),
                    BackendKind::Poll => Err(io::Error::from_raw_os_error(libc::EPERM)),
                    BackendKind::Select => open_kind(k, 4, true),
                }
            },
        )
        .unwrap();
        assert_eq!(b.kind(), BackendKind::Select);
        assert_eq!(
            tried,
            [
                BackendKind::Kqueue,
                BackendKind::Epoll,
                BackendKind::Poll,
                BackendKind::Select
            ]
        );
    }

    /// From a fresh user's review: at `EMFILE`, `DefaultSelector::new()`
    /// quietly became a poll selector for good. A shortage is an error.
    #[test]
    fn a_shortage_is_returned_not_a_reason_to_fall_back() {
        for code in [libc::EMFILE, libc::ENFILE, libc::ENOMEM, libc::ENOBUFS] {
            let mut tried = Vec::new();
            let e = probe(&[BackendKind::Epoll, BackendKind::Poll], |k, _| {
                tried.push(k);
                match k {
                    BackendKind::Epoll => Err(io::Error::from_raw_os_error(code)),
                    _ => open_kind(k, 4, true),
                }
            })
            .unwrap_err();
            assert_eq!(e.raw_os_error(), Some(code));
            assert_eq!(tried, [BackendKind::Epoll], "no fallback after {e}");
        }
        let oom = probe(&[BackendKind::Epoll, BackendKind::Poll], |k, _| match k {
            BackendKind::Epoll => Err(io::Error::from(io::ErrorKind::OutOfMemory)),
            _ => open_kind(k, 4, true),
        });
        assert_eq!(oom.unwrap_err().kind(), io::ErrorKind::OutOfMemory);
    }

    /// From a fresh user's review: a kind this platform lacks, later in
    /// the order, replaced the real error of one that failed with a bare
    /// "unsupported"; alone, it did not say which kind.
    #[test]
    fn a_lacking_kind_does_not_hide_why_another_failed() {
        let (have, lack) = if BackendKind::available().contains(&BackendKind::Epoll) {
            (BackendKind::Epoll, BackendKind::Kqueue)
        } else if BackendKind::available().contains(&BackendKind::Kqueue) {
            (BackendKind::Kqueue, BackendKind::Epoll)
        } else {
            return;
        };
        let e = probe(&[have, lack], |k, _| {
            if k == have {
                Err(io::Error::from_raw_os_error(libc::EPERM))
            } else {
                open_kind(k, 4, true)
            }
        })
        .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
        let e = Auto::open_first(&[lack], 4).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
        assert_eq!(
            e.to_string(),
            format!("{lack} is not available on this platform")
        );
    }

    /// The zero-timeout wait at opening is there to fall back on; the last
    /// kind this platform has is opened without it (a system call every
    /// selector's creation paid for nothing; CHANGELOG, "Opening").
    #[test]
    fn waits_at_opening_only_while_a_fallback_remains() {
        let have = BackendKind::available();
        let lack = [BackendKind::Epoll, BackendKind::Kqueue]
            .into_iter()
            .find(|k| !have.contains(k));
        let mut order: Vec<BackendKind> = lack.into_iter().collect();
        order.extend_from_slice(have);
        if let Some(lack) = lack {
            order.push(lack);
        }
        let mut asked = Vec::new();
        let e = probe(&order, |k, fallback| {
            asked.push((k, fallback));
            Err(enosys())
        })
        .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSYS));
        // Every kind but the last this platform has may fall back.
        let last_had = order.iter().rposition(|k| have.contains(k)).unwrap();
        let expected: Vec<_> = order
            .iter()
            .enumerate()
            .map(|(i, &k)| (k, i < last_had))
            .collect();
        assert_eq!(asked, expected);
        // Alone, a kind is opened without a wait, and works.
        let mut alone = Vec::new();
        let b = probe(&have[..1], |k, fallback| {
            alone.push(fallback);
            open_kind(k, 4, fallback)
        })
        .unwrap();
        assert_eq!((b.kind(), alone), (have[0], vec![false]));
    }

    #[test]
    fn reports_the_last_error_when_nothing_works() {
        let e = probe(&[BackendKind::Poll, BackendKind::Select], |_, _| {
            Err(enosys())
        })
        .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSYS));
        let e = probe(&[], |_, _| Err(enosys())).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
    }

    #[test]
    fn the_default_order_picks_the_best_here() {
        let b = Auto::open(16).unwrap();
        assert_eq!(b.kind(), BackendKind::available()[0]);
        let b = Auto::open_first(&[BackendKind::Select, BackendKind::Poll], 16).unwrap();
        assert_eq!(b.kind(), BackendKind::Select);
        assert_eq!(b.fd_limit(), Some(crate::sys::FD_SETSIZE));
    }
}
