//! Properties of `Readiness::to_events` and of the std adapter's timeout
//! conversions: see `selectors2_fuzz::pure`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use selectors2_fuzz::pure::{Input, run};

fuzz_target!(|input: Input| run(input));
