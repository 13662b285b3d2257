#![doc = include_str!("../README.md")]
#![no_std]
#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

#[cfg(any(test, feature = "std"))]
extern crate std;

mod backend;
#[cfg(feature = "embedded-io")]
#[cfg_attr(docsrs, doc(cfg(feature = "embedded-io")))]
pub mod embedded_io;
mod error;
mod events;
mod fixed;
mod key_map;
mod ready;
mod selectable;
mod selector;
mod sim;

pub use backend::{Backend, BackendSlot, Registration, Tag};
pub use error::Error;
pub use events::{EVENT_READ, EVENT_WRITE, Events, Readiness};
pub use fixed::{Fixed, Sources};
pub use key_map::{Iter as KeyIter, KeyMap, SelectorKey, Slot};
pub use ready::{Iter as ReadyIter, Ready};
pub use selectable::Selectable;
pub use selector::{Selector, SelectorInner};
pub use sim::{ReportOrder, SIM_FD_LIMIT, SimBackend, SimCalls, SimError};

/// A file descriptor number, as the OS hands it out (`int` in C). The core
/// uses a plain `i32` so that it builds where `libc` has nothing to offer.
pub type RawFd = i32;
