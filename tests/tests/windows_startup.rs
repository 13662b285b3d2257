//! A selector built and used before the process creates any socket (so
//! before std initialises Winsock) must still work: the backends call
//! `WSAStartup` themselves. Its own test binary, with one test, so that no
//! other test has created a socket first.
#![cfg(windows)]

use std::time::Duration;

use selectors2::{EVENT_READ, PollSelector, Ready, SelectSelector};

#[test]
fn selectors_work_before_any_socket() {
    // A number that is no socket: Winsock answers for it only once
    // initialised (WSANOTINITIALISED otherwise).
    let not_a_socket = 0x7ff0;
    let mut ready: Ready<usize, 4> = Ready::new();
    let mut poll = PollSelector::<usize>::with_fixed_capacity(4).unwrap();
    poll.register(not_a_socket, EVENT_READ, 0).unwrap();
    poll.select(&mut ready, Some(Duration::ZERO)).unwrap();
    let mut sel = SelectSelector::<usize>::with_fixed_capacity(4).unwrap();
    sel.register(not_a_socket, EVENT_READ, 0).unwrap();
    sel.select(&mut ready, Some(Duration::ZERO)).unwrap();
    // Both report it as invalid (READ), rather than failing.
    assert_eq!(ready.len(), 1);
}
