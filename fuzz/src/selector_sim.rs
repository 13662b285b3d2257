//! `selector_sim`: [`SimOp`]s on a `Selector<SimBackend, u32, 16>`
//! selecting into a `Ready<u32, 3>`, checked by the shared driver
//! ([`crate::sim`]) against the model plus a fairness window.
//!
//! Its focus is `select`: with room for 16 keys, more fds are ready than
//! `Ready` holds (and, with split reports under kernel-like batches, more
//! reports than a batch holds), so every result's contents (one entry per
//! ready fd, each with the model's key and `Readiness::to_events` of its
//! interest) and the fairness window across consecutive selects are
//! checked at scale. Every step of `key_map` (the table's results and
//! exact errors, `get_key`) is checked here too.

use crate::sim::{self, SimOp};

/// The table's capacity.
pub const CAPACITY: usize = 16;

/// Runs `ops` on a fresh `Selector<SimBackend, u32, CAPACITY>` and the
/// model, checking after each step.
pub fn run(ops: &[SimOp<u32>]) {
    sim::run::<u32, CAPACITY>(ops);
}
