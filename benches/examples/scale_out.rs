//! Scale-out: the load driver for `examples/sharded_echo.rs`.
//!
//! In one process and one run, for the selectors2 server and then the mio
//! server (each with one shard per core, `SO_REUSEPORT` listeners on one
//! loopback port):
//!
//! 1. raises RLIMIT_NOFILE's soft limit to the hard one and opens as many
//!    concurrent loopback connections as it allows, both ends counted
//!    (about 9,900 with the 20,000 fds of these machines), and keeps them
//!    all open;
//! 2. drives a fixed number of 16-byte round trips over them, the
//!    connections taken in turn, a fixed number in flight at once;
//! 3. reports throughput (round trips per second) and p50/p99 latency (from
//!    the write of a request to the read of its last echoed byte);
//!
//! and repeats that a few times, alternating which server goes first,
//! reporting each server's median round.
//!
//! The driver is the same for both servers: one thread on raw epoll
//! (rustix), level-triggered. It shares the two cores with the shards, so
//! the numbers compare the servers with each other, not with a network.
//!
//! ```text
//! cargo run --release -p selectors2-bench --example scale_out
//! ```
//!
//! Environment: `SELECTORS2_BENCH_QUICK=1` (fewer round trips),
//! `SELECTORS2_SCALE_CONNS`, `SELECTORS2_SCALE_ROUND_TRIPS`,
//! `SELECTORS2_SCALE_INFLIGHT`, `SELECTORS2_SCALE_THREADS`,
//! `SELECTORS2_SCALE_ROUNDS`. The results are
//! also written to `target/criterion/scale_out.json`, where
//! `examples/bench_table.rs` reads them. `cargo bench` runs this too (the
//! `scale_out` bench).

#[path = "sharded_echo.rs"]
#[allow(dead_code)]
mod sharded_echo;

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rustix::event::{Timespec, epoll};
use rustix::io::Errno;
use sharded_echo::{Flavor, Shards};

/// Bytes per request (and per echo).
const MSG: usize = 16;
/// fds kept for the listeners, selectors, wakers and stdio.
const RESERVE_FDS: u64 = 256;
/// A run that makes no progress for this long has failed.
const STALL: Duration = Duration::from_secs(10);

/// What one run does.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Connections wanted (fewer if RLIMIT_NOFILE says so).
    pub conns: usize,
    /// Round trips driven, in total.
    pub round_trips: usize,
    /// Requests in flight at once (one per connection at most).
    pub inflight: usize,
    /// Server shards (threads).
    pub threads: usize,
    /// Runs per server (alternating which server goes first); the median
    /// run of each is reported.
    pub rounds: usize,
}

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok()?.parse().ok()
}

impl Config {
    /// The defaults (as many connections as fit, 500,000 round trips or
    /// 100,000 in quick mode, 128 in flight, one shard per core, 5 rounds
    /// or 3 in quick mode), each overridable from the environment.
    pub fn from_env() -> Config {
        let quick = std::env::var_os("SELECTORS2_BENCH_QUICK").is_some_and(|v| v != "0");
        let round_trips = if quick { 100_000 } else { 500_000 };
        Config {
            conns: env_usize("SELECTORS2_SCALE_CONNS").unwrap_or(usize::MAX),
            round_trips: env_usize("SELECTORS2_SCALE_ROUND_TRIPS").unwrap_or(round_trips),
            inflight: env_usize("SELECTORS2_SCALE_INFLIGHT").unwrap_or(128).max(1),
            threads: env_usize("SELECTORS2_SCALE_THREADS")
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
                .max(1),
            rounds: env_usize("SELECTORS2_SCALE_ROUNDS")
                .unwrap_or(if quick { 3 } else { 5 })
                .max(1),
        }
    }
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// `"selectors2"` or `"mio"`.
    pub server: &'static str,
    /// Server shards.
    pub threads: usize,
    /// Concurrent connections held open.
    pub conns: usize,
    /// Round trips completed.
    pub round_trips: usize,
    /// Requests in flight at once.
    pub inflight: usize,
    /// Seconds to open (and have accepted) every connection.
    pub connect_secs: f64,
    /// Round trips per second.
    pub per_sec: f64,
    /// Median latency, microseconds.
    pub p50_us: f64,
    /// 99th percentile latency, microseconds.
    pub p99_us: f64,
}

/// Where criterion keeps its results: `$CRITERION_HOME`, else
/// `criterion/` in cargo's target directory (found from this executable's
/// path, as cargo marks that directory with `CACHEDIR.TAG`).
pub fn criterion_home() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return home.into();
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    let exe = std::env::current_exe().unwrap_or_default();
    match exe.ancestors().find(|d| d.join("CACHEDIR.TAG").is_file()) {
        Some(target) => target.join("criterion"),
        None => PathBuf::from("target/criterion"),
    }
}

