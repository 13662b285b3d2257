//! The `SimBackend` steps on a small `Selector<SimBackend, u16, 8>`, so
//! that the table is often full, against a `BTreeMap` model: see
//! `selectors2_fuzz::key_map`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use selectors2_fuzz::key_map::run;
use selectors2_fuzz::sim::SimOp;

fuzz_target!(|ops: Vec<SimOp<u16>>| run(&ops));
