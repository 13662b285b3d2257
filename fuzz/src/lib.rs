//! Fuzz targets for selectors2, as a library so that the targets stay thin
//! and the corpora can be replayed on stable (`cargo test --manifest-path
//! fuzz/Cargo.toml`) without libFuzzer.
//!
//! * [`key_map`]: register / modify / unregister / get_key on a small
//!   `Selector<SimBackend, u16, 8>`, with injected failures and closed fds,
//!   against a `BTreeMap` model.
//! * [`selector_sim`]: the whole `Selector<SimBackend, u32, 16>` with
//!   readiness changes, injected failures, split reports and report order,
//!   selecting into a `Ready<u32, 3>`, against the same model plus a
//!   fairness window.
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

#[cfg(test)]
mod replay;
