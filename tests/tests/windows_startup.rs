//! A selector built and used before the process creates any socket (so
//! before std initialises Winsock) must still work: the backends call
//! `WSAStartup` themselves. Its own test binary, with one test, so that no
//! other test has created a socket first.
#![cfg(windows)]

use std::time::Duration;

use selectors2::{EVENT_READ, Error, PollSelector, Ready, SelectSelector};

#[test]
fn selectors_work_before_any_socket() {
    // A number that is no socket: `register` asks Winsock, which answers
    // WSAENOTSOCK once initialised (WSANOTINITIALISED before).
    const WSAENOTSOCK: i32 = 10038;
    let not_a_socket = 0x7ff0;
    let mut ready: Ready<usize, 4> = Ready::new();
    let mut poll = PollSelector::<usize>::with_fixed_capacity(4).unwrap();
    let err = poll.register(not_a_socket, EVENT_READ, 0).unwrap_err();
    assert!(
        matches!(&err, Error::Io(e) if e.raw_os_error() == Some(WSAENOTSOCK)),
        "{err:?}"
    );
    poll.select(&mut ready, Some(Duration::ZERO)).unwrap();
    let mut sel = SelectSelector::<usize>::with_fixed_capacity(4).unwrap();
    let err = sel.register(not_a_socket, EVENT_READ, 0).unwrap_err();
    assert!(
        matches!(&err, Error::Io(e) if e.raw_os_error() == Some(WSAENOTSOCK)),
        "{err:?}"
    );
    sel.select(&mut ready, Some(Duration::ZERO)).unwrap();
    assert!(ready.is_empty());
}
