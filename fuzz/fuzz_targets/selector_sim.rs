//! The whole `Selector<SimBackend, u32, 16>` (readiness changes, injected
//! failures, split reports, report order, kernel-like batches, selects into
//! a `Ready<_, 3>`) against a model with a fairness window: see
//! `selectors2_fuzz::selector_sim`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use selectors2_fuzz::selector_sim::run;
use selectors2_fuzz::sim::SimOp;

fuzz_target!(|ops: Vec<SimOp<u32>>| run(&ops));