fn wait_accepted(shards: &Shards, at_least: usize) -> io::Result<()> {
    let deadline = Instant::now() + STALL;
    while shards.accepted() < at_least {
        if Instant::now() > deadline {
            let msg = format!(
                "the server accepted {} connections of {at_least}",
                shards.accepted()
            );
            return Err(io::Error::new(io::ErrorKind::TimedOut, msg));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    Ok(())
}

/// Opens up to `want` connections to `addr`, pacing itself on what the
/// server has accepted so the listen backlogs never overflow.
fn connect_all(shards: &Shards, want: usize) -> io::Result<Vec<TcpStream>> {
    let addr = shards.addr();
    let mut conns = Vec::with_capacity(want);
    while conns.len() < want {
        match TcpStream::connect(addr) {
            Ok(s) => conns.push(s),
            // Out of fds after all (the process held more than counted).
            Err(e)
                if e.raw_os_error() == Some(Errno::MFILE.raw_os_error()) && !conns.is_empty() =>
            {
                break;
            }
            Err(e) => return Err(e),
        }
        if conns.len() % 256 == 0 {
            wait_accepted(shards, conns.len().saturating_sub(1024))?;
        }
    }
    wait_accepted(shards, conns.len())?;
    for s in &conns {
        s.set_nonblocking(true)?;
        s.set_nodelay(true)?;
    }
    Ok(conns)
}

/// The driver's state: which connection has a request in flight, since when.
struct Flight {
    sent_at: Vec<Option<Instant>>,
    got: Vec<usize>,
    next: usize,
    sent: usize,
}

impl Flight {
    /// Sends a request on the next idle connection, in turn.
    fn send(&mut self, conns: &[TcpStream]) -> io::Result<()> {
        while self.sent_at[self.next].is_some() {
            self.next = (self.next + 1) % conns.len();
        }
        let i = self.next;
        self.next = (i + 1) % conns.len();
        let mut msg = [0u8; MSG];
        msg[..8].copy_from_slice(&(self.sent as u64).to_le_bytes());
        self.sent_at[i] = Some(Instant::now());
        // A fresh 16-byte request always fits an idle socket's send buffer.
        match rustix::io::write(conns[i].as_fd(), &msg) {
            Ok(MSG) => {}
            r => return Err(io::Error::other(format!("request write: {r:?}"))),
        }
        self.sent += 1;
        Ok(())
    }
}

/// Drives `cfg.round_trips` round trips over `conns`; returns the latencies
/// in nanoseconds and the elapsed time.
fn drive(conns: &[TcpStream], cfg: &Config) -> io::Result<(Vec<u64>, Duration)> {
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC)?;
    for (i, s) in conns.iter().enumerate() {
        epoll::add(
            &ep,
            s,
            epoll::EventData::new_u64(i as u64),
            epoll::EventFlags::IN,
        )?;
    }
    let empty = epoll::Event {
        flags: epoll::EventFlags::empty(),
        data: epoll::EventData::new_u64(0),
    };
    let mut events = vec![empty; 256];
    let mut flight = Flight {
        sent_at: vec![None; conns.len()],
        got: vec![0; conns.len()],
        next: 0,
        sent: 0,
    };
    let mut latencies = Vec::with_capacity(cfg.round_trips);
    let timeout = Timespec {
        tv_sec: 1,
        tv_nsec: 0,
    };
    let start = Instant::now();
    for _ in 0..cfg.inflight.min(cfg.round_trips).min(conns.len()) {
        flight.send(conns)?;
    }
    let mut progress = Instant::now();
    let mut buf = [0u8; MSG];
    while latencies.len() < cfg.round_trips {
        let n = match epoll::wait(&ep, &mut events[..], Some(&timeout)) {
            Ok(n) => n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        };
        if n == 0 && progress.elapsed() > STALL {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "no echo for 10 s"));
        }
        for ev in &events[..n] {
            let i = ev.data.u64() as usize;
            let want = MSG - flight.got[i];
            match rustix::io::read(conns[i].as_fd(), &mut buf[..want]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed a connection",
                    ));
                }
                Ok(k) => flight.got[i] += k,
                Err(Errno::AGAIN) | Err(Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
            if flight.got[i] < MSG {
                continue;
            }
            flight.got[i] = 0;
            let Some(sent_at) = flight.sent_at[i].take() else {
                return Err(io::Error::other("an echo nobody asked for"));
            };
            latencies.push(sent_at.elapsed().as_nanos() as u64);
            progress = Instant::now();
            if flight.sent < cfg.round_trips {
                flight.send(conns)?;
            }
        }
    }
    Ok((latencies, start.elapsed()))
}

