//! selectors2's comparison benchmarks and their tooling, kept out of the
//! library's package so that its quick start builds no benchmark
//! dependency. Nothing here is a library: see `benches/` (criterion, and
//! `profile.rs` for callgrind) and `examples/` (`bench_table`, the
//! scale-out driver `scale_out` and its server `sharded_echo`).
