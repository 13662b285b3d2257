//! Key-table operations on `Selector<SimBackend, u16, 8>` against a
//! `BTreeMap` model: see `selectors2_fuzz::key_map`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use selectors2_fuzz::key_map::{Op, run};

fuzz_target!(|ops: Vec<Op>| run(&ops));