/// One full run against one server.
pub fn run_one(flavor: Flavor, cfg: &Config) -> io::Result<Outcome> {
    let limit = selectors2_tests::raise_fd_limit();
    let fit = (limit.saturating_sub(RESERVE_FDS) / 2) as usize;
    let want = cfg.conns.min(fit).max(1);
    if cfg.conns != usize::MAX && want < cfg.conns {
        eprintln!(
            "note: scale_out: {} connections asked for, RLIMIT_NOFILE ({limit}) allows {want}",
            cfg.conns
        );
    }
    let shards = Shards::start(flavor, cfg.threads, SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let t = Instant::now();
    let conns = connect_all(&shards, want)?;
    let connect_secs = t.elapsed().as_secs_f64();
    let result = drive(&conns, cfg);
    let opened = conns.len();
    shards.stop()?;
    drop(conns);
    let (mut lat, elapsed) = result?;
    lat.sort_unstable();
    let pct = |p: usize| lat[(lat.len() * p / 100).min(lat.len() - 1)] as f64 / 1_000.0;
    Ok(Outcome {
        server: flavor.name(),
        threads: cfg.threads,
        conns: opened,
        round_trips: lat.len(),
        inflight: cfg.inflight,
        connect_secs,
        per_sec: lat.len() as f64 / elapsed.as_secs_f64(),
        p50_us: pct(50),
        p99_us: pct(99),
    })
}

/// Runs both servers `cfg.rounds` times, alternating which goes first,
/// keeps each server's median round (by throughput), prints a Markdown
/// table, and writes `scale_out.json` beside criterion's results.
pub fn run() -> io::Result<Vec<Outcome>> {
    let cfg = Config::from_env();
    let mut rounds: [Vec<Outcome>; 2] = [Vec::new(), Vec::new()];
    for round in 0..cfg.rounds {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let flavor = [Flavor::Selectors2, Flavor::Mio][i];
            let o = run_one(flavor, &cfg)?;
            eprintln!(
                "scale_out/{} round {}: {} connections open in {:.2} s; {} round trips, {:.0}/s, \
                 p50 {:.1} µs, p99 {:.1} µs",
                o.server,
                round + 1,
                o.conns,
                o.connect_secs,
                o.round_trips,
                o.per_sec,
                o.p50_us,
                o.p99_us
            );
            rounds[i].push(o);
        }
    }
    let outcomes: Vec<Outcome> = rounds
        .into_iter()
        .map(|mut r| {
            r.sort_by(|a, b| a.per_sec.total_cmp(&b.per_sec));
            r.swap_remove(r.len() / 2)
        })
        .collect();
    println!("{}", markdown(&outcomes));
    let json: Vec<_> = outcomes
        .iter()
        .map(|o| {
            serde_json::json!({
                "server": o.server, "threads": o.threads, "conns": o.conns,
                "round_trips": o.round_trips, "inflight": o.inflight,
                "connect_secs": o.connect_secs, "per_sec": o.per_sec,
                "p50_us": o.p50_us, "p99_us": o.p99_us,
            })
        })
        .collect();
    let dir = criterion_home();
    std::fs::create_dir_all(&dir)?;
    let text = serde_json::to_string_pretty(&json).map_err(io::Error::other)?;
    std::fs::write(dir.join("scale_out.json"), text)?;
    Ok(outcomes)
}

/// The scale-out results as a Markdown table, the first server as the base
/// of the ratios.
pub fn markdown(outcomes: &[Outcome]) -> String {
    let mut s = String::new();
    let Some(base) = outcomes.first() else {
        return s;
    };
    s.push_str(&format!(
        "Scale-out: {} connections, {} shards, {} round trips, {} in flight\n\n",
        base.conns, base.threads, base.round_trips, base.inflight
    ));
    s.push_str("| server | round trips/s | p50 (µs) | p99 (µs) | throughput vs selectors2 |\n");
    s.push_str("| --- | ---: | ---: | ---: | ---: |\n");
    for o in outcomes {
        s.push_str(&format!(
            "| {} | {:.0} | {:.1} | {:.1} | {:.2}x |\n",
            o.server,
            o.per_sec,
            o.p50_us,
            o.p99_us,
            o.per_sec / base.per_sec
        ));
    }
    s
}

#[allow(dead_code)] // not when benches/scale_out.rs or bench_table.rs include this file
fn main() -> io::Result<()> {
    run().map(drop)
}
