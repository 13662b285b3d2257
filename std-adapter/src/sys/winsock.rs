//! What the two Windows backends share: Winsock's initialisation, the
//! sleep that stands in for a wait with nothing to watch, the check that a
//! handle is a socket, and the socket an fd names.
#![allow(unsafe_code)] // system calls; each block has its SAFETY proof

use std::io;
use std::sync::OnceLock;
use std::time::Duration;

use windows_sys::Win32::Networking::WinSock::{
    SO_TYPE, SOCKET, SOCKET_ERROR, SOL_SOCKET, WSADATA, WSAENOTSOCK, WSAGetLastError, WSAStartup,
    getsockopt,
};

use crate::RawFd;

/// Initialises Winsock 2.2 once per process. std does so when it creates
/// its first socket, but a selector may be built (and waited on) before
/// any: WSAPoll and select would then fail with `WSANOTINITIALISED`. Never
/// undone (`WSACleanup`), like std's own.
pub(crate) fn startup() -> io::Result<()> {
    static STARTED: OnceLock<i32> = OnceLock::new();
    let code = *STARTED.get_or_init(|| {
        // SAFETY: `data` is a valid out-pointer for the call; WSAStartup
        // may be called any number of times (it counts).
        unsafe {
            let mut data: WSADATA = std::mem::zeroed();
            WSAStartup(0x0202, &mut data)
        }
    });
    match code {
        0 => Ok(()),
        // WSAStartup returns its error instead of setting the last error.
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// Waits out `timeout` with nothing to watch (WSAPoll and select both
/// refuse an empty call with `WSAEINVAL`): sleeps at least that long, for
/// ever if `None`.
pub(crate) fn sleep(timeout: Option<Duration>) {
    match timeout {
        Some(t) if t.is_zero() => {}
        Some(t) => std::thread::sleep(t),
        None => loop {
            std::thread::sleep(Duration::MAX);
        },
    }
}

/// Makes `socket` non-inheritable: child processes never get a copy.
/// std creates its sockets so already; this makes sure of it (an accepted
/// socket, say) for the `Waker`'s pair.
pub(crate) fn set_no_inherit(socket: &impl std::os::windows::io::AsRawSocket) -> io::Result<()> {
    use windows_sys::Win32::Foundation::{HANDLE_FLAG_INHERIT, SetHandleInformation};
    // SAFETY: a socket is a kernel handle; the borrow keeps it open for the
    // call, which only clears its inherit flag.
    let ok = unsafe {
        SetHandleInformation(socket.as_raw_socket() as usize as _, HANDLE_FLAG_INHERIT, 0)
    };
    if ok == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `SO_TYPE` of `socket`: a question every socket answers, and nothing
/// else does (Winsock fails it with `WSAENOTSOCK` for a file, an event or
/// a number that names no handle).
fn socket_type(socket: SOCKET) -> io::Result<i32> {
    let mut ty = 0i32;
    let mut len = size_of::<i32>() as i32;
    // SAFETY: `ty` and `len` are valid out-pointers of the sizes given;
    // Winsock validates the handle.
    let r = unsafe { getsockopt(socket, SOL_SOCKET, SO_TYPE, (&raw mut ty).cast(), &mut len) };
    if r == SOCKET_ERROR {
        // SAFETY: no preconditions; reads this thread's last error.
        Err(io::Error::from_raw_os_error(unsafe { WSAGetLastError() }))
    } else {
        Ok(ty)
    }
}

/// For `register`: the socket `fd` names, or why it cannot be watched.
/// WSAPoll and select watch sockets only; a handle that is not one would
/// otherwise be accepted, then reported on every select with nothing to
/// read or write. The error is Winsock's own,
/// `WSAENOTSOCK` ("an operation was attempted on something that is not a
/// socket"), as Python's `selectors` raises on Windows.
pub(crate) fn check_socket(fd: RawFd) -> io::Result<SOCKET> {
    let socket = socket_of_fd(fd);
    socket_type(socket).map(|_| socket)
}

/// Whether `socket` still names a socket.
pub(crate) fn is_socket(socket: SOCKET) -> bool {
    match socket_type(socket) {
        Ok(_) => true,
        Err(e) => e.raw_os_error() != Some(WSAENOTSOCK),
    }
}

/// The socket an fd (non-negative: the selector checked) names: the
/// inverse of the core's `Selectable` conversion of a socket handle,
/// which keeps the handles that fit in an `i32` (Windows keeps them 32-bit
/// significant) and turns the others into -1, refused before this.
#[inline]
pub(crate) fn socket_of_fd(fd: RawFd) -> SOCKET {
    fd as u32 as usize
}

/// Open sockets, for the backends' unit tests: `register` refuses any
/// other handle.
#[cfg(test)]
pub(crate) fn test_sockets(n: usize) -> (Vec<std::net::UdpSocket>, Vec<RawFd>) {
    use crate::Selectable;
    let sockets: Vec<_> = (0..n)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let fds = sockets.iter().map(|s| s.raw_fd()).collect();
    (sockets, fds)
}

#[cfg(test)]
mod tests {
    use std::os::windows::io::{AsRawSocket, RawSocket};

    use super::*;
    use crate::Selectable;

    /// Every fd the selector can hold names the socket it came from, and
    /// back: the handles of real sockets, and the extremes of the range.
    #[test]
    fn handles_convert_checked() {
        let (sockets, fds) = test_sockets(3);
        for (s, &fd) in sockets.iter().zip(&fds) {
            assert!(fd >= 0);
            assert_eq!(socket_of_fd(fd) as RawSocket, s.as_raw_socket());
            assert_eq!(check_socket(fd).unwrap() as RawSocket, s.as_raw_socket());
        }
        for fd in [0, 1, 0x1234, 0x7fff_0000, RawFd::MAX] {
            let socket = socket_of_fd(fd);
            assert_eq!((socket as RawSocket).raw_fd(), fd, "{fd:#x}");
        }
        // A handle beyond an i32 has no fd: -1, which `register` refuses
        // before it gets here.
        for handle in [RawFd::MAX as RawSocket + 1, u64::MAX] {
            assert_eq!(handle.raw_fd(), -1, "{handle:#x}");
        }
    }

    /// What `register` refuses: a number that names nothing, a file.
    #[test]
    fn only_sockets_pass_the_check() {
        startup().unwrap();
        let (_sockets, fds) = test_sockets(1);
        assert!(check_socket(fds[0]).is_ok() && is_socket(socket_of_fd(fds[0])));
        let file = std::fs::File::open(std::env::current_exe().unwrap()).unwrap();
        let file_fd = {
            use std::os::windows::io::AsRawHandle;
            file.as_raw_handle() as usize as RawFd
        };
        for fd in [file_fd, 0x7fff_fff0] {
            let err = check_socket(fd).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(WSAENOTSOCK), "{fd:#x}: {err}");
            assert!(!is_socket(socket_of_fd(fd)));
        }
    }
}
