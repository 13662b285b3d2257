//! Prints the results of `cargo bench -p selectors2-bench` as Markdown: for each
//! scenario, raw epoll through rustix in nanoseconds per iteration, and
//! every other contender as a ratio to it (below 1.00x is faster); then
//! the scale-out table, and the targets of the benchmark issue, checked.
//!
//! ```text
//! cargo bench -p selectors2-bench            # or SELECTORS2_BENCH_QUICK=1 cargo bench -p selectors2-bench
//! cargo run -p selectors2-bench --example bench_table
//! ```
//!
//! It reads criterion's `*/new/benchmark.json` and `estimates.json` (the
//! median of the samples) and `scale_out.json` under `target/criterion`
//! (or `$CRITERION_HOME`). A contender that sat out a scenario shows `n/a`.

#[path = "scale_out.rs"]
#[allow(dead_code)]
mod scale_out;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::Value;

/// Contenders: criterion id and column title, in the table's order.
const CONTENDERS: [(&str, &str); 8] = [
    ("rustix_epoll", "raw epoll, rustix (ns)"),
    ("libc_epoll", "raw epoll, libc"),
    ("s2_epoll", "EpollSelector"),
    ("s2_poll", "PollSelector"),
    ("s2_select", "SelectSelector"),
    ("s2_default", "DefaultSelector"),
    ("mio", "mio"),
    ("polling", "polling"),
];
const BASE: &str = "rustix_epoll";

/// Scenarios: criterion group and row title, in the table's order.
const SCENARIOS: [(&str, &str); 5] = [
    ("ping_pong", "ping-pong"),
    ("modify", "modify churn"),
    ("reg_unreg", "register+unregister"),
    ("level_scan", "level scan, 16 ready"),
    ("scaling", "scaling, 1 ready"),
];

/// (group, N) -> contender -> median ns.
type Results = BTreeMap<(usize, u64), BTreeMap<String, f64>>;

fn main() -> std::io::Result<()> {
    let home = scale_out::criterion_home();
    let mut results = Results::new();
    let mut newest = SystemTime::UNIX_EPOCH;
    collect(&home, &mut results, &mut newest);
    if results.is_empty() {
        eprintln!(
            "no results under {}: run `cargo bench -p selectors2-bench` first",
            home.display()
        );
        std::process::exit(1);
    }
    let mut out = String::new();
    let _ = writeln!(out, "Measured {} on {}.\n", utc(newest), machine());
    table(&mut out, &results);
    if let Ok(text) = std::fs::read_to_string(home.join("scale_out.json")) {
        scale_out_table(&mut out, &text);
    }
    targets(&mut out, &results);
    print!("{out}");
    Ok(())
}

/// Finds every `new/benchmark.json` under `dir`.
fn collect(dir: &Path, results: &mut Results, newest: &mut SystemTime) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|n| n == "new") {
            read_one(&path, results, newest);
        } else {
            collect(&path, results, newest);
        }
    }
}

fn read_json(path: PathBuf) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn read_one(new: &Path, results: &mut Results, newest: &mut SystemTime) -> Option<()> {
    let bench = read_json(new.join("benchmark.json"))?;
    let estimates = read_json(new.join("estimates.json"))?;
    let group = bench["group_id"].as_str()?;
    let function = bench["function_id"].as_str()?;
    let n: u64 = bench["value_str"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let median = estimates["median"]["point_estimate"].as_f64()?;
    let scenario = SCENARIOS.iter().position(|(g, _)| *g == group)?;
    if let Ok(t) = std::fs::metadata(new.join("estimates.json")).and_then(|m| m.modified()) {
        *newest = (*newest).max(t);
    }
    results
        .entry((scenario, n))
        .or_default()
        .insert(function.to_string(), median);
    Some(())
}

fn table(out: &mut String, results: &Results) {
    let _ = write!(out, "| scenario | N |");
    for (_, title) in CONTENDERS {
        let _ = write!(out, " {title} |");
    }
    let _ = write!(out, "\n| --- | ---: |");
    for _ in CONTENDERS {
        let _ = write!(out, " ---: |");
    }
    out.push('\n');
    for (&(scenario, n), row) in results {
        let n = if n == 0 {
            "-".to_string()
        } else {
            n.to_string()
        };
        let _ = write!(out, "| {} | {n} |", SCENARIOS[scenario].1);
        let base = row.get(BASE).copied();
        for (id, _) in CONTENDERS {
            let cell = match (row.get(id), base) {
                (Some(&t), _) if id == BASE => format!("{t:.0}"),
                (Some(&t), Some(b)) => format!("{:.2}x", t / b),
                _ => "n/a".to_string(),
            };
            let _ = write!(out, " {cell} |");
        }
        out.push('\n');
    }
    out.push('\n');
}

fn scale_out_table(out: &mut String, text: &str) {
    let Ok(Value::Array(runs)) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let Some(first) = runs.first() else { return };
    let base = first["per_sec"].as_f64().unwrap_or(f64::NAN);
    let _ = writeln!(
        out,
        "Scale-out (`benches/examples/sharded_echo.rs`, driven by `benches/examples/scale_out.rs`): {} concurrent loopback \
         connections, {} shards, {} round trips of 16 bytes, {} in flight.\n",
        first["conns"], first["threads"], first["round_trips"], first["inflight"]
    );
    let _ = writeln!(
        out,
        "| server | round trips/s | vs selectors2 | p50 (µs) | p99 (µs) |"
    );
    let _ = writeln!(out, "| --- | ---: | ---: | ---: | ---: |");
    for r in &runs {
        let per_sec = r["per_sec"].as_f64().unwrap_or(f64::NAN);
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.2}x | {:.1} | {:.1} |",
            r["server"].as_str().unwrap_or("?"),
            per_sec,
            per_sec / base,
            r["p50_us"].as_f64().unwrap_or(f64::NAN),
            r["p99_us"].as_f64().unwrap_or(f64::NAN),
        );
    }
    out.push('\n');
}

