//! Scale-out, as part of `cargo bench`: runs `examples/scale_out.rs`, the
//! load driver, against `examples/sharded_echo.rs`, one selector per thread
//! with `SO_REUSEPORT` listeners, built on selectors2's `DefaultSelector`
//! (level-triggered: one read per ready socket) and, in the same run, the
//! same server written the idiomatic mio way (edge-triggered: accept and
//! read until `WouldBlock`). About 9,900 concurrent loopback connections
//! (RLIMIT_NOFILE's hard limit, both ends in this process), a fixed number
//! of round trips, throughput and p50/p99 latency.
//!
//! Not a criterion bench: one long run per server says more than many
//! short samples. `cargo bench -p selectors2-bench --bench scale_out`;
//! `SELECTORS2_BENCH_QUICK=1` for the quick mode. A name filter given to
//! `cargo bench -- NAME` skips it unless NAME is in `scale_out`.

#[path = "../examples/scale_out.rs"]
#[allow(dead_code)]
mod scale_out;

fn main() -> std::io::Result<()> {
    // cargo passes `--bench`; anything else that is not a flag is a filter.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if !filters.is_empty() && !filters.iter().any(|f| "scale_out".contains(f.as_str())) {
        return Ok(());
    }
    scale_out::run().map(drop)
}
