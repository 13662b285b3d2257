//! Fuzz targets for selectors2, as a library so that the targets stay thin
//! and the corpora can be replayed on stable (`cargo test --manifest-path
//! fuzz/Cargo.toml`) without libFuzzer.
//!
//! * [`key_map`] and [`selector_sim`]: one step type ([`sim::SimOp`]:
//!   register / modify / unregister / get_key, readiness changes, injected
//!   failures, closed fds, split reports, report order, kernel-like
//!   batches, select) run by one driver ([`sim::run`]) against a
//!   `BTreeMap` model plus a fairness window, selecting into a
//!   `Ready<_, 3>`: `key_map` on a small `Selector<SimBackend, u16, 8>`
//!   (the table often full), `selector_sim` on a
//!   `Selector<SimBackend, u32, 16>` (more fds ready than `Ready` holds).
//! * [`pure`]: properties of `Readiness::to_events` and of the std
//!   adapter's timeout conversions.
//! * [`backends_agree`]: one operation sequence on real socket pairs and
//!   pipes through epoll, poll, select and `DefaultSelector`; every result
//!   and every ready set must agree.
//!
//! Each target module has a `run` function taking the structured input that
//! its `fuzz_target!` decodes with `arbitrary`; a model mismatch panics with
//! the step and both sides.

pub mod backends_agree;
pub mod input;
pub mod key_map;
pub mod model;
pub mod pure;
pub mod selector_sim;
pub mod sim;

#[cfg(test)]
mod replay;
