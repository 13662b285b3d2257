//! The example echo server against a client nobody here wrote the
//! readiness code of: `tests/python/echo_client.py`, on CPython's own
//! `selectors`. It checks every byte of 200 concurrent connections with
//! messages up to 256 KiB (partial writes) that half-close, 50 resets, a
//! burst of 500 short connections, and, with the server's fd limit
//! lowered, an accept storm that meets `EMFILE`.
//!
//! Needs `python3` (3.9 or newer) on `PATH`; `SELECTORS2_PYTHON` names
//! another interpreter.
//!
//! Unix only: the server's fd-limit and `EMFILE` paths are unix's, and
//! CI's Windows runs are Wine processes without a Windows Python.
#![cfg(unix)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Mutex;

/// One server at a time: each holds hundreds of fds, and the select
/// backend needs its fds below FD_SETSIZE.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

struct Server {
    child: Child,
    stdout: BufReader<ChildStdout>,
    addr: String,
}

impl Server {
    fn start(backend: &str, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_echo_server"))
            .arg(backend)
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the echo server");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let addr = line
            .strip_prefix("listening ")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("server said {line:?}"))
            .to_string();
        Server {
            child,
            stdout,
            addr,
        }
    }

    /// Stops the server (closes its stdin) and returns its stats line.
    fn stop(mut self) -> String {
        drop(self.child.stdin.take());
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "server exited with {status}");
        line
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client(addr: &str, extra: &[&str]) {
    let python = std::env::var("SELECTORS2_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/echo_client.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(addr)
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("run {python} (set SELECTORS2_PYTHON): {e}"));
    std::io::stdout().write_all(&out.stdout).unwrap();
    std::io::stderr().write_all(&out.stderr).unwrap();
    assert!(
        out.status.success(),
        "the Python client failed: {}",
        out.status
    );
}

fn every_byte_comes_back(backend: &str) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start(backend, &[]);
    client(&server.addr, &[]);
    let stats = server.stop();
    println!("{backend}: {stats}");
    assert!(stats.contains(" refused=0 "), "{stats}");
    assert!(
        !stats.contains(" partial_writes=0 "),
        "no partial write was exercised: {stats}"
    );
}

fn survives_running_out_of_fds(backend: &str) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // The listener, the selector, the waker, std{in,out,err} and the spare
    // fd leave room for a few dozen clients of the storm's 120.
    let server = Server::start(backend, &["--nofile", "48"]);
    client(&server.addr, &["--storm"]);
    let stats = server.stop();
    println!("{backend}: {stats}");
    let (errors, refused) = (stat(&stats, "accept_errors"), stat(&stats, "refused"));
    assert!(errors > 0, "the storm met no EMFILE: {stats}");
    // Each EMFILE sheds the waiting client; a server that only retried
    // would spin on its still-readable listener, failing thousands of times.
    assert!(errors <= refused + 8, "spun on EMFILE: {stats}");
}

/// The number after `name=` in a stats line.
fn stat(stats: &str, name: &str) -> usize {
    stats
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {stats:?}"))
}

/// A full key table turns clients away and loses no slot doing so.
fn survives_a_full_table(backend: &str) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start(backend, &["--small"]);
    // Twice: the second storm reuses freed slots, where a refused client
    // used to lose the one it was offered.
    client(&server.addr, &["--storm"]);
    client(&server.addr, &["--storm", "--seed", "2"]);
    let stats = server.stop();
    println!("{backend}: {stats}");
    assert!(
        stat(&stats, "refused") > 0,
        "the table never filled: {stats}"
    );
    assert!(stat(&stats, "slots") <= 14, "slots leaked: {stats}");
    assert_eq!(stat(&stats, "lost_slots"), 0, "slots leaked: {stats}");
}

#[test]
fn poll_survives_a_full_table() {
    survives_a_full_table("poll");
}

#[test]
fn default_survives_a_full_table() {
    survives_a_full_table("default");
}

#[cfg(has_epoll)]
#[test]
fn epoll_every_byte_comes_back() {
    every_byte_comes_back("epoll");
}

#[test]
fn poll_every_byte_comes_back() {
    every_byte_comes_back("poll");
}

#[test]
fn select_every_byte_comes_back() {
    every_byte_comes_back("select");
}

#[test]
fn default_every_byte_comes_back() {
    every_byte_comes_back("default");
}

#[cfg(has_epoll)]
#[test]
fn epoll_survives_running_out_of_fds() {
    survives_running_out_of_fds("epoll");
}

#[test]
fn poll_survives_running_out_of_fds() {
    survives_running_out_of_fds("poll");
}

#[test]
fn select_survives_running_out_of_fds() {
    survives_running_out_of_fds("select");
}
