//! `key_map`: [`SimOp`]s on a small `Selector<SimBackend, u16, 8>`, checked
//! by the shared driver ([`crate::sim`]) against the `BTreeMap` model.
//!
//! Its focus is the key table: with room for only 8 keys, `Full` is
//! reached often, so the exact error variants (`Full`, `InvalidEvents`,
//! `InvalidFd`, `AlreadyRegistered`, `NotRegistered`, `Backend`), the
//! `get_key` and `get_map` results, injected failures and closed fds meet
//! a table at its limit. Every step the other `SimBackend` target takes
//! (readiness, report modes, `select` and its fairness) is checked here
//! too, on this smaller table.

use crate::sim::{self, SimOp};

/// The table's capacity: small, so that `Full` is reached often.
pub const CAPACITY: usize = 8;

/// Runs `ops` on a fresh `Selector<SimBackend, u16, CAPACITY>` and the
/// model, checking after each step.
pub fn run(ops: &[SimOp<u16>]) {
    sim::run::<u16, CAPACITY>(ops);
}
