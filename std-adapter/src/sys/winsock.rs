//! What the two Windows backends (and the `Waker`) share: Winsock's
//! initialisation, the sleep that stands in for a wait with nothing to
//! watch, making a socket non-inheritable, asking whether a handle still
//! names a socket, and turning a registered fd back into its socket. The
//! other direction, the checked conversion from a socket handle to the
//! core's fd type, is `Selectable`'s, in `selectors2-core`.
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

/// Whether `socket` still names a socket.
pub(crate) fn is_socket(socket: SOCKET) -> bool {
    let mut ty = 0i32;
    let mut len = size_of::<i32>() as i32;
    // SAFETY: `ty` and `len` are valid out-pointers of the sizes given;
    // Winsock validates the handle and fails with WSAENOTSOCK for one that
    // is not (or no longer) a socket.
    let r = unsafe { getsockopt(socket, SOL_SOCKET, SO_TYPE, (&raw mut ty).cast(), &mut len) };
    // SAFETY: no preconditions; reads this thread's last error.
    r != SOCKET_ERROR || unsafe { WSAGetLastError() } != WSAENOTSOCK
}

/// The socket an fd (non-negative: the selector checked) names.
#[inline]
pub(crate) fn socket_of_fd(fd: RawFd) -> usize {
    fd as u32 as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_convert_checked() {
        assert_eq!(socket_of_fd(0x1234), 0x1234);
    }
}
