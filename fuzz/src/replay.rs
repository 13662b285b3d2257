//! Replays every committed corpus file through its target, on stable and
//! without libFuzzer, decoding it exactly as `fuzz_target!` does
//! (`arbitrary_take_rest`; inputs too short or that fail to decode are
//! skipped, as libFuzzer skips them).

use std::fs;
use std::path::PathBuf;

use arbitrary::{Arbitrary, Unstructured};

fn replay<'a, T: Arbitrary<'a>>(target: &str, bytes: &'a [u8], run: impl Fn(T)) -> bool {
    if bytes.len() < T::size_hint(0).0 {
        return false;
    }
    match T::arbitrary_take_rest(Unstructured::new(bytes)) {
        Ok(input) => {
            run(input);
            true
        }
        Err(e) => {
            eprintln!("{target}: input does not decode ({e}), skipped");
            false
        }
    }
}

/// The committed inputs of `target`, read while holding
/// [`low_fds`](selectors2_tests::low_fds): the files opened here must not
/// take a number that `backends_agree`, running alone, has just freed.
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let _shared = selectors2_tests::low_fds();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seed in {}", dir.display());
    files
        .into_iter()
        .map(|p| {
            let bytes = fs::read(&p).expect("corpus file");
            (p, bytes)
        })
        .collect()
}

#[test]
fn key_map_corpus() {
    let mut ran = 0;
    for (path, bytes) in corpus("key_map") {
        eprintln!("{}", path.display());
        ran += usize::from(replay(
            "key_map",
            &bytes,
            |ops: Vec<crate::sim::SimOp<u16>>| crate::key_map::run(&ops),
        ));
    }
    assert!(ran > 0);
}

#[test]
fn selector_sim_corpus() {
    let mut ran = 0;
    for (path, bytes) in corpus("selector_sim") {
        eprintln!("{}", path.display());
        ran += usize::from(replay(
            "selector_sim",
            &bytes,
            |ops: Vec<crate::sim::SimOp<u32>>| crate::selector_sim::run(&ops),
        ));
    }
    assert!(ran > 0);
}

#[test]
fn pure_corpus() {
    let mut ran = 0;
    for (path, bytes) in corpus("pure") {
        eprintln!("{}", path.display());
        ran += usize::from(replay("pure", &bytes, crate::pure::run));
    }
    assert!(ran > 0);
}

#[test]
fn backends_agree_corpus() {
    let mut ran = 0;
    for (path, bytes) in corpus("backends_agree") {
        eprintln!("{}", path.display());
        ran += usize::from(replay(
            "backends_agree",
            &bytes,
            |ops: Vec<crate::backends_agree::Op>| crate::backends_agree::run(&ops),
        ));
    }
    assert!(ran > 0);
}

/// `to_events` has only 2^24 inputs: check them all (on stable, in a few
/// seconds in release, longer in debug; a sample in debug).
#[test]
fn pure_exhaustive() {
    let step = if cfg!(debug_assertions) { 7 } else { 1 };
    for readiness in (0..=u8::MAX).step_by(step) {
        for other in (0..=u8::MAX).step_by(step) {
            for interest in 0..=u8::MAX {
                crate::pure::to_events(readiness, other, interest);
            }
        }
    }
}

/// The timeout conversions at every edge: around each unit, where
/// `to_millis` saturates, and where a `timespec` does.
#[test]
fn pure_timeout_edges() {
    use core::time::Duration;
    let ms_limit = i32::MAX as u64 / 1000;
    let ts_limit = i64::MAX as u64;
    let mut secs = vec![0, 1, 2, u64::from(u32::MAX), u64::MAX - 1, u64::MAX];
    for limit in [ms_limit, ts_limit] {
        secs.extend([limit - 1, limit, limit + 1]);
    }
    let mut nanos = vec![0, 999_999_999];
    for unit in [1_000, 1_000_000] {
        for k in [1, 2, 483, 647, 648, 999, 1000 - 1] {
            let at = k * unit;
            nanos.extend([at - 1, at, at + 1]);
        }
    }
    nanos.extend([998_999_999, 999_999_000, 999_999_001]);
    nanos.retain(|&n| n < 1_000_000_000);
    for &s in &secs {
        for &n in &nanos {
            crate::pure::timeout(Duration::new(s, n));
        }
    }
    for ms in [
        i32::MIN,
        -2,
        -1,
        0,
        1,
        999,
        1000,
        1001,
        i32::MAX - 1,
        i32::MAX,
    ] {
        crate::pure::millis(ms);
    }
}
