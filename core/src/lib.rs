//! The allocation-free `#![no_std]` core of **selectors2**: Python's
//! `selectors` API (register a file descriptor with `READ`/`WRITE` interest
//! and some data, then `select(timeout)` returns the ready keys) over a
//! pluggable readiness [`Backend`].
//!
//! This crate owns everything that is pure logic: the fixed-capacity key
//! table ([`KeyMap`]), the event masks ([`Events`], [`Readiness`] and the one
//! translation between them), validation, merging duplicate reports, fair
//! selection when more fds are ready than the caller's [`Ready`] holds, and
//! the [`Selector`] state machine. It has no `std`, no `alloc` and no
//! `unsafe`, and runs on bare metal. The `selectors2` crate plugs epoll,
//! kqueue, poll and select in; [`SimBackend`] simulates readiness for tests
//! and fuzzing; your own [`Backend`] can plug in anything else.
//!
//! ```
//! use core::time::Duration;
//! use selectors2_core::{EVENT_READ, Readiness, Ready, Selector, SimBackend};
//!
//! // Capacity 16 keys, data is a `u8` token.
//! let mut sel: Selector<SimBackend, u8, 16> = Selector::new(SimBackend::new());
//! sel.register(3, EVENT_READ, 1).unwrap();
//! sel.backend_mut().set_readiness(3, Readiness::READABLE);
//!
//! let mut ready: Ready<u8, 8> = Ready::new();
//! assert_eq!(sel.select(&mut ready, Some(Duration::ZERO)).unwrap(), 1);
//! let (key, events) = ready.iter().next().unwrap();
//! assert_eq!((key.fd, key.data, events), (3, 1, EVENT_READ));
//! ```
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(test)]
extern crate std;

mod backend;
mod error;
mod events;
mod key_map;
mod ready;
mod selector;
mod sim;

pub use backend::{Backend, Registration};
pub use error::Error;
pub use events::{EVENT_READ, EVENT_WRITE, Events, Readiness};
pub use key_map::{Iter as KeyIter, KeyMap, SelectorKey, Slot};
pub use ready::{Iter as ReadyIter, Ready};
pub use selector::Selector;
pub use sim::{ReportOrder, SIM_FD_LIMIT, SimBackend, SimCalls, SimError};

/// A file descriptor number, as the OS hands it out (`int` in C). The core
/// uses a plain `i32` so that it builds where `libc` has nothing to offer.
pub type RawFd = i32;

/// `Duration`, re-exported so that no_std users need not name `core::time`.
pub use core::time::Duration;
