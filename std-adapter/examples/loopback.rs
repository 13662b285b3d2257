//! The demo: for each mechanism this host has, start the echo server on an
//! ephemeral loopback port, drive 64 client connections through it for a
//! fixed number of round trips, check every byte, and print a table.
//!
//! ```text
//! cargo run --release -p selectors2 --example loopback
//! ```
//!
//! Exits non-zero if any byte comes back wrong. `LOOPBACK_ROUNDS` sets the
//! round trips per connection (default 1000).

#[path = "shared/echo.rs"]
mod echo;

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use selectors2::sys::{Auto, OsBackend, Poll, Select};

const CONNS: usize = 64;
const MSG: usize = 64;

struct Row {
    name: String,
    conns: usize,
    rounds: usize,
    msgs_per_sec: f64,
    ok: bool,
}

fn message(conn: usize, round: usize) -> [u8; MSG] {
    let mut m = [0u8; MSG];
    for (i, b) in m.iter_mut().enumerate() {
        *b = (conn * 31 + round * 7 + i) as u8;
    }
    m
}

fn drive<B: OsBackend + Send + 'static>(label: &str, rounds: usize) -> io::Result<Row> {
    let mut server = echo::EchoServer::<B, 128>::bind("127.0.0.1:0", false)?;
    let addr = server.local_addr()?;
    let name = format!("{label} ({})", server.backend_name());
    let stop = server.stopper();
    let handle = std::thread::spawn(move || server.run());

    let mut clients = (0..CONNS)
        .map(|_| TcpStream::connect(addr))
        .collect::<io::Result<Vec<_>>>()?;
    for c in &clients {
        c.set_nodelay(true)?;
    }
    let start = Instant::now();
    let mut ok = true;
    let mut buf = [0u8; MSG];
    for round in 0..rounds {
        for (i, c) in clients.iter_mut().enumerate() {
            c.write_all(&message(i, round))?;
        }
        for (i, c) in clients.iter_mut().enumerate() {
            c.read_exact(&mut buf)?;
            ok &= buf == message(i, round);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    drop(clients);
    stop.wake()?;
    let stats = handle
        .join()
        .map_err(|_| io::Error::other("server thread panicked"))??;
    ok &= stats.accepted == CONNS && stats.bytes == CONNS * rounds * MSG;
    Ok(Row {
        name,
        conns: CONNS,
        rounds,
        msgs_per_sec: (CONNS * rounds) as f64 / elapsed,
        ok,
    })
}

fn main() -> io::Result<()> {
    let rounds = std::env::var("LOOPBACK_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let mut rows = vec![
        drive::<Poll>("PollSelector", rounds)?,
        drive::<Select>("SelectSelector", rounds)?,
        drive::<Auto>("DefaultSelector", rounds)?,
    ];
    #[cfg(has_epoll)]
    rows.insert(0, drive::<selectors2::sys::Epoll>("EpollSelector", rounds)?);
    #[cfg(has_kqueue)]
    rows.insert(
        0,
        drive::<selectors2::sys::Kqueue>("KqueueSelector", rounds)?,
    );

    println!("| backend | connections | round trips each | messages/s | bytes ok |");
    println!("|---|---:|---:|---:|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {:.0} | {} |",
            r.name,
            r.conns,
            r.rounds,
            r.msgs_per_sec,
            if r.ok { "yes" } else { "NO" }
        );
    }
    if rows.iter().all(|r| r.ok) {
        Ok(())
    } else {
        eprintln!("some bytes came back wrong");
        std::process::exit(1);
    }
}
