//! The whole `Selector` over `SimBackend` (readiness changes, injected
//! failures, split reports, report order, selects into a `Ready<_, 3>`)
//! against a model with a fairness window: see
//! `selectors2_fuzz::selector_sim`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use selectors2_fuzz::selector_sim::{Op, run};

fuzz_target!(|ops: Vec<Op>| run(&ops));