/// Median ns of `id` in scenario `group` at `n` (0 for scenarios without N).
fn get(results: &Results, group: &str, n: u64, id: &str) -> Option<f64> {
    let s = SCENARIOS.iter().position(|(g, _)| *g == group)?;
    results.get(&(s, n))?.get(id).copied()
}

fn targets(out: &mut String, results: &Results) {
    let _ = writeln!(out, "Targets:\n");
    let mut check = |ok: bool, what: String| {
        let _ = writeln!(out, "- {} {what}", if ok { "[x]" } else { "[ ] MISSED:" });
    };
    let mut cases: Vec<(&str, u64)> = vec![("modify", 0), ("reg_unreg", 0)];
    for &(scenario, n) in results.keys() {
        if SCENARIOS[scenario].0 == "ping_pong" {
            cases.insert(cases.len() - 2, ("ping_pong", n));
        }
    }
    for &(group, n) in &cases {
        let (Some(s2), Some(raw)) = (
            get(results, group, n, "s2_epoll"),
            get(results, group, n, BASE),
        ) else {
            continue;
        };
        let label = if n == 0 {
            group.to_string()
        } else {
            format!("{group}/{n}")
        };
        check(
            s2 / raw <= 1.05,
            format!(
                "{label}: EpollSelector {:.3}x raw rustix epoll (target <= 1.05x)",
                s2 / raw
            ),
        );
        if let Some(libc) = get(results, group, n, "libc_epoll") {
            check(
                s2 < libc,
                format!(
                    "{label}: EpollSelector {:.3}x raw libc epoll (target < 1)",
                    s2 / libc
                ),
            );
        }
    }
    for (&(scenario, n), row) in results {
        let Some(&s2) = row.get("s2_epoll") else {
            continue;
        };
        for peer in ["mio", "polling"] {
            if let Some(&p) = row.get(peer) {
                let label = SCENARIOS[scenario].0;
                let label = if n == 0 {
                    label.to_string()
                } else {
                    format!("{label}/{n}")
                };
                check(
                    s2 <= p,
                    format!("{label}: EpollSelector {:.3}x {peer} (target <= 1)", s2 / p),
                );
            }
        }
    }
    for id in ["s2_epoll", BASE] {
        if let (Some(small), Some(large)) = (
            get(results, "scaling", 10, id),
            get(results, "scaling", 10_000, id),
        ) {
            let r = large / small;
            let name = if id == BASE {
                "raw rustix epoll (for reference)"
            } else {
                "EpollSelector"
            };
            check(
                (r - 1.0).abs() <= 0.10,
                format!("{name}: select, 1 ready of 10,000 vs of 10: {r:.3}x (target within 10%)"),
            );
        }
    }
    for (id, name) in [("s2_poll", "PollSelector"), ("s2_select", "SelectSelector")] {
        let points: Vec<(u64, f64)> = [10u64, 100, 1_000, 10_000]
            .iter()
            .filter_map(|&n| Some((n, get(results, "scaling", n, id)?)))
            .collect();
        if points.len() < 3 {
            continue;
        }
        let (n0, t0) = points[0];
        let slopes: Vec<String> = points[1..]
            .iter()
            .map(|&(n, t)| format!("{:.2} ns/fd to N={n}", (t - t0) / (n - n0) as f64))
            .collect();
        let last = points.len() - 1;
        let per_fd = |i: usize| (points[i].1 - t0) / (points[i].0 - n0) as f64;
        let ratio = per_fd(last) / per_fd(last - 1);
        check(
            (0.5..=2.0).contains(&ratio),
            format!(
                "{name}: linear in N ({}; the last two within 2x of each other)",
                slopes.join(", ")
            ),
        );
    }
}

/// `YYYY-MM-DD HH:MM UTC` of `t`.
fn utc(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3_600,
        rem % 3_600 / 60
    )
}

/// CPU model, core count and kernel.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "an unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{model}, {cores} cores, Linux {}", kernel.trim())
}
