//! `backends_agree` opens selectors, socket pairs and pipes for every
//! input: replaying its corpus many times must leave the process with as
//! many open fds as before. A test binary of its own, so no other test
//! opens files meanwhile.

use std::fs;
use std::path::PathBuf;

use arbitrary::{Arbitrary, Unstructured};
use selectors2_fuzz::backends_agree::{Op, run};

use selectors2_tests::open_fd_count as open_fds;

#[test]
fn backends_agree_closes_every_fd() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus/backends_agree");
    let inputs: Vec<Vec<u8>> = fs::read_dir(&dir)
        .expect("corpus dir")
        .map(|e| fs::read(e.expect("entry").path()).expect("corpus file"))
        .collect();
    assert!(!inputs.is_empty());
    let replay_all = || {
        for bytes in &inputs {
            if let Ok(ops) = Vec::<Op>::arbitrary_take_rest(Unstructured::new(bytes)) {
                run(&ops);
            }
        }
    };
    replay_all();
    let before = open_fds();
    assert!(before > 0, "no /proc/self/fd");
    for _ in 0..20 {
        replay_all();
    }
    assert_eq!(open_fds(), before, "fds leaked across inputs");
}
