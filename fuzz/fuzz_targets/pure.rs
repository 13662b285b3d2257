//! Properties of `Readiness::to_events` (and, once the std adapter's
//! timeout module is public, of the timeout conversion): see
//! `selectors2_fuzz::pure`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use selectors2_fuzz::pure::{Input, run};

fuzz_target!(|input: Input| run(input));
