//! The same operation sequence on real socket pairs and pipes through
//! epoll, poll, select and `DefaultSelector`: every result and every ready
//! set must agree. See `selectors2_fuzz::backends_agree`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use selectors2_fuzz::backends_agree::{Op, run};

fuzz_target!(|ops: Vec<Op>| run(&ops));
